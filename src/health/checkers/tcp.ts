// TCP_CHECK: the real server is healthy when a TCP connection to it completes within the time
// limit; the connection is closed at once, as keepalived's check_tcp does. ldirectord's simpletcp
// negotiate adds an optional request and a regular expression the answer must match.

import net from "node:net";
import type { TcpCheckSpec } from "../../config/checker-spec.ts";
import { abortReason, type Checker, type CheckResult, type CheckTarget, elapsedMs } from "../checker.ts";
import { describeSocketError, StreamSession } from "./stream.ts";

/** Connect and close: the lean path used for thousands of checks a second. */
export function tcpConnect(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    if (signal.aborted) {
      resolve({ ok: false, reason: abortReason(signal), latencyMs: 0 });
      return;
    }
    const opts: net.TcpNetConnectOpts = { host: target.address, port: target.port };
    if (target.bindTo !== undefined) opts.localAddress = target.bindTo;
    if (target.bindPort !== undefined) opts.localPort = target.bindPort;
    let socket: net.Socket;
    const finish = (ok: boolean, reason: string) => {
      signal.removeEventListener("abort", onAbort);
      socket.removeAllListeners("connect");
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      socket.destroy();
      resolve({ ok, reason, latencyMs: elapsedMs(start) });
    };
    const onAbort = () => finish(false, abortReason(signal));
    try {
      socket = net.connect(opts);
    } catch (e) {
      resolve({ ok: false, reason: describeSocketError(e), latencyMs: elapsedMs(start) });
      return;
    }
    socket.once("connect", () => finish(true, "Connected"));
    socket.once("error", (e) => finish(false, describeSocketError(e)));
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

export function createTcpChecker(spec: TcpCheckSpec): Checker {
  const send = spec.send;
  const expect = spec.expectRegex !== undefined ? new RegExp(spec.expectRegex) : undefined;
  if (send === undefined && expect === undefined) return { type: "TCP_CHECK", check: tcpConnect };
  return {
    type: "TCP_CHECK",
    async check(target, signal) {
      const start = performance.now();
      let session: StreamSession | undefined;
      try {
        session = await StreamSession.open(target, signal);
        if (send !== undefined) await session.write(send);
        if (!expect) return { ok: true, reason: "Connected and sent the request", latencyMs: elapsedMs(start) };
        // Read until the answer matches, the peer closes, or the time limit aborts the attempt.
        let seen = "";
        try {
          await session.readUntil((buf) => {
            seen = buf.toString("latin1");
            return expect.test(seen) ? buf.length : undefined;
          }, "a matching answer");
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          return { ok: false, reason: `No answer matching /${expect.source}/ (${why})`, latencyMs: elapsedMs(start) };
        }
        return { ok: true, reason: `Answer matches /${expect.source}/`, latencyMs: elapsedMs(start) };
      } catch (e) {
        return { ok: false, reason: e instanceof Error ? e.message : String(e), latencyMs: elapsedMs(start) };
      } finally {
        session?.close();
      }
    },
  };
}
