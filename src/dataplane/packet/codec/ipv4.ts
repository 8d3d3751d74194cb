// IPv4 headers (RFC 791) read and rewritten in place: validation, field offsets, address rewrites
// with incremental header checksum updates, and building a fresh header (IPIP outer header, ICMP
// errors). Addresses are unsigned 32-bit numbers in the hot path.

import { readU32, writeU32 } from "./arp.ts";
import { checksum, update16, update32 } from "./checksum.ts";

export const IPV4_HLEN = 20;
export const IPPROTO_ICMP = 1;
export const IPPROTO_IPIP = 4;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMPV6 = 58;
export const IP_DF = 0x4000;
export const IP_MF = 0x2000;
export const IP_OFFMASK = 0x1fff;

export interface Ipv4Info {
  hlen: number;
  totalLen: number;
  protocol: number;
  saddr: number;
  daddr: number;
  /** Non-zero fragment offset or MF set. */
  fragment: boolean;
  /** Fragment offset is non-zero: no L4 header in this packet. */
  laterFragment: boolean;
  ttl: number;
}

/**
 * Validate an IPv4 header at l3 (bytes available up to `end`). Rejects a bad version, header
 * length, total length beyond the frame, or a header checksum that does not verify.
 */
export function parseIpv4(buf: Uint8Array, l3: number, end: number, out: Ipv4Info, verify = true): boolean {
  if (end - l3 < IPV4_HLEN) return false;
  const vihl = buf[l3]!;
  if (vihl >>> 4 !== 4) return false;
  const hlen = (vihl & 15) * 4;
  if (hlen < IPV4_HLEN || end - l3 < hlen) return false;
  const total = (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
  if (total < hlen || total > end - l3) return false;
  if (verify && checksum(buf, l3, hlen) !== 0) return false;
  const frag = (buf[l3 + 6]! << 8) | buf[l3 + 7]!;
  out.hlen = hlen;
  out.totalLen = total;
  out.protocol = buf[l3 + 9]!;
  out.ttl = buf[l3 + 8]!;
  out.saddr = readU32(buf, l3 + 12);
  out.daddr = readU32(buf, l3 + 16);
  out.laterFragment = (frag & IP_OFFMASK) !== 0;
  out.fragment = out.laterFragment || (frag & IP_MF) !== 0;
  return true;
}

export function ipv4Checksum(buf: Uint8Array, l3: number): number {
  return (buf[l3 + 10]! << 8) | buf[l3 + 11]!;
}

function setCsum(buf: Uint8Array, l3: number, v: number): void {
  buf[l3 + 10] = v >>> 8;
  buf[l3 + 11] = v & 0xff;
}

/** Replace the source address, updating the header checksum. */
export function setSaddr4(buf: Uint8Array, l3: number, addr: number): void {
  const old = readU32(buf, l3 + 12);
  writeU32(buf, l3 + 12, addr);
  setCsum(buf, l3, update32(ipv4Checksum(buf, l3), old, addr));
}

/** Replace the destination address, updating the header checksum. */
export function setDaddr4(buf: Uint8Array, l3: number, addr: number): void {
  const old = readU32(buf, l3 + 16);
  writeU32(buf, l3 + 16, addr);
  setCsum(buf, l3, update32(ipv4Checksum(buf, l3), old, addr));
}

/** Decrement TTL with the checksum update (the kernel's ip_decrease_ttl). Returns the new TTL. */
export function decTtl4(buf: Uint8Array, l3: number): number {
  const ttl = buf[l3 + 8]!;
  if (ttl === 0) return 0;
  const oldWord = (ttl << 8) | buf[l3 + 9]!;
  buf[l3 + 8] = ttl - 1;
  setCsum(buf, l3, update16(ipv4Checksum(buf, l3), oldWord, oldWord - 0x100));
  return ttl - 1;
}

/** Write a 20-byte IPv4 header with a fresh checksum. */
export function writeIpv4(
  buf: Uint8Array,
  l3: number,
  totalLen: number,
  protocol: number,
  saddr: number,
  daddr: number,
  opts: { id?: number; ttl?: number; tos?: number; df?: boolean } = {},
): void {
  buf[l3] = 0x45;
  buf[l3 + 1] = opts.tos ?? 0;
  buf[l3 + 2] = totalLen >>> 8;
  buf[l3 + 3] = totalLen & 0xff;
  const id = opts.id ?? 0;
  buf[l3 + 4] = (id >>> 8) & 0xff;
  buf[l3 + 5] = id & 0xff;
  buf[l3 + 6] = opts.df ? 0x40 : 0;
  buf[l3 + 7] = 0;
  buf[l3 + 8] = opts.ttl ?? 64;
  buf[l3 + 9] = protocol;
  buf[l3 + 10] = 0;
  buf[l3 + 11] = 0;
  writeU32(buf, l3 + 12, saddr);
  writeU32(buf, l3 + 16, daddr);
  setCsum(buf, l3, checksum(buf, l3, IPV4_HLEN));
}
