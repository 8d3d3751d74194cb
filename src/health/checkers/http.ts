// HTTP_GET and SSL_GET: for every url block, open a connection (TLS for SSL_GET, with SNI when
// configured and without certificate verification unless asked, as keepalived), send keepalived's
// exact request, read the response to the end and compare the status code with the accepted
// ranges (default 200-299), the MD5 digest of the body and, for ldirectord's negotiate, a regular
// expression over the body. The check passes when every url passes.
//
// The request is byte for byte what keepalived's check_http.c sends:
//   GET <path> HTTP/1.0\r\n            (HTTP/1.1 with http_protocol 1.1)
//   User-Agent: KeepAliveClient\r\n
//   Connection: close\r\n              (only with http_protocol 1.0C or 1.1)
//   Host: <virtualhost | addr:port | [addr6]:port>\r\n
//   \r\n
// Difference from keepalived: keepalived checks one url per delay_loop; here one attempt walks all
// urls in turn (same verdict, found sooner).

import { createHash } from "node:crypto";
import { formatEndpoint } from "../../core/addr.ts";
import { type Checker, type CheckResult, type CheckTarget, elapsedMs } from "../checker.ts";
import type { HttpCheckSpec, HttpProtocol, StatusRange, UrlSpec } from "../checker-spec.ts";
import { StreamSession, type TlsOptions } from "./stream.ts";

/** Largest response read; a longer one fails the check rather than filling memory. */
export const MAX_HTTP_RESPONSE = 8 * 1024 * 1024;

/** keepalived's request for `path` with Host `host` (already formatted, with port when needed). */
export function httpRequest(path: string, host: string, protocol: HttpProtocol): string {
  const minor = protocol === "1.1" ? 1 : 0;
  const close = protocol === "1.0C" || protocol === "1.1" ? "Connection: close\r\n" : "";
  return `GET ${path} HTTP/1.${minor}\r\nUser-Agent: KeepAliveClient\r\n${close}Host: ${host}\r\n\r\n`;
}

/** The Host header value: the virtualhost as given, else the target's address and port. */
export function hostHeader(target: CheckTarget, virtualhost: string | undefined): string {
  if (virtualhost !== undefined) return virtualhost;
  return formatEndpoint(target.address, target.port);
}

export interface ParsedResponse {
  status: number;
  body: Buffer;
}

/** Split a raw response into status code and body; undefined when it is not an HTTP response. */
export function parseResponse(raw: Buffer): ParsedResponse | undefined {
  const headerEnd = raw.indexOf("\r\n\r\n");
  const head = raw.subarray(0, headerEnd === -1 ? raw.length : headerEnd).toString("latin1");
  const m = /^HTTP\/\d+(?:\.\d+)? +(\d{3})(?:[ \r\n]|$)/.exec(head);
  if (!m) return undefined;
  return { status: Number(m[1]), body: headerEnd === -1 ? Buffer.alloc(0) : raw.subarray(headerEnd + 4) };
}

export function statusAccepted(status: number, ranges: readonly StatusRange[]): boolean {
  return ranges.some((r) => status >= r.from && status <= r.to);
}

function formatRanges(ranges: readonly StatusRange[]): string {
  return ranges.map((r) => (r.from === r.to ? `${r.from}` : `${r.from}-${r.to}`)).join(",");
}

async function checkUrl(
  spec: HttpCheckSpec,
  url: UrlSpec,
  regex: RegExp | undefined,
  target: CheckTarget,
  signal: AbortSignal,
): Promise<string | undefined> {
  const tlsOptions: TlsOptions | undefined =
    spec.type === "SSL_GET"
      ? spec.sni !== undefined
        ? { servername: spec.sni, verify: spec.verifyCert }
        : { verify: spec.verifyCert }
      : undefined;
  let session: StreamSession | undefined;
  try {
    session = await StreamSession.open(target, signal, tlsOptions);
    await session.write(
      httpRequest(url.path, hostHeader(target, url.virtualhost ?? spec.virtualhost), spec.httpProtocol),
    );
    const raw = await session.readToEnd(MAX_HTTP_RESPONSE + 1);
    if (raw.length > MAX_HTTP_RESPONSE) return `${url.path}: response longer than ${MAX_HTTP_RESPONSE} bytes`;
    const res = parseResponse(raw);
    if (!res) return raw.length ? `${url.path}: not an HTTP response` : `${url.path}: empty response`;
    if (!statusAccepted(res.status, url.statusCodes))
      return `${url.path}: HTTP status ${res.status} not in ${formatRanges(url.statusCodes)}`;
    if (url.digest !== undefined) {
      const digest = createHash("md5").update(res.body).digest("hex");
      if (digest !== url.digest.toLowerCase()) return `${url.path}: MD5 digest ${digest} differs from ${url.digest}`;
    }
    if (regex && !regex.test(res.body.toString("latin1"))) return `${url.path}: body does not match /${regex.source}/`;
    return undefined;
  } catch (e) {
    return `${url.path}: ${e instanceof Error ? e.message : String(e)}`;
  } finally {
    session?.close();
  }
}

export function createHttpChecker(spec: HttpCheckSpec): Checker {
  const regexes = spec.urls.map((u) => (u.bodyRegex !== undefined ? new RegExp(u.bodyRegex) : undefined));
  return {
    type: spec.type,
    async check(target, signal): Promise<CheckResult> {
      const start = performance.now();
      if (spec.urls.length === 0) return { ok: false, reason: "No url to check", latencyMs: 0 };
      for (let i = 0; i < spec.urls.length; i++) {
        const failure = await checkUrl(spec, spec.urls[i] as UrlSpec, regexes[i], target, signal);
        if (failure !== undefined) return { ok: false, reason: failure, latencyMs: elapsedMs(start) };
      }
      const n = spec.urls.length;
      return { ok: true, reason: n === 1 ? "URL passed" : `${n} URLs passed`, latencyMs: elapsedMs(start) };
    },
  };
}
