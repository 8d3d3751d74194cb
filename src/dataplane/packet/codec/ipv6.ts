// IPv6 headers (RFC 8200) read in place: the fixed header, a walk over extension headers to the
// upper-layer header, and address text for the connection table.

import { formatIpv6Groups } from "../../../core/addr.ts";

export const IPV6_HLEN = 40;
const EXT_HOP = 0;
const EXT_ROUTING = 43;
const EXT_FRAGMENT = 44;
const EXT_DSTOPTS = 60;
export const NEXTHDR_NONE = 59;
/** IPv6 encapsulated in IP (RFC 2473 ip6ip6, RFC 4213 6in4): the next header of a tunnel. */
export const IPPROTO_IPV6 = 41;

export interface Ipv6Info {
  payloadLen: number;
  /** Upper-layer protocol after extension headers. */
  protocol: number;
  /** Offset of the upper-layer header. */
  l4: number;
  /** A fragment header is present. */
  fragment: boolean;
  laterFragment: boolean;
  hopLimit: number;
}

export function parseIpv6(buf: Uint8Array, l3: number, end: number, out: Ipv6Info): boolean {
  if (end - l3 < IPV6_HLEN) return false;
  if (buf[l3]! >>> 4 !== 6) return false;
  const plen = (buf[l3 + 4]! << 8) | buf[l3 + 5]!;
  if (plen > end - l3 - IPV6_HLEN) return false;
  const limit = l3 + IPV6_HLEN + plen;
  let next = buf[l3 + 6]!;
  let off = l3 + IPV6_HLEN;
  out.fragment = false;
  out.laterFragment = false;
  for (let hops = 0; hops < 8; hops++) {
    if (next === EXT_HOP || next === EXT_ROUTING || next === EXT_DSTOPTS) {
      if (limit - off < 8) return false;
      const len = (buf[off + 1]! + 1) * 8;
      if (limit - off < len) return false;
      next = buf[off]!;
      off += len;
      continue;
    }
    if (next === EXT_FRAGMENT) {
      if (limit - off < 8) return false;
      out.fragment = true;
      const fo = ((buf[off + 2]! << 8) | buf[off + 3]!) & 0xfff8;
      out.laterFragment = fo !== 0;
      next = buf[off]!;
      off += 8;
      continue;
    }
    break;
  }
  out.payloadLen = plen;
  out.protocol = next;
  out.l4 = off;
  out.hopLimit = buf[l3 + 7]!;
  return true;
}

/** RFC 5952 text of the 16-byte address at off. */
export function ip6Text(buf: Uint8Array, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((buf[off + i]! << 8) | buf[off + i + 1]!);
  return formatIpv6Groups(g);
}

/** 16 bytes of an IPv6 address from its 8 groups. */
export function ip6Bytes(groups: readonly number[]): Uint8Array {
  const out = new Uint8Array(16);
  for (let i = 0; i < 8; i++) {
    out[i * 2] = groups[i]! >>> 8;
    out[i * 2 + 1] = groups[i]! & 0xff;
  }
  return out;
}

export function bytesEqual(buf: Uint8Array, off: number, b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (buf[off + i] !== b[i]) return false;
  return true;
}

/** Write a fixed IPv6 header. */
export function writeIpv6(
  buf: Uint8Array,
  l3: number,
  payloadLen: number,
  nextHeader: number,
  saddr: Uint8Array,
  daddr: Uint8Array,
  hopLimit = 64,
): void {
  buf[l3] = 0x60;
  buf[l3 + 1] = 0;
  buf[l3 + 2] = 0;
  buf[l3 + 3] = 0;
  buf[l3 + 4] = payloadLen >>> 8;
  buf[l3 + 5] = payloadLen & 0xff;
  buf[l3 + 6] = nextHeader;
  buf[l3 + 7] = hopLimit;
  buf.set(saddr, l3 + 8);
  buf.set(daddr, l3 + 24);
}

/** Set the traffic class (DS field and ECN) of the IPv6 header at l3, keeping version and flow label. */
export function setTrafficClass6(buf: Uint8Array, l3: number, tc: number): void {
  buf[l3] = (buf[l3]! & 0xf0) | (tc >>> 4);
  buf[l3 + 1] = (buf[l3 + 1]! & 0x0f) | ((tc & 0x0f) << 4);
}

/** The traffic class of the IPv6 header at l3. */
export function trafficClass6(buf: Uint8Array, l3: number): number {
  return ((buf[l3]! & 0x0f) << 4) | (buf[l3 + 1]! >>> 4);
}
