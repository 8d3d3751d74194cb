// ICMP (RFC 792) and ICMPv6 (RFC 4443, RFC 4861 neighbour discovery) pieces the director needs:
// which messages are errors, where the quoted packet starts, building "fragmentation needed" /
// "packet too big", echo replies, and neighbour advertisements for VIPs.

import { checksum, finish, pseudo6, sumBytes } from "./checksum.ts";
import { ETH_HLEN, ETH_P_IP, ETH_P_IPV6, writeEth } from "./eth.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPV4_HLEN, writeIpv4 } from "./ipv4.ts";
import { IPV6_HLEN, writeIpv6 } from "./ipv6.ts";

export const ICMP_ECHOREPLY = 0;
export const ICMP_DEST_UNREACH = 3;
export const ICMP_FRAG_NEEDED = 4; // code of DEST_UNREACH
export const ICMP_SOURCE_QUENCH = 4;
export const ICMP_ECHO = 8;
export const ICMP_TIME_EXCEEDED = 11;
export const ICMP_PARAMETERPROB = 12;

export const ICMPV6_DEST_UNREACH = 1;
export const ICMPV6_PKT_TOOBIG = 2;
export const ICMPV6_TIME_EXCEED = 3;
export const ICMPV6_PARAMPROB = 4;
export const ICMPV6_ECHO_REQUEST = 128;
export const ICMPV6_ECHO_REPLY = 129;
export const NDISC_NEIGHBOUR_SOLICITATION = 135;
export const NDISC_NEIGHBOUR_ADVERTISEMENT = 136;

/** ICMPv4 types that quote an offending packet (the kernel's icmp_is_err / ip_vs_in_icmp list). */
export function isIcmpError(type: number): boolean {
  return (
    type === ICMP_DEST_UNREACH ||
    type === ICMP_SOURCE_QUENCH ||
    type === ICMP_TIME_EXCEEDED ||
    type === ICMP_PARAMETERPROB
  );
}

export function isIcmpv6Error(type: number): boolean {
  return type >= 1 && type <= 4;
}

/** Recompute an ICMPv4 checksum over [l4, end). */
export function fixIcmp4Checksum(buf: Uint8Array, l4: number, end: number): void {
  buf[l4 + 2] = 0;
  buf[l4 + 3] = 0;
  const c = checksum(buf, l4, end - l4);
  buf[l4 + 2] = c >>> 8;
  buf[l4 + 3] = c & 0xff;
}

/** Recompute an ICMPv6 checksum (pseudo-header from the IPv6 header at l3) over [l4, end). */
export function fixIcmp6Checksum(buf: Uint8Array, l3: number, l4: number, end: number): void {
  buf[l4 + 2] = 0;
  buf[l4 + 3] = 0;
  const c = finish(sumBytes(buf, l4, end - l4, pseudo6(buf, l3 + 8, IPPROTO_ICMPV6, end - l4)));
  buf[l4 + 2] = c >>> 8;
  buf[l4 + 3] = c & 0xff;
}

/**
 * Write an ICMPv4 "destination unreachable, fragmentation needed" frame at `off` quoting the
 * IPv4 packet at quoteOff (as much as fits in 576 bytes, as Linux does), addressed from `saddr`
 * to the quoted packet's source. Returns the frame length.
 */
export function writeFragNeeded(
  buf: Uint8Array,
  off: number,
  ethDst: Uint8Array,
  ethSrc: Uint8Array,
  saddr: number,
  daddr: number,
  mtu: number,
  quote: Uint8Array,
  quoteOff: number,
  quoteLen: number,
): number {
  const qlen = Math.min(quoteLen, 576 - IPV4_HLEN - 8);
  writeEth(buf, off, ethDst, ethSrc, ETH_P_IP);
  const l3 = off + ETH_HLEN;
  const l4 = l3 + IPV4_HLEN;
  if (quote === buf) buf.copyWithin(l4 + 8, quoteOff, quoteOff + qlen);
  else buf.set(quote.subarray(quoteOff, quoteOff + qlen), l4 + 8);
  writeIpv4(buf, l3, IPV4_HLEN + 8 + qlen, IPPROTO_ICMP, saddr, daddr, { tos: 0xc0 });
  buf[l4] = ICMP_DEST_UNREACH;
  buf[l4 + 1] = ICMP_FRAG_NEEDED;
  buf[l4 + 4] = 0;
  buf[l4 + 5] = 0;
  buf[l4 + 6] = mtu >>> 8;
  buf[l4 + 7] = mtu & 0xff;
  fixIcmp4Checksum(buf, l4, l4 + 8 + qlen);
  return ETH_HLEN + IPV4_HLEN + 8 + qlen;
}

/**
 * Write an ICMPv6 "packet too big" frame at `off` (RFC 4443 3.2) quoting the IPv6 packet at
 * quoteOff — as much as keeps the whole message within the IPv6 minimum MTU of 1280 bytes, as
 * Linux does — from `saddr` to `daddr` (hop limit 64, traffic class and flow label 0). Returns the
 * frame length.
 */
export function writePacketTooBig(
  buf: Uint8Array,
  off: number,
  ethDst: Uint8Array,
  ethSrc: Uint8Array,
  saddr: Uint8Array,
  daddr: Uint8Array,
  mtu: number,
  quote: Uint8Array,
  quoteOff: number,
  quoteLen: number,
): number {
  const qlen = Math.min(quoteLen, 1280 - IPV6_HLEN - 8);
  const src = Uint8Array.from(saddr);
  const dst = Uint8Array.from(daddr);
  writeEth(buf, off, ethDst, ethSrc, ETH_P_IPV6);
  const l3 = off + ETH_HLEN;
  const l4 = l3 + IPV6_HLEN;
  if (quote === buf) buf.copyWithin(l4 + 8, quoteOff, quoteOff + qlen);
  else buf.set(quote.subarray(quoteOff, quoteOff + qlen), l4 + 8);
  writeIpv6(buf, l3, 8 + qlen, IPPROTO_ICMPV6, src, dst, 64);
  buf[l4] = ICMPV6_PKT_TOOBIG;
  buf[l4 + 1] = 0;
  buf[l4 + 4] = (mtu >>> 24) & 0xff;
  buf[l4 + 5] = (mtu >>> 16) & 0xff;
  buf[l4 + 6] = (mtu >>> 8) & 0xff;
  buf[l4 + 7] = mtu & 0xff;
  fixIcmp6Checksum(buf, l3, l4, l4 + 8 + qlen);
  return ETH_HLEN + IPV6_HLEN + 8 + qlen;
}

/**
 * Write a neighbour advertisement for `target` (solicited, override) from our MAC to the
 * soliciting node, with the target link-layer address option. Returns the frame length.
 */
export function writeNeighbourAdvert(
  buf: Uint8Array,
  off: number,
  ethDst: Uint8Array,
  mac: Uint8Array,
  target: Uint8Array,
  dst: Uint8Array,
  solicited: boolean,
): number {
  writeEth(buf, off, ethDst, mac, ETH_P_IPV6);
  const l3 = off + ETH_HLEN;
  const l4 = l3 + IPV6_HLEN;
  const plen = 32;
  writeIpv6(buf, l3, plen, IPPROTO_ICMPV6, target, dst, 255);
  buf[l4] = NDISC_NEIGHBOUR_ADVERTISEMENT;
  buf[l4 + 1] = 0;
  buf[l4 + 4] = solicited ? 0x60 : 0x20; // S and O flags / O only
  buf[l4 + 5] = 0;
  buf[l4 + 6] = 0;
  buf[l4 + 7] = 0;
  buf.set(target, l4 + 8);
  buf[l4 + 24] = 2; // target link-layer address
  buf[l4 + 25] = 1;
  buf.set(mac, l4 + 26);
  fixIcmp6Checksum(buf, l3, l4, l4 + plen);
  return ETH_HLEN + IPV6_HLEN + plen;
}

/** Write a neighbour solicitation for `target` to its solicited-node multicast group. */
export function writeNeighbourSolicit(
  buf: Uint8Array,
  off: number,
  mac: Uint8Array,
  src: Uint8Array,
  target: Uint8Array,
): number {
  const group = Uint8Array.of(0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, target[13]!, target[14]!, target[15]!);
  const ethDst = Uint8Array.of(0x33, 0x33, 0xff, target[13]!, target[14]!, target[15]!);
  writeEth(buf, off, ethDst, mac, ETH_P_IPV6);
  const l3 = off + ETH_HLEN;
  const l4 = l3 + IPV6_HLEN;
  const plen = 32;
  writeIpv6(buf, l3, plen, IPPROTO_ICMPV6, src, group, 255);
  buf[l4] = NDISC_NEIGHBOUR_SOLICITATION;
  buf[l4 + 1] = 0;
  buf.fill(0, l4 + 4, l4 + 8);
  buf.set(target, l4 + 8);
  buf[l4 + 24] = 1; // source link-layer address
  buf[l4 + 25] = 1;
  buf.set(mac, l4 + 26);
  fixIcmp6Checksum(buf, l3, l4, l4 + plen);
  return ETH_HLEN + IPV6_HLEN + plen;
}
