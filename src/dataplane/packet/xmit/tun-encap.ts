// The tunnel types of TUN destinations (ipvsadm --tun-type ipip|gue|gre, the kernel's
// ipvs_gue_encap and ipvs_gre_encap in ip_vs_xmit.c): what sits between the outer IP header and the
// client's packet, and the checksums that cover it. tun.ts builds the outer IP header around it.
//
// IPIP: nothing; the outer protocol says what is inside (4: IPv4, 41: IPv6).
//
// GUE (draft-ietf-intarea-gue, as Linux's fou speaks it): outer protocol 17, a UDP header to the
// destination's --tun-port from a source port chosen by a hash of the flow, then a 4-byte GUE
// header: version 0, C 0, Hlen (option words), the inner protocol (4 or 41), flags. The source
// port spreads flows over the ephemeral range as the kernel's udp_flow_src_port does (the kernel
// hashes the inner packet with a boot-time random key; tvs hashes the connection's tuple with a
// fixed one, so every packet of a connection, fragments included, gets the same port, and the
// same connection always gets the same port). The UDP checksum is 0 ("none") unless --tun-csum or
// --tun-remcsum is set, then it is computed over the outer pseudo-header, UDP, GUE and the inner
// packet (also for an IPv6 outer header: the kernel's udp6_set_csum leaves 0 for nocsum too).
// --tun-remcsum (remote checksum offload, RFC 7605 style): when the client's packet still has its
// transport checksum left to offload (the field holds only the pseudo-header sum), it is not
// finished here; the GUE header grows by a private-flags word (P flag, REMCSUM bit) and a word
// with where the checksum computation starts and where the checksum goes, both counted from the
// start of the inner packet, and the receiver fills it in. A packet whose checksum is complete
// gets no option, exactly as in the kernel. --tun-nocsum is the default.
//
// GRE (RFC 2784): outer protocol 47, a 4-byte header (C bit, version 0, the inner EtherType
// 0x0800 or 0x86DD), and with --tun-csum 4 more bytes: a checksum over the GRE header and the
// inner packet (no pseudo-header) and a reserved word. No key, no sequence number, as the kernel.
//
// Which option a type takes is ipvsadm's table (tunnel_types_v_options): ipip none; gue a port and
// one of nocsum / csum / remcsum; gre one of nocsum / csum. Core refuses the rest (core/dest.ts).

import type { TunOptions } from "../../../core/dest.ts";
import { fold, sumBytes } from "../codec/checksum.ts";
import { ETH_P_IP, ETH_P_IPV6 } from "../codec/eth.ts";
import { IPPROTO_IPIP, IPPROTO_UDP } from "../codec/ipv4.ts";
import { IPPROTO_IPV6 } from "../codec/ipv6.ts";

export const IPPROTO_GRE = 47;
const UDP_HLEN = 8;
const GUE_HLEN = 4;
/** Private flags word + remote checksum offload word (GUE_LEN_PRIV + GUE_PLEN_REMCSUM). */
const GUE_REMCSUM_LEN = 8;
const GUE_FLAG_PRIV = 0x0001;
const GRE_HLEN = 4;
const GRE_CSUM_LEN = 4;
const GRE_F_CSUM = 0x8000;

/** The kernel's default net.ipv4.ip_local_port_range: where GUE source ports are drawn from. */
export const GUE_SPORT_MIN = 32768;
export const GUE_SPORT_MAX = 60999;

/** Whether the GUE header carries the remote checksum option for a packet (partial: its checksum is left to offload). */
export function gueRemcsum(tun: TunOptions, partial: boolean): boolean {
  return tun.type === "gue" && tun.remcsum && partial;
}

/** Bytes between the outer IP header and the inner packet (remcsum: with the GUE remote checksum option). */
export function encapLength(tun: TunOptions, remcsum: boolean): number {
  if (tun.type === "gue") return UDP_HLEN + GUE_HLEN + (remcsum ? GUE_REMCSUM_LEN : 0);
  if (tun.type === "gre") return GRE_HLEN + (tun.csum ? GRE_CSUM_LEN : 0);
  return 0;
}

/** The outer header's protocol for a tunnel type and inner family. */
export function outerProtocol(tun: TunOptions, inner6: boolean): number {
  if (tun.type === "gue") return IPPROTO_UDP;
  if (tun.type === "gre") return IPPROTO_GRE;
  return inner6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
}

/**
 * The GUE source port for a flow: a 32-bit mix of its tuple scaled onto the ephemeral range the
 * way udp_flow_src_port scales skb_get_hash (h ^= h << 16, then (h * range) >> 32, plus the minimum).
 */
export function gueSourcePort(caddr: number, vaddr: number, cport: number, vport: number, proto: number): number {
  let h = (caddr ^ Math.imul(vaddr, 0x9e3779b1) ^ ((cport << 16) | vport) ^ Math.imul(proto, 0x27d4eb2f)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  h ^= h >>> 16;
  h = (h ^ (h << 16)) >>> 0;
  return GUE_SPORT_MIN + Math.floor((h * (GUE_SPORT_MAX - GUE_SPORT_MIN)) / 0x100000000);
}

/** An IPv6 address's 16 bytes folded to 32 bits (for the source-port hash). */
export function fold128(b: Uint8Array): number {
  let h = 0;
  for (let i = 0; i < 16; i += 4) h ^= ((b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!) >>> 0;
  return h >>> 0;
}

export interface EncapArgs {
  tun: TunOptions;
  /** The inner packet is IPv6. */
  inner6: boolean;
  /** Length of the inner packet (from its IP header to its end). */
  innerLen: number;
  /** GUE: the UDP source port (gueSourcePort). */
  sport: number;
  /** GUE remote checksum offload: [start, offset] of the inner transport checksum from the inner IP header. */
  remcsum: [number, number] | undefined;
}

/** Write the encapsulation header at buf[at] (encapLength bytes, right before the inner packet). */
export function writeEncap(buf: Uint8Array, at: number, a: EncapArgs): void {
  if (a.tun.type === "gue") {
    const ulen = encapLength(a.tun, a.remcsum !== undefined) + a.innerLen;
    put16(buf, at, a.sport);
    put16(buf, at + 2, a.tun.port);
    put16(buf, at + 4, ulen);
    put16(buf, at + 6, 0);
    const g = at + UDP_HLEN;
    const optWords = a.remcsum ? GUE_REMCSUM_LEN / 4 : 0;
    buf[g] = optWords; // version 0, C 0, Hlen
    buf[g + 1] = a.inner6 ? IPPROTO_IPV6 : IPPROTO_IPIP;
    put16(buf, g + 2, a.remcsum ? GUE_FLAG_PRIV : 0);
    if (a.remcsum) {
      put16(buf, g + 4, 0x8000); // private flags: REMCSUM (bit 31)
      put16(buf, g + 6, 0);
      put16(buf, g + 8, a.remcsum[0]);
      put16(buf, g + 10, a.remcsum[1]);
    }
  } else if (a.tun.type === "gre") {
    put16(buf, at, a.tun.csum ? GRE_F_CSUM : 0);
    put16(buf, at + 2, a.inner6 ? ETH_P_IPV6 : ETH_P_IP);
    if (a.tun.csum) put32zero(buf, at + 4);
  }
}

/**
 * Fill in the encapsulation's checksum, once the outer IP header (at outer, family outer6) and the
 * inner packet are in place: the GUE UDP checksum with --tun-csum / --tun-remcsum, the GRE
 * checksum with --tun-csum; nothing otherwise.
 */
export function finishEncapChecksum(buf: Uint8Array, outer: number, outer6: boolean, at: number, a: EncapArgs): void {
  const len = encapLength(a.tun, a.remcsum !== undefined) + a.innerLen;
  if (a.tun.type === "gue" && (a.tun.csum || a.tun.remcsum)) {
    const ph = outer6
      ? sumBytes(buf, outer + 8, 32, IPPROTO_UDP + Math.floor(len / 0x10000) + (len & 0xffff))
      : sumBytes(buf, outer + 12, 8, IPPROTO_UDP + len);
    let c = ~fold(sumBytes(buf, at, len, ph)) & 0xffff;
    if (c === 0) c = 0xffff;
    put16(buf, at + 6, c);
  } else if (a.tun.type === "gre" && a.tun.csum) {
    put16(buf, at + 4, ~fold(sumBytes(buf, at, len)) & 0xffff);
  }
}

function put16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = (v >>> 8) & 0xff;
  buf[at + 1] = v & 0xff;
}

function put32zero(buf: Uint8Array, at: number): void {
  buf[at] = 0;
  buf[at + 1] = 0;
  buf[at + 2] = 0;
  buf[at + 3] = 0;
}
