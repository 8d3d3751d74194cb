// Readers for configuration values shared by the keepalived and ldirectord parsers: integers in a
// range, timers in (possibly fractional) seconds, booleans, IP addresses, netmasks. Each returns
// undefined for a bad value; the caller reports it with the keyword and position.

import { canonicalIp, MAX_PORT, netmaskToPrefix } from "../core/addr.ts";

export function parseUint(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}

export function parseInt32(text: string, min: number, max: number): number | undefined {
  if (!/^[-+]?\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : undefined;
}

/** keepalived <TIMER>: seconds with up to 6 decimals ("1", "0.5"), returned in ms. */
export function parseTimerMs(text: string, minMs = 0, maxMs = 2 ** 31 - 1): number | undefined {
  if (!/^\d+(\.\d{1,6})?$/.test(text)) return undefined;
  const ms = Math.round(Number(text) * 1000);
  return ms >= minMs && ms <= maxMs ? ms : undefined;
}

/** keepalived's check_true_false plus ldirectord's yes/no. */
export function parseBool(text: string): boolean | undefined {
  const t = text.toLowerCase();
  if (t === "true" || t === "on" || t === "yes" || t === "1") return true;
  if (t === "false" || t === "off" || t === "no" || t === "0") return false;
  return undefined;
}

export function parseIp(text: string): string | undefined {
  return canonicalIp(text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text);
}

export function parsePort(text: string): number | undefined {
  return parseUint(text, 0, MAX_PORT);
}

/** IPv4 dotted netmask or a prefix length, as a prefix length for the family. */
export function parseNetmask(text: string, family: 4 | 6): number | undefined {
  if (family === 4 && text.includes(".")) return netmaskToPrefix(text);
  return parseUint(text, family === 4 ? 0 : 1, family === 4 ? 32 : 128);
}
