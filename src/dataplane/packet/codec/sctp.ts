// SCTP (RFC 9260, formerly RFC 4960) as far as a director reads it: the 12-byte common header
// (source port, destination port, verification tag, CRC32c checksum) and the chunk headers that
// follow it (type, flags, length; chunks padded to 4 bytes). The state machine needs only the
// first chunk's type, and for a COOKIE ECHO or COOKIE ACK the type of the chunk bundled after it
// (an ABORT there ends the association: ip_vs_proto_sctp.c's set_sctp_state reads it the same way).
//
// The checksum is CRC32c over the whole SCTP packet with the checksum field taken as zero, stored
// in network order of the CRC's bytes as the reflected algorithm produces them, i.e. the CRC's
// least significant byte first (the field "reads" little-endian).

import { crc32c, crc32cUpdate32 } from "./crc32c.ts";

export const IPPROTO_SCTP = 132;
export const SCTP_HLEN = 12;
export const SCTP_CHUNK_HLEN = 4;

export const SCTP_CID_DATA = 0;
export const SCTP_CID_INIT = 1;
export const SCTP_CID_INIT_ACK = 2;
export const SCTP_CID_SACK = 3;
export const SCTP_CID_HEARTBEAT = 4;
export const SCTP_CID_HEARTBEAT_ACK = 5;
export const SCTP_CID_ABORT = 6;
export const SCTP_CID_SHUTDOWN = 7;
export const SCTP_CID_SHUTDOWN_ACK = 8;
export const SCTP_CID_ERROR = 9;
export const SCTP_CID_COOKIE_ECHO = 10;
export const SCTP_CID_COOKIE_ACK = 11;
export const SCTP_CID_SHUTDOWN_COMPLETE = 14;

/** The chunk types the director reads from one packet. */
export interface SctpChunks {
  /** Type of the first chunk. */
  first: number;
  /** Type of the chunk after a first COOKIE ECHO / COOKIE ACK, -1 otherwise or when none. */
  next: number;
}

/**
 * Read the first chunk (and the one after a COOKIE ECHO / ACK) of the SCTP packet at l4, whose
 * transport length is len. False when the packet has no complete common header and chunk header,
 * or the first chunk's length is below 4.
 */
export function readSctpChunks(buf: Uint8Array, l4: number, len: number, out: SctpChunks): boolean {
  if (len < SCTP_HLEN + SCTP_CHUNK_HLEN) return false;
  const c = l4 + SCTP_HLEN;
  const type = buf[c]!;
  const clen = (buf[c + 2]! << 8) | buf[c + 3]!;
  if (clen < SCTP_CHUNK_HLEN) return false;
  out.first = type;
  out.next = -1;
  if (type === SCTP_CID_COOKIE_ECHO || type === SCTP_CID_COOKIE_ACK) {
    const n = SCTP_HLEN + ((clen + 3) & ~3);
    if (n + SCTP_CHUNK_HLEN <= len) out.next = buf[l4 + n]!;
  }
  return true;
}

/** The checksum field as stored (the CRC value, least significant byte first). */
export function readSctpChecksum(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 8]! | (buf[l4 + 9]! << 8) | (buf[l4 + 10]! << 16) | (buf[l4 + 11]! << 24)) >>> 0;
}

export function writeSctpChecksum(buf: Uint8Array, l4: number, crc: number): void {
  buf[l4 + 8] = crc & 0xff;
  buf[l4 + 9] = (crc >>> 8) & 0xff;
  buf[l4 + 10] = (crc >>> 16) & 0xff;
  buf[l4 + 11] = crc >>> 24;
}

/** The CRC32c the SCTP packet at l4 (len bytes) should carry: its bytes with the field as zero. */
export function sctpChecksum(buf: Uint8Array, l4: number, len: number): number {
  const saved = readSctpChecksum(buf, l4);
  writeSctpChecksum(buf, l4, 0);
  const c = crc32c(buf, l4, len);
  writeSctpChecksum(buf, l4, saved);
  return c;
}

/** Whether the SCTP packet's checksum verifies. */
export function sctpChecksumOk(buf: Uint8Array, l4: number, len: number): boolean {
  return sctpChecksum(buf, l4, len) === readSctpChecksum(buf, l4);
}

/** Compute and store the checksum (a packet whose sender left it to offload). */
export function fillSctpChecksum(buf: Uint8Array, l4: number, len: number): void {
  writeSctpChecksum(buf, l4, sctpChecksum(buf, l4, len));
}

/** Both ports as one big-endian word (source port in the high half). */
export function readSctpPorts(buf: Uint8Array, l4: number): number {
  return ((buf[l4]! << 24) | (buf[l4 + 1]! << 16) | (buf[l4 + 2]! << 8) | buf[l4 + 3]!) >>> 0;
}

/**
 * After a rewrite changed the ports from `before` (readSctpPorts) to what the header holds now,
 * bring the checksum along without reading the payload: a packet that was corrupt stays corrupt.
 */
export function updateSctpChecksumForPorts(buf: Uint8Array, l4: number, len: number, before: number): void {
  const after = readSctpPorts(buf, l4);
  if (after === before) return;
  writeSctpChecksum(buf, l4, crc32cUpdate32(readSctpChecksum(buf, l4), len, 0, before, after));
}
