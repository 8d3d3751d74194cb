// Sequence translation for a connection the SYN proxy opened. The client was given our cookie as
// the server's initial sequence number; the real server chose its own. From then on every segment
// is translated, in both directions, by the difference
//
//   delta = cookie - serverIsn            (modulo 2^32)
//
//   client → server: ack -= delta, every SACK block edge -= delta (they name server bytes);
//                    timestamp echo (TSecr) -= tsDelta
//   server → client: seq += delta;        timestamp value (TSval) += tsDelta
//
// where tsDelta = (our TSval in the SYN-ACK, which the client echoes) - (the server's TSval in its
// SYN-ACK), so the client sees one monotonic timestamp clock and the server gets its own values
// echoed. The client's own sequence numbers need nothing: the SYN to the server carried the
// client's ISN.
//
// Window scaling (RFC 7323): the client was offered our shift (OFFERED_WSCALE) and the server
// chose its own, so a window field may have to be rescaled on its way:
//
//   field' = min(0xffff, field * 2^(sender's shift - receiver's expected shift))
//
// which is a no-op when the two agree (a Linux server with default buffers uses 7, as we offer)
// and rounds down otherwise (a smaller window is always safe). A server that refuses scaling
// makes the client's windows shift left by the client's scale.
//
// Checksums follow every change incrementally (RFC 1624). A segment whose checksum the sender
// left to offload (`partial`: only the pseudo-header is summed) needs no update: the TCP header
// is summed later by the device.

import { update16, update32 } from "../codec/checksum.ts";
import { TCP_ACK, tcpOptionLen } from "../codec/tcp.ts";
import { OPT_SACK, OPT_TS, readU32, writeU32 } from "./tcp-segment.ts";

/** The window scale the proxy offers clients (Linux's default for its usual buffer sizes). */
export const OFFERED_WSCALE = 7;

/** What the proxy keeps per connection (ConnPlane.synproxy). */
export interface SynproxyConn {
  /** 0 waiting for the server's SYN-ACK; 1 established, translating. */
  phase: 0 | 1;
  /** Our ISN towards the client (the cookie). */
  cookie: number;
  clientIsn: number;
  /** cookie - serverIsn (mod 2^32), once the server answered. */
  delta: number;
  /** Timestamps are translated (client offered them and the server agreed). */
  ts: boolean;
  tsDelta: number;
  /** Client's last TSval and the TSval of ours it echoed (for the server's SYN and last ACK). */
  clientTsval: number;
  ourTsval: number;
  /** The client's options as the cookie returned them. */
  mss: number;
  clientWscale: number;
  sackOk: boolean;
  tsOk: boolean;
  /** Window field of the client's ACK (scaled by its shift). */
  clientWindow: number;
  /** Rescaling shifts: client → server, server → client (0: leave the field alone). */
  shiftIn: number;
  shiftOut: number;
  /** When the SYN to the server was last sent (ms). */
  synSentAt: number;
}

function csum(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 16]! << 8) | buf[l4 + 17]!;
}

function setCsum(buf: Uint8Array, l4: number, v: number): void {
  buf[l4 + 16] = v >>> 8;
  buf[l4 + 17] = v & 0xff;
}

/** The two bytes of each 16-bit half swapped (0xAABBCCDD → 0xBBAADDCC). */
function swapHalves(v: number): number {
  return (((v & 0x00ff00ff) << 8) | ((v >>> 8) & 0x00ff00ff)) >>> 0;
}

/**
 * Replace the 32-bit word at o, fixing the checksum unless it is left to offload. Options need
 * not be aligned (a SACK or timestamp option after a lone NOP or a 3-byte window scale starts at
 * an odd offset): a word at an odd offset from the header adds its bytes to the sum the other way
 * round, and the one's complement sum of byte-swapped words is the byte-swapped sum, so the
 * update is the same with both values' halves swapped.
 */
function put32(buf: Uint8Array, l4: number, o: number, v: number, partial: boolean): void {
  const old = readU32(buf, o);
  const nv = v >>> 0;
  if (old === nv) return;
  writeU32(buf, o, nv);
  if (partial) return;
  const odd = ((o - l4) & 1) === 1;
  setCsum(buf, l4, odd ? update32(csum(buf, l4), swapHalves(old), swapHalves(nv)) : update32(csum(buf, l4), old, nv));
}

/** Rescale the window field by 2^shift (clamped, rounded down). */
function rescaleWindow(buf: Uint8Array, l4: number, shift: number, partial: boolean): void {
  if (shift === 0) return;
  const old = (buf[l4 + 14]! << 8) | buf[l4 + 15]!;
  const nv = shift > 0 ? Math.min(0xffff, old * 2 ** shift) : Math.floor(old / 2 ** -shift);
  if (nv === old) return;
  buf[l4 + 14] = nv >>> 8;
  buf[l4 + 15] = nv & 0xff;
  if (!partial) setCsum(buf, l4, update16(csum(buf, l4), old, nv));
}

/** Walk the options: SACK blocks get -delta (client → server), the timestamp option is translated. */
function adjustOptions(
  buf: Uint8Array,
  l4: number,
  hlen: number,
  sp: SynproxyConn,
  inbound: boolean,
  partial: boolean,
) {
  const end = l4 + hlen;
  for (let o = l4 + 20, len: number; (len = tcpOptionLen(buf, o, end)) > 0; o += len) {
    const kind = buf[o]!;
    if (kind === OPT_SACK && inbound && len >= 10 && (len - 2) % 8 === 0) {
      for (let b = o + 2; b < o + len; b += 4) put32(buf, l4, b, readU32(buf, b) - sp.delta, partial);
    } else if (kind === OPT_TS && len === 10 && sp.ts) {
      if (inbound) {
        const ecr = readU32(buf, o + 6);
        if (ecr !== 0) put32(buf, l4, o + 6, ecr - sp.tsDelta, partial);
      } else put32(buf, l4, o + 2, readU32(buf, o + 2) + sp.tsDelta, partial);
    }
  }
}

/** Translate a client → server segment of an established proxied connection in place. */
export function adjustInbound(buf: Uint8Array, l4: number, hlen: number, sp: SynproxyConn, partial: boolean): void {
  if (buf[l4 + 13]! & TCP_ACK) put32(buf, l4, l4 + 8, readU32(buf, l4 + 8) - sp.delta, partial);
  if (hlen > 20) adjustOptions(buf, l4, hlen, sp, true, partial);
  rescaleWindow(buf, l4, sp.shiftIn, partial);
}

/** Translate a server → client segment of an established proxied connection in place. */
export function adjustOutbound(buf: Uint8Array, l4: number, hlen: number, sp: SynproxyConn, partial: boolean): void {
  put32(buf, l4, l4 + 4, readU32(buf, l4 + 4) + sp.delta, partial);
  if (hlen > 20 && sp.ts) adjustOptions(buf, l4, hlen, sp, false, partial);
  rescaleWindow(buf, l4, sp.shiftOut, partial);
}

/**
 * The shifts once the server's SYN-ACK is known: `serverWscale` is its window scale option (-1
 * when absent). The client scales by its own shift whenever it sent one (we always answer with
 * OFFERED_WSCALE then); the server scales only when it agreed.
 */
export function windowShifts(clientWscale: number, serverWscale: number): { shiftIn: number; shiftOut: number } {
  const clientScales = clientWscale >= 0;
  const agreed = clientScales && serverWscale >= 0;
  const clientApplies = clientScales ? clientWscale : 0;
  const serverExpects = agreed ? clientWscale : 0;
  const serverApplies = agreed ? serverWscale : 0;
  const clientExpects = clientScales ? OFFERED_WSCALE : 0;
  return { shiftIn: clientApplies - serverExpects, shiftOut: serverApplies - clientExpects };
}
