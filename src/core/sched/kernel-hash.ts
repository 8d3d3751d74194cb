// The kernel's hash functions as the IPVS hashing schedulers use them (sh, dh, mh, lblc, lblcr):
// hash_32 from include/linux/hash.h, the address fold, and hsiphash as lib/siphash.c computes it
// on a 64-bit kernel. Reproduced bit for bit so that a client lands on the same real server as on
// a kernel director with the same destination list.
//
// What value goes into the hashes (x86_64, little-endian):
//   An address is stored as __be32 words (network byte order in memory). The schedulers fold an
//   IPv6 address by XOR of its four __be32 words and then apply ntohl() before hashing, so the
//   number hashed is the address read as a big-endian integer: 10.0.0.1 → 0x0a000001, and for IPv6
//   the XOR of its four big-endian 32-bit words (byte swapping commutes with XOR). That is exactly
//   addr.ts's foldIp(). Ports go through ntohs(), so the port is its ordinary number. Sums are
//   unsigned 32-bit (wrap at 2^32).
//   hash_32(v, bits) = (v * 0x61C88647 mod 2^32) >> (32 - bits); x86 has no arch override.
//   mh hashes the 4 bytes of a host-order u32 in memory with hsiphash: on a little-endian machine
//   those bytes are v's little-endian encoding, and SipHash reads its tail as a little-endian word,
//   so the final block is simply (4 << 56) | v. On 64-bit kernels hsiphash is SipHash-1-3 (one
//   compression round, three finalisation rounds) on 64-bit words with the two 64-bit key words
//   given, truncated to its low 32 bits; mh's fixed keys are (2654435761, 2654435761) for the
//   offset hash and (2654446892, 2654446892) for the skip hash.
//
// The SipHash here works on 32-bit halves (no BigInt) so it stays cheap on the scheduling path.

import { foldIp } from "../addr.ts";

const GOLDEN_RATIO_32 = 0x61c88647;

/** The kernel's hash_32(val, bits): the top `bits` bits of val * GOLDEN_RATIO_32 (mod 2^32). */
export function hash32(val: number, bits: number): number {
  return Math.imul(val, GOLDEN_RATIO_32) >>> (32 - bits);
}

/**
 * ntohl() of the kernel's address fold, from canonical address text: IPv4 as a big-endian number,
 * IPv6 as the XOR of its four big-endian words. IPv4 dotted quads are parsed without allocating.
 */
export function foldAddress(text: string): number {
  let v = 0;
  let part = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      v = (v << 8) | part;
      part = 0;
      dots++;
    } else if (c >= 48 && c <= 57) part = part * 10 + (c - 48);
    else return foldIp(text);
  }
  if (dots !== 3) return foldIp(text);
  return ((v << 8) | part) >>> 0;
}

/** A 128-bit SipHash key as the kernel's two 64-bit words, each split into high and low halves. */
export interface SipKey {
  readonly k0hi: number;
  readonly k0lo: number;
  readonly k1hi: number;
  readonly k1lo: number;
}

/** hsiphash_key_t with both words set to the same value below 2^32 (how ip_vs_mh.c fills them). */
export function sipKey(word: number): SipKey {
  return { k0hi: 0, k0lo: word >>> 0, k1hi: 0, k1lo: word >>> 0 };
}

/** mh's fixed keys (generate_hash_secret in ip_vs_mh.c). */
export const MH_KEY1: SipKey = sipKey(2654435761);
export const MH_KEY2: SipKey = sipKey(2654446892);

/**
 * The kernel's hsiphash(&v, 4, key) for a u32 v on a 64-bit little-endian kernel: SipHash-1-3 of
 * the four bytes of v, truncated to 32 bits.
 */
export function hsiphashU32(v: number, key: SipKey): number {
  // State words as unsigned 32-bit halves: v0 = (ah, al), v1 = (bh, bl), v2 = (ch, cl), v3 = (dh, dl).
  let ah = (0x736f6d65 ^ key.k0hi) >>> 0;
  let al = (0x70736575 ^ key.k0lo) >>> 0;
  let bh = (0x646f7261 ^ key.k1hi) >>> 0;
  let bl = (0x6e646f6d ^ key.k1lo) >>> 0;
  let ch = (0x6c796765 ^ key.k0hi) >>> 0;
  let cl = (0x6e657261 ^ key.k0lo) >>> 0;
  let dh = (0x74656462 ^ key.k1hi) >>> 0;
  let dl = (0x79746573 ^ key.k1lo) >>> 0;
  // The only block is the tail: b = (len << 56) | v.
  const mh = 0x04000000;
  const ml = v >>> 0;
  dh = (dh ^ mh) >>> 0;
  dl = (dl ^ ml) >>> 0;
  let rounds = 1;
  for (let pass = 0; pass < 2; pass++) {
    for (let r = 0; r < rounds; r++) {
      let s: number;
      let t: number;
      // v0 += v1; v1 = rol64(v1, 13); v1 ^= v0; v0 = rol64(v0, 32)
      s = al + bl;
      ah = (ah + bh + (s > 0xffffffff ? 1 : 0)) >>> 0;
      al = s >>> 0;
      t = bh;
      bh = ((bh << 13) | (bl >>> 19)) >>> 0;
      bl = ((bl << 13) | (t >>> 19)) >>> 0;
      bh = (bh ^ ah) >>> 0;
      bl = (bl ^ al) >>> 0;
      t = ah;
      ah = al;
      al = t;
      // v2 += v3; v3 = rol64(v3, 16); v3 ^= v2
      s = cl + dl;
      ch = (ch + dh + (s > 0xffffffff ? 1 : 0)) >>> 0;
      cl = s >>> 0;
      t = dh;
      dh = ((dh << 16) | (dl >>> 16)) >>> 0;
      dl = ((dl << 16) | (t >>> 16)) >>> 0;
      dh = (dh ^ ch) >>> 0;
      dl = (dl ^ cl) >>> 0;
      // v0 += v3; v3 = rol64(v3, 21); v3 ^= v0
      s = al + dl;
      ah = (ah + dh + (s > 0xffffffff ? 1 : 0)) >>> 0;
      al = s >>> 0;
      t = dh;
      dh = ((dh << 21) | (dl >>> 11)) >>> 0;
      dl = ((dl << 21) | (t >>> 11)) >>> 0;
      dh = (dh ^ ah) >>> 0;
      dl = (dl ^ al) >>> 0;
      // v2 += v1; v1 = rol64(v1, 17); v1 ^= v2; v2 = rol64(v2, 32)
      s = cl + bl;
      ch = (ch + bh + (s > 0xffffffff ? 1 : 0)) >>> 0;
      cl = s >>> 0;
      t = bh;
      bh = ((bh << 17) | (bl >>> 15)) >>> 0;
      bl = ((bl << 17) | (t >>> 15)) >>> 0;
      bh = (bh ^ ch) >>> 0;
      bl = (bl ^ cl) >>> 0;
      t = ch;
      ch = cl;
      cl = t;
    }
    if (pass === 0) {
      // v0 ^= b; v2 ^= 0xff; then the three finalisation rounds
      ah = (ah ^ mh) >>> 0;
      al = (al ^ ml) >>> 0;
      cl = (cl ^ 0xff) >>> 0;
      rounds = 3;
    }
  }
  return (al ^ bl ^ cl ^ dl) >>> 0;
}
