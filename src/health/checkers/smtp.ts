// SMTP_CHECK: connect, read the greeting (must be 220), send "HELO <helo_name>\r\n", expect 250,
// send "QUIT\r\n" and read its reply, as keepalived's check_smtp does. One difference: keepalived
// reads a single line, so a multi-line greeting ("220-...") fails there; here a multi-line reply
// is read to its last line ("220 ...") as RFC 5321 defines it.

import { type Checker, type CheckResult, elapsedMs } from "../checker.ts";
import type { SmtpCheckSpec } from "../checker-spec.ts";
import { StreamSession } from "./stream.ts";

/** Read one SMTP reply (all its lines) and return its code, or -1 when malformed. */
export async function readSmtpReply(session: StreamSession, what: string): Promise<{ code: number; text: string }> {
  for (let lines = 0; lines < 100; lines++) {
    const line = await session.readLine(what);
    const m = /^(\d{3})([ -]|$)/.exec(line);
    if (!m) return { code: -1, text: line };
    if (m[2] !== "-") return { code: Number(m[1]), text: line };
  }
  return { code: -1, text: "reply longer than 100 lines" };
}

export function createSmtpChecker(spec: SmtpCheckSpec): Checker {
  return {
    type: "SMTP_CHECK",
    async check(target, signal): Promise<CheckResult> {
      const start = performance.now();
      const fail = (reason: string): CheckResult => ({ ok: false, reason, latencyMs: elapsedMs(start) });
      let session: StreamSession | undefined;
      try {
        session = await StreamSession.open(target, signal);
        const banner = await readSmtpReply(session, "the greeting");
        if (banner.code !== 220) return fail(`Bad greeting "${banner.text}"`);
        await session.write(`HELO ${spec.heloName}\r\n`);
        const helo = await readSmtpReply(session, "the HELO reply");
        if (helo.code !== 250) return fail(`Bad HELO reply "${helo.text}"`);
        await session.write("QUIT\r\n");
        await readSmtpReply(session, "the QUIT reply");
        return { ok: true, reason: "SMTP greeting and HELO accepted", latencyMs: elapsedMs(start) };
      } catch (e) {
        return fail(e instanceof Error ? e.message : String(e));
      } finally {
        session?.close();
      }
    },
  };
}
