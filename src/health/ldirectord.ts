// ldirectord's checks expressed as CheckerSpecs, so one runner serves both configuration styles.
// The config parser gives the resolved per-virtual settings for one real server; this picks the
// checker the way ldirectord's _check_real does:
//   connect   → TCP_CHECK (PING_CHECK for a UDP service, as ldirectord pings those)
//   negotiate → by service: http/https/http_proxy → HTTP_GET/SSL_GET (GET <request>, 2xx, body
//               matches receive), smtp/submission → SMTP_CHECK, dns → DNS_CHECK (A query for
//               request, an answer address matching receive), simpletcp → TCP_CHECK sending
//               request and matching receive, none → STATIC_CHECK up; other services (ftp, imap, pop,
//               ldap, nntp, sip, radius, mysql, pgsql, oracle) have no protocol checker here and
//               fall back to TCP_CHECK with a warning
//   ping      → PING_CHECK
//   external  → MISC_CHECK running checkcommand with the four arguments ldirectord passes
//               (virtual address, virtual port, real address, real port); external-perl likewise
//   on / off  → STATIC_CHECK up / down (off starts down: alpha)
//   N         → negotiate, then N plain connects between negotiates (connectChecksBetween)
// Timing: checkinterval (default 10 s) is delay_loop; failurecount F (default 1) becomes retry F-1
// with retries one checkinterval apart (ldirectord counts failures of its periodic checks);
// checktimeout (default 5 s) bounds connect/ping/external checks and negotiatetimeout (default
// 30 s) negotiate checks, each falling back on the other as ldirectord resolves them. ldirectord
// checks at once on start: warmup 0.

import { type CheckerCommon, type CheckerSpec, type CheckerType, checkerCommon } from "../config/checker-spec.ts";

export interface LdirectordCheckInput {
  /** connect | negotiate | ping | external | external-perl | on | off | a positive number. */
  checktype?: string;
  /** http | https | smtp | dns | simpletcp | none | ...; default from the virtual port. */
  service?: string;
  protocol?: "tcp" | "udp" | "fwm";
  /** The virtual service's address (or firewall mark) and port, for external checks and defaults. */
  virtualAddress?: string;
  virtualPort?: number;
  realAddress: string;
  realPort: number;
  request?: string;
  receive?: string;
  virtualhost?: string;
  checkport?: number;
  /** Seconds. */
  checktimeout?: number;
  /** Seconds. */
  negotiatetimeout?: number;
  /** Seconds. */
  checkinterval?: number;
  failurecount?: number;
  checkcommand?: string;
  httpmethod?: string;
  /** Where the settings came from, for messages ("ldirectord.cf:12"). */
  where?: string;
}

export interface LdirectordCheck {
  spec: CheckerSpec;
  /** Things ldirectord would check that this mapping does not (printed by `tvs check-config`). */
  warnings: string[];
}

/** ldirectord's default service for a virtual port. */
export const LDIRECTORD_PORT_SERVICES: Readonly<Record<number, string>> = {
  21: "ftp",
  25: "smtp",
  53: "dns",
  80: "http",
  110: "pop",
  119: "nntp",
  143: "imap",
  389: "ldap",
  443: "https",
  587: "submission",
  993: "imaps",
  995: "pops",
  1521: "oracle",
  1812: "radius",
  3128: "http_proxy",
  3306: "mysql",
  5432: "pgsql",
  5060: "sip",
};

const KNOWN_SERVICES = new Set([...Object.values(LDIRECTORD_PORT_SERVICES), "https", "ldaps", "none", "simpletcp"]);

function secondsToMs(value: number | undefined, name: string, where: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isFinite(value) || value <= 0) throw new RangeError(`Invalid ${name} "${value}"${where}`);
  return Math.round(value * 1000);
}

/** Map one real server's ldirectord check settings onto a CheckerSpec. Throws on a bad value. */
export function ldirectordCheck(input: LdirectordCheckInput): LdirectordCheck {
  const where = input.where ? ` in ${input.where}` : "";
  const warnings: string[] = [];
  const checktype = (input.checktype ?? "negotiate").trim().toLowerCase();
  let combined: number | undefined;
  if (/^\d+$/.test(checktype)) {
    combined = Number(checktype);
    if (combined < 1) throw new RangeError(`Invalid checktype "${input.checktype}"${where}`);
  } else if (!["connect", "negotiate", "ping", "external", "external-perl", "on", "off"].includes(checktype)) {
    throw new RangeError(`Invalid checktype "${input.checktype}"${where}`);
  }
  const service = (
    input.service ??
    LDIRECTORD_PORT_SERVICES[input.virtualPort ?? input.realPort] ??
    "none"
  ).toLowerCase();
  if (!KNOWN_SERVICES.has(service)) throw new RangeError(`Invalid service "${input.service}"${where}`);

  // ldirectord: negotiatetimeout falls back on checktimeout, then its default 30 s; checktimeout on
  // its default 5 s.
  const checkTimeoutMs = secondsToMs(input.checktimeout, "checktimeout", where) ?? 5000;
  const negotiateTimeoutMs =
    secondsToMs(input.negotiatetimeout, "negotiatetimeout", where) ??
    secondsToMs(input.checktimeout, "checktimeout", where) ??
    30000;
  const intervalMs = secondsToMs(input.checkinterval, "checkinterval", where) ?? 10000;
  const failurecount = input.failurecount ?? 1;
  if (!Number.isInteger(failurecount) || failurecount < 1)
    throw new RangeError(`Invalid failurecount "${input.failurecount}"${where}`);

  const negotiate = checktype === "negotiate" || combined !== undefined;
  const common = (type: CheckerType): CheckerCommon => {
    const c = checkerCommon(type, {
      connectTimeoutMs: negotiate ? negotiateTimeoutMs : checkTimeoutMs,
      delayLoopMs: intervalMs,
      retry: failurecount - 1,
      delayBeforeRetryMs: intervalMs,
      warmupMs: 0,
    });
    if (input.checkport !== undefined) {
      if (!Number.isInteger(input.checkport) || input.checkport < 1 || input.checkport > 65535)
        throw new RangeError(`Invalid checkport "${input.checkport}"${where}`);
      c.connectPort = input.checkport;
    }
    if (combined !== undefined) c.connectChecksBetween = combined;
    return c;
  };

  switch (checktype) {
    case "on":
    case "off":
      // off: never activated, so it starts down (alpha) rather than starting up and dropping.
      return {
        spec: { ...common("STATIC_CHECK"), type: "STATIC_CHECK", up: checktype === "on", alpha: checktype === "off" },
        warnings,
      };
    case "ping":
      return { spec: { ...common("PING_CHECK"), type: "PING_CHECK" }, warnings };
    case "connect":
      if (input.protocol === "udp") return { spec: { ...common("PING_CHECK"), type: "PING_CHECK" }, warnings };
      return { spec: { ...common("TCP_CHECK"), type: "TCP_CHECK" }, warnings };
    case "external":
    case "external-perl": {
      const command = input.checkcommand ?? "/bin/true";
      if (checktype === "external-perl") warnings.push(`checktype external-perl runs "${command}" as a program`);
      const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
      const args = [
        input.virtualAddress ?? "",
        String(input.virtualPort ?? 0),
        input.realAddress,
        String(input.realPort),
      ];
      const c = common("MISC_CHECK");
      return {
        spec: {
          ...c,
          type: "MISC_CHECK",
          path: [command, ...args.map(quote)].join(" "),
          timeoutMs: checkTimeoutMs,
          dynamic: false,
        },
        warnings,
      };
    }
  }

  // negotiate (or combined)
  const request = input.request ?? "/";
  const receive = input.receive !== undefined && input.receive !== "" ? input.receive : undefined;
  if (receive !== undefined) {
    try {
      new RegExp(receive);
    } catch {
      throw new SyntaxError(`Invalid receive regular expression "${receive}"${where}`);
    }
  }
  switch (service) {
    case "http":
    case "https":
    case "http_proxy": {
      if ((input.httpmethod ?? "GET").toUpperCase() !== "GET")
        warnings.push(`httpmethod "${input.httpmethod}" is checked with GET`);
      const type = service === "https" ? "SSL_GET" : "HTTP_GET";
      // ldirectord requests <schema>://<real>:<port>/<request>; a request that is already a URL
      // keeps its own path and host.
      let path = request.startsWith("/") ? request : `/${request}`;
      let virtualhost = input.virtualhost;
      const m = /^[a-z]+:\/\/([^/]+)(\/.*)?$/i.exec(request.replace(/^\/+/, ""));
      if (m && service !== "http_proxy") {
        path = m[2] ?? "/";
        virtualhost ??= m[1];
      } else if (service === "http_proxy") path = request.replace(/^\/+/, "");
      const url: { path: string; statusCodes: { from: number; to: number }[]; bodyRegex?: string } = {
        path,
        statusCodes: [{ from: 200, to: 299 }],
      };
      if (receive !== undefined) url.bodyRegex = receive;
      const spec: CheckerSpec = { ...common(type), type, urls: [url], httpProtocol: "1.0", verifyCert: false };
      if (virtualhost !== undefined) spec.virtualhost = virtualhost;
      if (type === "SSL_GET" && virtualhost !== undefined) spec.sni = virtualhost.replace(/:\d+$/, "");
      return { spec, warnings };
    }
    case "smtp":
    case "submission":
      return {
        spec: { ...common("SMTP_CHECK"), type: "SMTP_CHECK", heloName: "smtpchecker.keepalived.org" },
        warnings,
      };
    case "dns": {
      const name = request.replace(/^\//, "");
      const spec: CheckerSpec = { ...common("DNS_CHECK"), type: "DNS_CHECK", queryType: "A", name };
      if (receive !== undefined) spec.answerRegex = receive;
      if (input.protocol === "tcp") warnings.push("dns over TCP is checked over UDP");
      return { spec, warnings };
    }
    case "simpletcp": {
      // ldirectord drops the request's first character (the "/" its parser prepends) and turns
      // "\n" into newlines.
      const send = request.replace(/^\//, "").replace(/\\n/g, "\n");
      const spec: CheckerSpec = { ...common("TCP_CHECK"), type: "TCP_CHECK", send };
      if (receive !== undefined) spec.expectRegex = receive;
      return { spec, warnings };
    }
    case "none":
      // ldirectord's check_none declares the server up without looking at it.
      return { spec: { ...common("STATIC_CHECK"), type: "STATIC_CHECK", up: true }, warnings };
    default:
      warnings.push(`service "${service}" has no negotiate checker here; checking a TCP connect instead`);
      return { spec: { ...common("TCP_CHECK"), type: "TCP_CHECK" }, warnings };
  }
}
