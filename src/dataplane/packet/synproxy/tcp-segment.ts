// The TCP pieces the SYN proxy reads and writes whole: the options of a SYN or an ACK (MSS,
// window scale, SACK-permitted, timestamps: RFC 9293, RFC 7323, RFC 2018), and complete segments
// it sends itself (the SYN-ACK with the cookie, the SYN to the real server, the handshake's last
// ACK, the window update), written over a frame's IP and TCP headers with every length and
// checksum computed afresh.

import { finish, pseudo4, pseudo6, sumBytes } from "../codec/checksum.ts";
import { IPPROTO_TCP } from "../codec/ipv4.ts";
import { tcpOptionLen } from "../codec/tcp.ts";

export const OPT_NOP = 1;
export const OPT_MSS = 2;
export const OPT_WSCALE = 3;
export const OPT_SACK_PERM = 4;
export const OPT_SACK = 5;
export const OPT_TS = 8;

/** What a segment's options say; offsets are absolute positions in the buffer. */
export interface TcpOptionView {
  /** MSS option value, -1 when absent. */
  mss: number;
  /** Window scale shift, -1 when absent. */
  wscale: number;
  sackOk: boolean;
  /** Offset of the timestamp option's TSval (TSecr follows), -1 when absent. */
  ts: number;
}

export function emptyOptionView(): TcpOptionView {
  return { mss: -1, wscale: -1, sackOk: false, ts: -1 };
}

/** Read the options of the TCP header at l4 (header length hlen) into `out`; malformed lists end the walk. */
export function readTcpOptions(buf: Uint8Array, l4: number, hlen: number, out: TcpOptionView): TcpOptionView {
  out.mss = -1;
  out.wscale = -1;
  out.sackOk = false;
  out.ts = -1;
  const end = l4 + hlen;
  for (let o = l4 + 20, len: number; (len = tcpOptionLen(buf, o, end)) > 0; o += len) {
    const kind = buf[o]!;
    if (kind === OPT_MSS && len === 4) out.mss = (buf[o + 2]! << 8) | buf[o + 3]!;
    else if (kind === OPT_WSCALE && len === 3) out.wscale = Math.min(buf[o + 2]!, 14);
    else if (kind === OPT_SACK_PERM && len === 2) out.sackOk = true;
    else if (kind === OPT_TS && len === 10) out.ts = o + 2;
  }
  return out;
}

/** The options of a handshake segment the proxy sends. */
export interface HandshakeOptions {
  /** MSS to announce, or -1 for none. */
  mss: number;
  sackOk: boolean;
  /** Timestamps: [TSval, TSecr], or undefined for none. */
  ts: readonly [number, number] | undefined;
  /** Window scale shift to announce, or -1 for none. */
  wscale: number;
}

/**
 * Write options at `o` (4-byte aligned, NOP-padded) and return their length: MSS, then
 * SACK-permitted and timestamps sharing a word where both are there, then window scale.
 */
export function writeOptions(buf: Uint8Array, o: number, h: HandshakeOptions): number {
  const start = o;
  if (h.mss >= 0) {
    buf[o++] = OPT_MSS;
    buf[o++] = 4;
    buf[o++] = h.mss >>> 8;
    buf[o++] = h.mss & 0xff;
  }
  if (h.ts !== undefined) {
    buf[o++] = h.sackOk ? OPT_SACK_PERM : OPT_NOP;
    buf[o++] = h.sackOk ? 2 : OPT_NOP;
    buf[o++] = OPT_TS;
    buf[o++] = 10;
    writeU32(buf, o, h.ts[0]);
    writeU32(buf, o + 4, h.ts[1]);
    o += 8;
  } else if (h.sackOk) {
    buf[o++] = OPT_NOP;
    buf[o++] = OPT_NOP;
    buf[o++] = OPT_SACK_PERM;
    buf[o++] = 2;
  }
  if (h.wscale >= 0) {
    buf[o++] = OPT_NOP;
    buf[o++] = OPT_WSCALE;
    buf[o++] = 3;
    buf[o++] = h.wscale;
  }
  return o - start;
}

export function readU32(buf: Uint8Array, o: number): number {
  return ((buf[o]! << 24) | (buf[o + 1]! << 16) | (buf[o + 2]! << 8) | buf[o + 3]!) >>> 0;
}

export function writeU32(buf: Uint8Array, o: number, v: number): void {
  buf[o] = v >>> 24;
  buf[o + 1] = (v >>> 16) & 0xff;
  buf[o + 2] = (v >>> 8) & 0xff;
  buf[o + 3] = v & 0xff;
}

/** The fields of a segment the proxy writes. */
export interface SegmentSpec {
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: HandshakeOptions | undefined;
}

/**
 * Write an IP header at l3 (IPv4: 20 bytes, DF, TTL 64; IPv6: 40 bytes, hop limit 64) with the
 * given addresses (IPv4 as integers, IPv6 as 16 bytes), then a TCP segment without payload after
 * it, both checksums complete. Returns the end of the packet.
 */
export function writeTcpPacket(
  buf: Uint8Array,
  l3: number,
  family: 4 | 6,
  src: number | Uint8Array,
  dst: number | Uint8Array,
  s: SegmentSpec,
): number {
  const l4 = l3 + (family === 4 ? 20 : 40);
  const optLen = s.options === undefined ? 0 : writeOptions(buf, l4 + 20, s.options);
  const tcpLen = 20 + optLen;
  buf[l4] = s.sport >>> 8;
  buf[l4 + 1] = s.sport & 0xff;
  buf[l4 + 2] = s.dport >>> 8;
  buf[l4 + 3] = s.dport & 0xff;
  writeU32(buf, l4 + 4, s.seq >>> 0);
  writeU32(buf, l4 + 8, s.ack >>> 0);
  buf[l4 + 12] = (tcpLen / 4) << 4;
  buf[l4 + 13] = s.flags;
  buf[l4 + 14] = s.window >>> 8;
  buf[l4 + 15] = s.window & 0xff;
  buf[l4 + 16] = 0;
  buf[l4 + 17] = 0;
  buf[l4 + 18] = 0;
  buf[l4 + 19] = 0;
  let ph: number;
  if (family === 4) {
    const total = 20 + tcpLen;
    buf[l3] = 0x45;
    buf[l3 + 1] = 0;
    buf[l3 + 2] = total >>> 8;
    buf[l3 + 3] = total & 0xff;
    buf[l3 + 4] = 0;
    buf[l3 + 5] = 0;
    buf[l3 + 6] = 0x40;
    buf[l3 + 7] = 0;
    buf[l3 + 8] = 64;
    buf[l3 + 9] = IPPROTO_TCP;
    buf[l3 + 10] = 0;
    buf[l3 + 11] = 0;
    writeU32(buf, l3 + 12, src as number);
    writeU32(buf, l3 + 16, dst as number);
    const hc = finish(sumBytes(buf, l3, 20));
    buf[l3 + 10] = hc >>> 8;
    buf[l3 + 11] = hc & 0xff;
    ph = pseudo4(buf, l3 + 12, IPPROTO_TCP, tcpLen);
  } else {
    buf[l3] = 0x60;
    buf[l3 + 1] = 0;
    buf[l3 + 2] = 0;
    buf[l3 + 3] = 0;
    buf[l3 + 4] = tcpLen >>> 8;
    buf[l3 + 5] = tcpLen & 0xff;
    buf[l3 + 6] = IPPROTO_TCP;
    buf[l3 + 7] = 64;
    buf.set(src as Uint8Array, l3 + 8);
    buf.set(dst as Uint8Array, l3 + 24);
    ph = pseudo6(buf, l3 + 8, IPPROTO_TCP, tcpLen);
  }
  const c = finish(sumBytes(buf, l4, tcpLen, ph));
  buf[l4 + 16] = c >>> 8;
  buf[l4 + 17] = c & 0xff;
  return l4 + tcpLen;
}
