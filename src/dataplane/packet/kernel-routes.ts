// The next hop towards an address, as the host kernel's routing table says (its main table, read
// from /proc/net/route and /proc/net/ipv6_route of the director's network namespace). The packet
// plane sends a reply to the client's MAC it learned from the client's own packets; an entry
// that came by connection sync and has seen no client packet here yet (a flow whose replies a
// router hashes to this director while its requests go to another, as behind ECMP) has no such
// MAC. The kernel would route the reply: to the client itself when on-link, else to the gateway
// of the longest matching route. This does the same for the interface the plane runs on; an
// address with no route through that interface is taken as on-link (what the plane did before).
// The table is read again when older than a second (routes change rarely; the lookups are rare).

import { readFileSync } from "node:fs";
import { canonicalIp, formatIpv4, parseIpv6Groups } from "../../core/addr.ts";

export interface Route {
  family: 4 | 6;
  /** Destination prefix: IPv4 as a number, IPv6 as 16 bytes. */
  dst: number | Uint8Array;
  len: number;
  /** Gateway address text, or undefined for an on-link route. */
  via: string | undefined;
  metric: number;
}

function le32(hex: string): number {
  // /proc/net/route prints the kernel's network-order words as host-order (little-endian) hex.
  const n = Number.parseInt(hex, 16) >>> 0;
  return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | (n >>> 24)) >>> 0;
}

function bitsOf(mask: number): number {
  let n = 0;
  for (let m = mask; m & 0x80000000; m = (m << 1) >>> 0) n++;
  return n;
}

/** IPv4 routes through `iface` from /proc/net/route's text. */
export function parseRoutes4(text: string, iface: string): Route[] {
  const out: Route[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[0] !== iface) continue;
    const flags = Number.parseInt(f[3]!, 16);
    if (!(flags & 1)) continue; // RTF_UP
    const gw = le32(f[2]!);
    out.push({
      family: 4,
      dst: le32(f[1]!),
      len: bitsOf(le32(f[7]!)),
      via: flags & 2 && gw !== 0 ? formatIpv4(gw) : undefined, // RTF_GATEWAY
      metric: Number(f[6]),
    });
  }
  return out;
}

function hexBytes(hex: string): Uint8Array {
  const b = new Uint8Array(16);
  for (let i = 0; i < 16; i++) b[i] = Number.parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return b;
}

function ip6TextOf(b: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  const text = groups.join(":");
  return canonicalIp(text) ?? text;
}

/** IPv6 routes through `iface` from /proc/net/ipv6_route's text. */
export function parseRoutes6(text: string, iface: string): Route[] {
  const out: Route[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || f[9] !== iface) continue;
    const flags = Number.parseInt(f[8]!, 16);
    if (!(flags & 1) || flags & 0x200) continue; // RTF_UP; not RTF_REJECT
    const gw = hexBytes(f[4]!);
    out.push({
      family: 6,
      dst: hexBytes(f[0]!),
      len: Number.parseInt(f[1]!, 16),
      via: flags & 2 && gw.some((x) => x !== 0) ? ip6TextOf(gw) : undefined,
      metric: Number.parseInt(f[5]!, 16),
    });
  }
  return out;
}

function matches(r: Route, addr: number | Uint8Array): boolean {
  if (typeof r.dst === "number" && typeof addr === "number") {
    if (r.len === 0) return true;
    const mask = r.len >= 32 ? 0xffffffff : ~(0xffffffff >>> r.len) >>> 0;
    return (addr & mask) >>> 0 === (r.dst & mask) >>> 0;
  }
  if (typeof r.dst === "number" || typeof addr === "number") return false;
  for (let bit = 0; bit < r.len; bit += 8) {
    const n = Math.min(8, r.len - bit);
    const mask = (0xff << (8 - n)) & 0xff;
    if ((r.dst[bit >> 3]! & mask) !== (addr[bit >> 3]! & mask)) return false;
  }
  return true;
}

/** The next hop for `addr` by longest prefix (then lowest metric): the gateway, or the address itself. */
export function nextHopIn(routes: readonly Route[], addr: string): string {
  const six = addr.includes(":");
  let key: number | Uint8Array;
  if (six) {
    const g = parseIpv6Groups(addr.split("%")[0]!);
    if (g === undefined) return addr;
    key = new Uint8Array(16);
    for (let i = 0; i < 8; i++) {
      key[2 * i] = g[i]! >>> 8;
      key[2 * i + 1] = g[i]! & 0xff;
    }
  } else {
    const p = addr.split(".").map(Number);
    if (p.length !== 4) return addr;
    key = ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
  }
  let best: Route | undefined;
  for (const r of routes) {
    if (r.family !== (six ? 6 : 4) || !matches(r, key)) continue;
    if (best === undefined || r.len > best.len || (r.len === best.len && r.metric < best.metric)) best = r;
  }
  return best?.via ?? addr;
}

/** A lookup on the kernel's table for `iface`, re-read when older than `maxAgeMs`. */
export function kernelNextHop(iface: string, maxAgeMs = 1000): (addr: string) => string {
  let routes: Route[] = [];
  let readAt = Number.NEGATIVE_INFINITY;
  const read = (path: string) => {
    try {
      return readFileSync(path, "utf8");
    } catch {
      return "";
    }
  };
  return (addr) => {
    const now = performance.now();
    if (now - readAt > maxAgeMs) {
      routes = [...parseRoutes4(read("/proc/net/route"), iface), ...parseRoutes6(read("/proc/net/ipv6_route"), iface)];
      readAt = now;
    }
    return nextHopIn(routes, addr);
  };
}
