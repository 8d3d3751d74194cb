// A connected UDP socket for the datagram checkers (DNS_CHECK, UDP_CHECK): bound to the target's
// bindto/bind_port when given and connected to the target, so the kernel reports an ICMP port
// unreachable as ECONNREFUSED on the socket. `exchange` sends one datagram and waits, until the
// attempt is aborted, for a reply the caller accepts; replies the caller ignores (wrong id) are
// skipped, as keepalived keeps reading after them.

import dgram from "node:dgram";
import { abortReason, type CheckTarget } from "../checker.ts";
import { describeSocketError } from "./stream.ts";

export type ReplyVerdict = { done: true; ok: boolean; reason: string } | { done: false };

export interface ExchangeResult {
  ok: boolean;
  reason: string;
  /** The attempt's time limit ran out with no accepted reply. */
  timedOut: boolean;
}

export function udpExchange(
  target: CheckTarget,
  payload: Buffer,
  signal: AbortSignal,
  onReply: (msg: Buffer) => ReplyVerdict,
): Promise<ExchangeResult> {
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve({ ok: false, reason: abortReason(signal), timedOut: true });
      return;
    }
    const socket = dgram.createSocket(target.address.includes(":") ? "udp6" : "udp4");
    let settled = false;
    const finish = (r: ExchangeResult) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      socket.removeAllListeners("message");
      socket.on("error", () => {});
      try {
        socket.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    const onAbort = () => finish({ ok: false, reason: abortReason(signal), timedOut: true });
    signal.addEventListener("abort", onAbort, { once: true });
    socket.on("error", (e) => finish({ ok: false, reason: describeSocketError(e), timedOut: false }));
    socket.on("message", (msg) => {
      const v = onReply(msg);
      if (v.done) finish({ ok: v.ok, reason: v.reason, timedOut: false });
    });
    const connect = () =>
      socket.connect(target.port, target.address, () => {
        if (settled) return;
        socket.send(payload, (e) => {
          if (e) finish({ ok: false, reason: describeSocketError(e), timedOut: false });
        });
      });
    try {
      if (target.bindTo !== undefined || target.bindPort !== undefined) {
        const opts: dgram.BindOptions = {};
        if (target.bindTo !== undefined) opts.address = target.bindTo;
        if (target.bindPort !== undefined) opts.port = target.bindPort;
        socket.bind(opts, connect);
      } else connect();
    } catch (e) {
      finish({ ok: false, reason: describeSocketError(e), timedOut: false });
    }
  });
}
