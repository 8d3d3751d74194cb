// Where tvsd serves metrics and the dashboard (--http). Loopback by default on port 7420, chosen
// outside Prometheus's exporter range 9100-9999 (fully allocated: node_exporter 9100, HAProxy 9101,
// keepalived-exporter 9165, ...) and away from Prometheus 9090, Pushgateway 9091, Alertmanager
// 9093 and HAProxy's stats 8404. Forms: "none" or "off" (not served), "PORT" (loopback),
// "ADDR:PORT", "[IPV6]:PORT", "ADDR" (port 7420). Another address than loopback is only taken when
// given, and the daemon logs it as a warning.

import net from "node:net";
import { formatEndpoint } from "../core/addr.ts";

export const DEFAULT_HTTP_PORT = 7420;
export const DEFAULT_HTTP_HOST = "127.0.0.1";

export interface HttpAddress {
  host: string;
  port: number;
  /** 127.0.0.0/8 or ::1: only this machine can reach it. */
  loopback: boolean;
}

export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (net.isIPv4(host)) return host.startsWith("127.");
  if (net.isIPv6(host)) return host === "::1" || /^::ffff:127\./i.test(host);
  return false;
}

function port(text: string, arg: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535)
    throw new Error(`Invalid --http port "${text}" in "${arg}" (expected 0..65535)`);
  return n;
}

function host(text: string, arg: string): string {
  if (text === "localhost" || net.isIP(text) !== 0) return text;
  throw new Error(`Invalid --http address "${text}" in "${arg}" (expected an IPv4 or IPv6 address)`);
}

/** Parse --http; undefined means "not served" (none/off). Throws with the argument quoted. */
export function parseHttpAddress(arg: string): HttpAddress | undefined {
  const a = arg.trim();
  if (a === "none" || a === "off") return undefined;
  let h: string;
  let p: number;
  if (/^\d+$/.test(a)) {
    h = DEFAULT_HTTP_HOST;
    p = port(a, arg);
  } else if (a.startsWith("[")) {
    const m = /^\[([^\]]+)\](?::(\d*))?$/.exec(a);
    if (!m || !net.isIPv6(m[1] as string)) throw new Error(`Invalid --http address "${arg}" (expected [IPV6]:PORT)`);
    h = m[1] as string;
    p = m[2] === undefined ? DEFAULT_HTTP_PORT : port(m[2], arg);
  } else if (net.isIPv6(a)) {
    h = a;
    p = DEFAULT_HTTP_PORT;
  } else {
    const i = a.lastIndexOf(":");
    if (i === -1) {
      h = host(a, arg);
      p = DEFAULT_HTTP_PORT;
    } else {
      if (i === 0)
        throw new Error(
          `Invalid --http "${arg}": give the address too (127.0.0.1:PORT, or 0.0.0.0:PORT for every address)`,
        );
      h = host(a.slice(0, i), arg);
      p = port(a.slice(i + 1), arg);
    }
  }
  return { host: h, port: p, loopback: isLoopback(h) };
}

/** "127.0.0.1:7420", "[::1]:7420". */
export function formatHttpAddress(a: { host: string; port: number }): string {
  return formatEndpoint(a.host, a.port);
}
