// ARP for IPv4 over Ethernet (RFC 826): read a request or reply in place and write replies,
// requests and gratuitous announcements. Only htype 1 / ptype 0x0800 / hlen 6 / plen 4 is accepted.

import { ETH_HLEN, ETH_P_ARP, ETH_ZLEN, writeEth } from "./eth.ts";

export const ARP_LEN = 28;
export const ARP_REQUEST = 1;
export const ARP_REPLY = 2;

export interface ArpInfo {
  op: number;
  /** Offsets of the sender/target hardware and protocol addresses within the buffer. */
  sha: number;
  spa: number;
  tha: number;
  tpa: number;
}

export function parseArp(buf: Uint8Array, l3: number, end: number, out: ArpInfo): boolean {
  if (end - l3 < ARP_LEN) return false;
  if (buf[l3] !== 0 || buf[l3 + 1] !== 1 || buf[l3 + 2] !== 0x08 || buf[l3 + 3] !== 0) return false;
  if (buf[l3 + 4] !== 6 || buf[l3 + 5] !== 4) return false;
  out.op = (buf[l3 + 6]! << 8) | buf[l3 + 7]!;
  out.sha = l3 + 8;
  out.spa = l3 + 14;
  out.tha = l3 + 18;
  out.tpa = l3 + 24;
  return true;
}

export function readU32(buf: Uint8Array, off: number): number {
  return ((buf[off]! << 24) | (buf[off + 1]! << 16) | (buf[off + 2]! << 8) | buf[off + 3]!) >>> 0;
}

export function writeU32(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v >>> 24;
  buf[off + 1] = (v >>> 16) & 0xff;
  buf[off + 2] = (v >>> 8) & 0xff;
  buf[off + 3] = v & 0xff;
}

/**
 * Write a complete ARP frame at `off` (Ethernet header + ARP body, padded to 60 bytes since veth
 * does not pad) and return its length.
 */
export function writeArpFrame(
  buf: Uint8Array,
  off: number,
  op: number,
  ethDst: Uint8Array,
  sha: Uint8Array,
  spa: number,
  tha: Uint8Array,
  tpa: number,
): number {
  writeEth(buf, off, ethDst, sha, ETH_P_ARP);
  const a = off + ETH_HLEN;
  buf[a] = 0;
  buf[a + 1] = 1;
  buf[a + 2] = 0x08;
  buf[a + 3] = 0;
  buf[a + 4] = 6;
  buf[a + 5] = 4;
  buf[a + 6] = 0;
  buf[a + 7] = op;
  buf.set(sha, a + 8);
  writeU32(buf, a + 14, spa);
  buf.set(tha, a + 18);
  writeU32(buf, a + 24, tpa);
  buf.fill(0, a + ARP_LEN, off + ETH_ZLEN);
  return ETH_ZLEN;
}
