// Builds whole frames from a description, computing every length and checksum from scratch
// (never incrementally), for fixtures, the fuzz test, benchmarks and lab tests. Because it
// shares no rewrite code with the pipeline, a fixture's expected frame is an independent oracle.

import { parseIpv4, parseIpv6Groups } from "../../core/addr.ts";
import { ARP_LEN } from "./codec/arp.ts";
import { checksum, finish, pseudo4, pseudo6, sumBytes } from "./codec/checksum.ts";
import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, ETH_ZLEN, parseMac } from "./codec/eth.ts";
import { ip6Bytes } from "./codec/ipv6.ts";

export const IPPROTO = { icmp: 1, ipip: 4, tcp: 6, udp: 17, icmpv6: 58, sctp: 132 } as const;

function v4(a: string): number {
  const n = parseIpv4(a);
  if (n === undefined) throw new RangeError(`Invalid IPv4 address "${a}"`);
  return n;
}

function v6(a: string): Uint8Array {
  const g = parseIpv6Groups(a);
  if (!g) throw new RangeError(`Invalid IPv6 address "${a}"`);
  return ip6Bytes(g);
}

/** Ethernet frame, padded with zeros to 60 bytes. */
export function eth(dst: string, src: string, type: number, payload: Uint8Array): Buffer {
  const len = Math.max(ETH_ZLEN, 14 + payload.length);
  const b = Buffer.alloc(len);
  b.set(parseMac(dst), 0);
  b.set(parseMac(src), 6);
  b.writeUInt16BE(type, 12);
  b.set(payload, 14);
  return b;
}

export interface Ipv4Opts {
  ttl?: number;
  id?: number;
  df?: boolean;
  mf?: boolean;
  fragOffset?: number;
  tos?: number;
}

export function ipv4(src: string, dst: string, protocol: number, payload: Uint8Array, o: Ipv4Opts = {}): Buffer {
  const b = Buffer.alloc(20 + payload.length);
  b[0] = 0x45;
  b[1] = o.tos ?? 0;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(o.id ?? 0x1234, 4);
  b.writeUInt16BE((o.df ? 0x4000 : 0) | (o.mf ? 0x2000 : 0) | ((o.fragOffset ?? 0) & 0x1fff), 6);
  b[8] = o.ttl ?? 64;
  b[9] = protocol;
  b.writeUInt32BE(v4(src), 12);
  b.writeUInt32BE(v4(dst), 16);
  b.writeUInt16BE(checksum(b, 0, 20), 10);
  b.set(payload, 20);
  return b;
}

export function ipv6(src: string, dst: string, nextHeader: number, payload: Uint8Array, hopLimit = 64): Buffer {
  const b = Buffer.alloc(40 + payload.length);
  b[0] = 0x60;
  b.writeUInt16BE(payload.length, 4);
  b[6] = nextHeader;
  b[7] = hopLimit;
  b.set(v6(src), 8);
  b.set(v6(dst), 24);
  b.set(payload, 40);
  return b;
}

/** The pseudo-header sum for src/dst text addresses. */
function pseudo(src: string, dst: string, proto: number, len: number): number {
  if (src.includes(":")) {
    const t = Buffer.concat([v6(src), v6(dst)]);
    return pseudo6(t, 0, proto, len);
  }
  const t = Buffer.alloc(8);
  t.writeUInt32BE(v4(src), 0);
  t.writeUInt32BE(v4(dst), 4);
  return pseudo4(t, 0, proto, len);
}

export interface TcpOpts {
  sport: number;
  dport: number;
  flags: number;
  seq?: number;
  ack?: number;
  window?: number;
  mss?: number;
  /** Raw option bytes (a multiple of 4), written after the MSS option when both are given. */
  options?: Uint8Array;
  payload?: Uint8Array;
  /** Leave the checksum as the offload pseudo-header sum (CHECKSUM_PARTIAL). */
  partial?: boolean;
}

export function tcp(src: string, dst: string, o: TcpOpts): Buffer {
  const mssLen = o.mss !== undefined ? 4 : 0;
  const opt = mssLen + (o.options?.length ?? 0);
  const pl = o.payload ?? new Uint8Array(0);
  const b = Buffer.alloc(20 + opt + pl.length);
  b.writeUInt16BE(o.sport, 0);
  b.writeUInt16BE(o.dport, 2);
  b.writeUInt32BE(o.seq ?? 1000, 4);
  b.writeUInt32BE(o.ack ?? 0, 8);
  b[12] = ((20 + opt) / 4) << 4;
  b[13] = o.flags;
  b.writeUInt16BE(o.window ?? 65535, 14);
  if (o.mss !== undefined) {
    b[20] = 2;
    b[21] = 4;
    b.writeUInt16BE(o.mss, 22);
  }
  if (o.options !== undefined) b.set(o.options, 20 + mssLen);
  b.set(pl, 20 + opt);
  const ph = pseudo(src, dst, IPPROTO.tcp, b.length);
  if (o.partial) {
    let s = ph;
    while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
    b.writeUInt16BE(s, 16);
  } else b.writeUInt16BE(finish(sumBytes(b, 0, b.length, ph)), 16);
  return b;
}

export function udp(
  src: string,
  dst: string,
  sport: number,
  dport: number,
  payload: Uint8Array,
  noChecksum = false,
): Buffer {
  const b = Buffer.alloc(8 + payload.length);
  b.writeUInt16BE(sport, 0);
  b.writeUInt16BE(dport, 2);
  b.writeUInt16BE(b.length, 4);
  b.set(payload, 8);
  if (!noChecksum) {
    let c = finish(sumBytes(b, 0, b.length, pseudo(src, dst, IPPROTO.udp, b.length)));
    if (c === 0) c = 0xffff;
    b.writeUInt16BE(c, 6);
  }
  return b;
}

/** ICMPv4 message: type, code, the 4 "rest of header" bytes as a number, then the body. */
export function icmp(type: number, code: number, rest: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(8 + body.length);
  b[0] = type;
  b[1] = code;
  b.writeUInt32BE(rest >>> 0, 4);
  b.set(body, 8);
  b.writeUInt16BE(checksum(b, 0, b.length), 2);
  return b;
}

export function icmpv6(src: string, dst: string, type: number, code: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(4 + body.length);
  b[0] = type;
  b[1] = code;
  b.set(body, 4);
  b.writeUInt16BE(finish(sumBytes(b, 0, b.length, pseudo(src, dst, IPPROTO.icmpv6, b.length))), 2);
  return b;
}

export function arp(op: number, sha: string, spa: string, tha: string, tpa: string): Buffer {
  const b = Buffer.alloc(ARP_LEN);
  b.writeUInt16BE(1, 0);
  b.writeUInt16BE(0x0800, 2);
  b[4] = 6;
  b[5] = 4;
  b.writeUInt16BE(op, 6);
  b.set(parseMac(sha), 8);
  b.writeUInt32BE(v4(spa), 14);
  b.set(parseMac(tha), 18);
  b.writeUInt32BE(v4(tpa), 24);
  return b;
}

export function arpFrame(dst: string, op: number, sha: string, spa: string, tha: string, tpa: string): Buffer {
  return eth(dst, sha, ETH_P_ARP, arp(op, sha, spa, tha, tpa));
}

/** An Ethernet + IPv4 + TCP frame. */
export function tcp4Frame(
  dstMac: string,
  srcMac: string,
  src: string,
  dst: string,
  o: TcpOpts,
  ip: Ipv4Opts = {},
): Buffer {
  return eth(dstMac, srcMac, ETH_P_IP, ipv4(src, dst, IPPROTO.tcp, tcp(src, dst, o), ip));
}

export function udp4Frame(
  dstMac: string,
  srcMac: string,
  src: string,
  dst: string,
  sport: number,
  dport: number,
  payload: Uint8Array,
  o: { noChecksum?: boolean; ip?: Ipv4Opts } = {},
): Buffer {
  return eth(
    dstMac,
    srcMac,
    ETH_P_IP,
    ipv4(src, dst, IPPROTO.udp, udp(src, dst, sport, dport, payload, o.noChecksum), o.ip),
  );
}

export function tcp6Frame(dstMac: string, srcMac: string, src: string, dst: string, o: TcpOpts, hopLimit = 64): Buffer {
  return eth(dstMac, srcMac, ETH_P_IPV6, ipv6(src, dst, IPPROTO.tcp, tcp(src, dst, o), hopLimit));
}

export { ETH_P_IP, ETH_P_IPV6 };
