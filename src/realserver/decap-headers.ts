// The GUE and GRE headers a TUN real server strips (the director's --tun-type gue|gre), in the
// shapes Linux's own receivers accept (net/ipv4/fou.c gue_udp_recv, net/ipv4/gre_demux.c
// gre_parse_header), so `tvs realserver` takes what a kernel real server would take.
//
// GUE (a UDP payload; the kernel has checked the UDP checksum when there was one): variant 0 has a
// 4-byte header (version 0, C, Hlen option words, the inner protocol, 16 flag bits) and Hlen words
// of options; only the private-flags flag (P) is known, and in the private word only REMCSUM, whose
// 4-byte option says where the inner transport checksum computation starts and where the checksum
// goes (counted from the inner packet): the sender left the field holding the pseudo-header sum,
// so the checksum over [start, end) is computed here and stored, as the kernel's remote checksum
// offload does. Unknown flags, a control message (C), or options longer than the packet: drop.
// Variant 1 (version bits 01) is the IP packet itself, with no GUE header.
//
// GRE (RFC 2784 / 2890, version 0 only): C (checksum + reserved word, checked), K (key word,
// skipped), S (sequence word, skipped); routing (R) and other versions are dropped. The protocol
// must be the VIP family's EtherType (0x0800, 0x86DD).

import { fold, sumBytes } from "../dataplane/packet/codec/checksum.ts";

const IPPROTO_IPIP = 4;
const IPPROTO_IPV6 = 41;
const GUE_FLAG_PRIV = 0x0001;
const GUE_PFLAG_REMCSUM = 0x80000000;
const GRE_CSUM = 0x8000;
const GRE_ROUTING = 0x4000;
const GRE_KEY = 0x2000;
const GRE_SEQ = 0x1000;
const GRE_VERSION = 0x0007;

/** Whether the `avail` bytes at `inner` are a whole-header packet of the VIP's family addressed to it. */
export function innerIsForVip(buf: Uint8Array, inner: number, avail: number, vip: Uint8Array): boolean {
  const v6 = vip.length === 16;
  if (avail < (v6 ? 40 : 20) || buf[inner]! >> 4 !== (v6 ? 6 : 4)) return false;
  const dst = inner + (v6 ? 24 : 16);
  for (let i = 0; i < vip.length; i++) if (buf[dst + i] !== vip[i]) return false;
  return true;
}

const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;

/**
 * A GUE payload (a UDP datagram's data at buf[at], len bytes): [offset, length] of the inner
 * packet to deliver, after applying a remote checksum option; undefined to drop it.
 */
export function innerFromGue(buf: Uint8Array, at: number, len: number, vip: Uint8Array): [number, number] | undefined {
  if (len < 4) return undefined;
  const variant = buf[at]! >> 6;
  if (variant === 1) return innerIsForVip(buf, at, len, vip) ? [at, len] : undefined;
  if (variant !== 0 || buf[at]! & 0x20) return undefined;
  const hlen = 4 + (buf[at]! & 0x1f) * 4;
  if (buf[at + 1] !== (vip.length === 16 ? IPPROTO_IPV6 : IPPROTO_IPIP) || len < hlen) return undefined;
  const flags = u16(buf, at + 2);
  if (flags & ~GUE_FLAG_PRIV) return undefined;
  const inner = at + hlen;
  const innerLen = len - hlen;
  if (!innerIsForVip(buf, inner, innerLen, vip)) return undefined;
  if (flags & GUE_FLAG_PRIV) {
    if (hlen < 8) return undefined;
    const priv = u32(buf, at + 4);
    if (priv & ~GUE_PFLAG_REMCSUM) return undefined;
    if (priv & GUE_PFLAG_REMCSUM) {
      if (hlen < 12) return undefined;
      const start = u16(buf, at + 8);
      const offset = u16(buf, at + 10);
      if (offset + 2 > innerLen || start >= innerLen || offset < start) return undefined;
      let c = ~fold(sumBytes(buf, inner + start, innerLen - start)) & 0xffff;
      // A UDP checksum that computes to 0 is sent as all ones (0 means "none").
      if (c === 0 && offset - start === 6) c = 0xffff;
      buf[inner + offset] = c >>> 8;
      buf[inner + offset + 1] = c & 0xff;
    }
  }
  return [inner, innerLen];
}

/**
 * A GRE packet (the GRE header at buf[at], len bytes to the end): [offset, length] of the inner
 * packet to deliver, or undefined to drop it (unknown flags or version, a bad checksum, another
 * protocol, not for the VIP).
 */
export function innerFromGreHeader(
  buf: Uint8Array,
  at: number,
  len: number,
  vip: Uint8Array,
): [number, number] | undefined {
  if (len < 4) return undefined;
  const flags = u16(buf, at);
  if (flags & (GRE_ROUTING | GRE_VERSION)) return undefined;
  if (u16(buf, at + 2) !== (vip.length === 16 ? 0x86dd : 0x0800)) return undefined;
  const hlen = 4 + (flags & GRE_CSUM ? 4 : 0) + (flags & GRE_KEY ? 4 : 0) + (flags & GRE_SEQ ? 4 : 0);
  if (len < hlen) return undefined;
  if (flags & GRE_CSUM && fold(sumBytes(buf, at, len)) !== 0xffff) return undefined;
  if (!innerIsForVip(buf, at + hlen, len - hlen, vip)) return undefined;
  return [at + hlen, len - hlen];
}

/** GRE as read from a raw IPv4 socket (the outer IPv4 header first). */
export function innerFromGre4(buf: Uint8Array, at: number, len: number, vip: Uint8Array): [number, number] | undefined {
  if (len < 20 || buf[at]! >> 4 !== 4) return undefined;
  const ihl = (buf[at]! & 15) * 4;
  if (ihl < 20 || len < ihl || buf[at + 9] !== 47) return undefined;
  return innerFromGreHeader(buf, at + ihl, len - ihl, vip);
}
