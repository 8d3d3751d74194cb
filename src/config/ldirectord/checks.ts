// ldirectord's checktype/service pair for one real server → one CheckerSpec, as ldirectord's
// _check_real decides it (connect → TCP connect, or ping for UDP; negotiate → the service's
// protocol check; ping; external → the checkcommand with the virtual and real address and port;
// on/off → static up/down (off starting down); a number N → negotiate with N plain connects in between). Timing:
// checkinterval is the delay loop; failurecount F becomes F-1 retries one checkinterval apart
// (ldirectord counts failed periodic checks); checktimeout bounds connect/ping/external checks and
// negotiatetimeout (falling back on checktimeout, then 30 s) negotiate checks; checks start at once.

import { type CheckerCommon, type CheckerSpec, type CheckerType, checkerCommon } from "../../health/checker-spec.ts";

/** Resolved per-virtual settings for one real server (values already validated by the parser). */
export interface LdirectordCheckSettings {
  checktype: string;
  service: string;
  protocol: "tcp" | "udp" | "sctp" | "fwm";
  virtualAddress: string;
  virtualPort: number;
  realAddress: string;
  realPort: number;
  request?: string;
  receive?: string;
  virtualhost?: string;
  checkport?: number;
  checkTimeoutMs?: number;
  negotiateTimeoutMs?: number;
  intervalMs: number;
  failurecount: number;
  checkcommand?: string;
  httpmethod?: string;
}

export function ldirectordChecker(s: LdirectordCheckSettings): { spec: CheckerSpec; warnings: string[] } {
  const warnings: string[] = [];
  const combined = /^\d+$/.test(s.checktype) ? Number(s.checktype) : undefined;
  const negotiate = s.checktype === "negotiate" || combined !== undefined;
  const checkTimeoutMs = s.checkTimeoutMs ?? 5000;
  const negotiateTimeoutMs = s.negotiateTimeoutMs ?? s.checkTimeoutMs ?? 30000;
  const common = (type: CheckerType): CheckerCommon => {
    const c = checkerCommon(type, {
      connectTimeoutMs: negotiate ? negotiateTimeoutMs : checkTimeoutMs,
      delayLoopMs: s.intervalMs,
      retry: s.failurecount - 1,
      delayBeforeRetryMs: s.intervalMs,
      warmupMs: 0,
    });
    if (s.checkport !== undefined) c.connectPort = s.checkport;
    if (combined !== undefined) c.connectChecksBetween = combined;
    return c;
  };

  switch (s.checktype) {
    case "on":
    case "off":
      // off never activates the server, so it starts down (alpha) instead of starting up and dropping.
      return {
        spec: {
          ...common("STATIC_CHECK"),
          type: "STATIC_CHECK",
          up: s.checktype === "on",
          alpha: s.checktype === "off",
        },
        warnings,
      };
    case "ping":
      return { spec: { ...common("PING_CHECK"), type: "PING_CHECK" }, warnings };
    case "connect":
      if (s.protocol === "udp") return { spec: { ...common("PING_CHECK"), type: "PING_CHECK" }, warnings };
      return { spec: { ...common("TCP_CHECK"), type: "TCP_CHECK" }, warnings };
    case "external":
    case "external-perl": {
      const command = s.checkcommand ?? "/bin/true";
      if (s.checktype === "external-perl") warnings.push(`checktype external-perl runs "${command}" as a program`);
      const quote = (w: string) => `'${w.replace(/'/g, "'\\''")}'`;
      const args = [s.virtualAddress, String(s.virtualPort), s.realAddress, String(s.realPort)].map(quote);
      return {
        spec: {
          ...common("MISC_CHECK"),
          type: "MISC_CHECK",
          path: [command, ...args].join(" "),
          timeoutMs: checkTimeoutMs,
          dynamic: false,
        },
        warnings,
      };
    }
  }

  const request = s.request ?? "/";
  const receive = s.receive !== undefined && s.receive !== "" ? s.receive : undefined;
  switch (s.service) {
    case "http":
    case "https":
    case "http_proxy": {
      if ((s.httpmethod ?? "GET").toUpperCase() !== "GET")
        warnings.push(`httpmethod "${s.httpmethod}" is checked with GET`);
      const type = s.service === "https" ? "SSL_GET" : "HTTP_GET";
      // A request that is a whole URL keeps its own path and supplies the Host header.
      let path = request.startsWith("/") ? request : `/${request}`;
      let virtualhost = s.virtualhost;
      const m = /^[a-z]+:\/\/([^/]+)(\/.*)?$/i.exec(request.replace(/^\/+/, ""));
      if (m && s.service !== "http_proxy") {
        path = m[2] ?? "/";
        virtualhost ??= m[1];
      } else if (s.service === "http_proxy") path = request.replace(/^\/+/, "");
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
      const spec: CheckerSpec = {
        ...common("DNS_CHECK"),
        type: "DNS_CHECK",
        queryType: "A",
        name: request.replace(/^\//, ""),
      };
      if (receive !== undefined) spec.answerRegex = receive;
      if (s.protocol === "tcp") warnings.push("dns over TCP is checked over UDP");
      return { spec, warnings };
    }
    case "simpletcp": {
      const spec: CheckerSpec = {
        ...common("TCP_CHECK"),
        type: "TCP_CHECK",
        send: request.replace(/^\//, "").replace(/\\n/g, "\n"),
      };
      if (receive !== undefined) spec.expectRegex = receive;
      return { spec, warnings };
    }
    case "none":
      return { spec: { ...common("STATIC_CHECK"), type: "STATIC_CHECK", up: true }, warnings };
    default:
      warnings.push(`service "${s.service}" has no negotiate checker in tvs; checking a TCP connect instead`);
      return { spec: { ...common("TCP_CHECK"), type: "TCP_CHECK" }, warnings };
  }
}
