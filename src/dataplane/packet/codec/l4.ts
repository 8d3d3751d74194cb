// Address and port rewrites that keep the IP header checksum and the transport checksum right,
// for TCP, UDP and ICMP over IPv4 and IPv6. Each rewrite updates the checksums incrementally
// (RFC 1624). A UDP-over-IPv4 checksum of 0 means "no checksum" and is left at 0. When the sender
// left the checksum to offload (`partial`), the field holds the pseudo-header sum: address changes
// adjust it without complements and port changes leave it alone (the device sums the ports later).

import { readU32, writeU32 } from "./arp.ts";
import { sumBytes, update16, update32, updateBytes } from "./checksum.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./ipv4.ts";

/** Offset of the checksum field within an L4 header, or -1 when the protocol has none we track. */
export function l4CsumOffset(protocol: number): number {
  if (protocol === IPPROTO_TCP) return 16;
  if (protocol === IPPROTO_UDP) return 6;
  if (protocol === IPPROTO_ICMP || protocol === IPPROTO_ICMPV6) return 2;
  return -1;
}

function readCsum(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}

function writeCsum(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 8;
  buf[off + 1] = v & 0xff;
}

/**
 * Whether the L4 checksum at l4 must follow a pseudo-header change: TCP and UDP (unless UDP/IPv4
 * with checksum 0), ICMPv6 (its checksum covers a pseudo-header); ICMPv4 never; `l4 < 0` (a later
 * fragment, no L4 header here) never.
 */
function pseudoCovered(buf: Uint8Array, l4: number, protocol: number, v6: boolean): number {
  if (l4 < 0) return -1;
  if (protocol === IPPROTO_TCP) return l4 + 16;
  if (protocol === IPPROTO_UDP) {
    const o = l4 + 6;
    if (!v6 && buf[o] === 0 && buf[o + 1] === 0) return -1;
    return o;
  }
  if (protocol === IPPROTO_ICMPV6) return l4 + 2;
  return -1;
}

/** Set the IPv4 source (which = 12) or destination (which = 16) address, fixing both checksums. */
export function rewriteAddr4(
  buf: Uint8Array,
  l3: number,
  which: 12 | 16,
  l4: number,
  protocol: number,
  addr: number,
  partial: boolean,
): void {
  const old = readU32(buf, l3 + which);
  if (old === addr >>> 0) return;
  writeU32(buf, l3 + which, addr);
  writeCsum(buf, l3 + 10, update32(readCsum(buf, l3 + 10), old, addr));
  const c = pseudoCovered(buf, l4, protocol, false);
  if (c >= 0) {
    const v = update32(readCsum(buf, c), old, addr, partial);
    writeCsum(buf, c, protocol === IPPROTO_UDP && v === 0 && !partial ? 0xffff : v);
  }
}

/** Set the IPv6 source (which = 8) or destination (which = 24) address, fixing the L4 checksum. */
export function rewriteAddr6(
  buf: Uint8Array,
  l3: number,
  which: 8 | 24,
  l4: number,
  protocol: number,
  addr: Uint8Array,
  partial: boolean,
): void {
  const from = sumBytes(buf, l3 + which, 16);
  const to = sumBytes(addr, 0, 16);
  buf.set(addr, l3 + which);
  const c = pseudoCovered(buf, l4, protocol, true);
  if (c >= 0) {
    const v = updateBytes(readCsum(buf, c), from, to, partial);
    writeCsum(buf, c, protocol === IPPROTO_UDP && v === 0 && !partial ? 0xffff : v);
  }
}

/**
 * Set a port (which = 0 source, 2 destination) of a TCP/UDP header, or an ICMP echo id
 * (which = 4), fixing the checksum unless the checksum is partial (offload) or absent (UDP 0).
 */
export function rewritePort(
  buf: Uint8Array,
  l4: number,
  protocol: number,
  which: 0 | 2 | 4,
  port: number,
  partial: boolean,
  v6: boolean,
): void {
  const old = (buf[l4 + which]! << 8) | buf[l4 + which + 1]!;
  if (old === port) return;
  buf[l4 + which] = port >>> 8;
  buf[l4 + which + 1] = port & 0xff;
  if (partial && protocol !== IPPROTO_ICMP) return;
  const off = l4CsumOffset(protocol);
  if (off < 0) return;
  const c = l4 + off;
  if (protocol === IPPROTO_UDP && !v6 && buf[c] === 0 && buf[c + 1] === 0) return;
  const v = update16(readCsum(buf, c), old, port);
  writeCsum(buf, c, protocol === IPPROTO_UDP && v === 0 ? 0xffff : v);
}

export function readPort(buf: Uint8Array, off: number): number {
  return (buf[off]! << 8) | buf[off + 1]!;
}
