// UDP_CHECK: send the payload to the real server on a connected UDP socket and wait for the
// attempt's time limit. An ICMP port unreachable (ECONNREFUSED) always fails. Without
// require_reply, silence until the time limit passes (keepalived's udp_socket_state treats the read
// timeout as success); with it, a reply is needed, its length must lie in [min, max]_reply_length
// and its first bytes must equal the require_reply data (compared over the shorter of the two, as
// keepalived does).

import { type Checker, type CheckResult, CheckTimeoutError, elapsedMs } from "../checker.ts";
import type { UdpCheckSpec } from "../checker-spec.ts";
import { type ReplyVerdict, udpExchange } from "./datagram.ts";

export function parseHex(text: string, where: string): Buffer {
  const clean = text.replace(/\s+/g, "");
  if (!/^(?:[0-9a-fA-F]{2})*$/.test(clean)) throw new RangeError(`Invalid hex string "${text}" in ${where}`);
  return Buffer.from(clean, "hex");
}

export function createUdpChecker(spec: UdpCheckSpec): Checker {
  const payload = spec.payloadHex !== undefined ? parseHex(spec.payloadHex, "UDP_CHECK payload") : Buffer.alloc(0);
  const expect = spec.replyHex !== undefined ? parseHex(spec.replyHex, "UDP_CHECK require_reply") : undefined;
  return {
    type: "UDP_CHECK",
    async check(target, signal): Promise<CheckResult> {
      const start = performance.now();
      const r = await udpExchange(target, payload, signal, (msg): ReplyVerdict => {
        if (!spec.requireReply) return { done: true, ok: true, reason: "UDP reply received" };
        if (msg.length < spec.minReplyLength || msg.length > spec.maxReplyLength)
          return {
            done: true,
            ok: false,
            reason: `UDP reply of ${msg.length} bytes outside ${spec.minReplyLength}..${spec.maxReplyLength}`,
          };
        if (expect) {
          const n = Math.min(expect.length, msg.length);
          if (!msg.subarray(0, n).equals(expect.subarray(0, n)))
            return { done: true, ok: false, reason: "UDP reply data mismatch" };
        }
        return { done: true, ok: true, reason: "UDP reply received" };
      });
      const latencyMs = elapsedMs(start);
      if (r.timedOut && signal.reason instanceof CheckTimeoutError) {
        if (spec.requireReply)
          return { ok: false, reason: `No UDP reply within ${signal.reason.timeoutMs} ms`, latencyMs };
        return { ok: true, reason: "No ICMP error", latencyMs };
      }
      return { ok: r.ok, reason: r.reason, latencyMs };
    },
  };
}
