// One checker per spec type: the factory the runner (and tests) use to turn a CheckerSpec into a
// Checker. A plain switch over the discriminated union, so a new spec type fails to compile here
// until it has a checker.

import type { Checker, CheckResult } from "./checker.ts";
import type { CheckerSpec } from "./checker-spec.ts";
import { createDnsChecker } from "./checkers/dns.ts";
import { createFileChecker } from "./checkers/file.ts";
import { createHttpChecker } from "./checkers/http.ts";
import { createMiscChecker } from "./checkers/misc.ts";
import { createPingChecker } from "./checkers/ping.ts";
import { createSmtpChecker } from "./checkers/smtp.ts";
import { createTcpChecker } from "./checkers/tcp.ts";
import { createUdpChecker } from "./checkers/udp.ts";

/** Build the checker for a spec. Throws (with the bad value quoted) when the spec cannot be run. */
export function createChecker(spec: CheckerSpec): Checker {
  switch (spec.type) {
    case "TCP_CHECK":
      return createTcpChecker(spec);
    case "HTTP_GET":
    case "SSL_GET":
      return createHttpChecker(spec);
    case "SMTP_CHECK":
      return createSmtpChecker(spec);
    case "DNS_CHECK":
      return createDnsChecker(spec);
    case "MISC_CHECK":
      return createMiscChecker(spec);
    case "UDP_CHECK":
      return createUdpChecker(spec);
    case "PING_CHECK":
      return createPingChecker(spec);
    case "FILE_CHECK":
      return createFileChecker(spec);
    case "STATIC_CHECK": {
      const result: CheckResult = {
        ok: spec.up,
        reason: spec.up ? "Always up (checktype on)" : "Always down (checktype off)",
        latencyMs: 0,
      };
      return { type: "STATIC_CHECK", check: async () => ({ ...result }) };
    }
  }
}
