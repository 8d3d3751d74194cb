// HalfSipHash-2-4 with a 64-bit key and a 32-bit result (Aumasson and Bernstein's SipHash family,
// the 32-bit-word variant meant for short inputs on 32-bit machines). JavaScript's bitwise
// operators work on 32-bit integers, so this is the keyed hash that costs least per SYN here: the
// SYN cookie (syn-cookie.ts) hashes a handful of words per packet. Written from the published
// description; the tests check it against the reference test vectors.
//
// Two entry points: `halfSipHash` over bytes (as the reference defines it), and `halfSipHashWords`
// over 32-bit words, which equals the byte form for the words' little-endian bytes and allocates
// nothing (the packet path's form).

function rotl(x: number, b: number): number {
  return (x << b) | (x >>> (32 - b));
}

/** The hash state, reused (module-level: the computation is synchronous and never re-entered). */
let v0 = 0;
let v1 = 0;
let v2 = 0;
let v3 = 0;

function rounds(n: number): void {
  for (let i = 0; i < n; i++) {
    v0 = (v0 + v1) | 0;
    v1 = rotl(v1, 5) ^ v0;
    v0 = rotl(v0, 16);
    v2 = (v2 + v3) | 0;
    v3 = rotl(v3, 8) ^ v2;
    v0 = (v0 + v3) | 0;
    v3 = rotl(v3, 7) ^ v0;
    v2 = (v2 + v1) | 0;
    v1 = rotl(v1, 13) ^ v2;
    v2 = rotl(v2, 16);
  }
}

function init(k0: number, k1: number): void {
  v0 = k0 | 0;
  v1 = k1 | 0;
  v2 = 0x6c796765 ^ k0;
  v3 = 0x74656462 ^ k1;
}

function absorb(m: number): void {
  v3 ^= m;
  rounds(2);
  v0 ^= m;
}

function final(b: number): number {
  absorb(b);
  v2 ^= 0xff;
  rounds(4);
  return (v1 ^ v3) >>> 0;
}

/**
 * HalfSipHash-2-4 of `count` 32-bit words (each taken as its 4 little-endian bytes), key (k0, k1)
 * being the key's bytes 0..3 and 4..7 read little-endian. The per-packet form: the state in
 * locals and the rounds written out (about twice as fast as the shared helpers above in V8).
 */
export function halfSipHashWords(k0: number, k1: number, words: ArrayLike<number>, count = words.length): number {
  let a = k0 | 0;
  let b = k1 | 0;
  let c = 0x6c796765 ^ k0;
  let d = 0x74656462 ^ k1;
  for (let i = 0; i <= count; i++) {
    const m = i < count ? words[i]! | 0 : ((count * 4) & 0xff) << 24;
    d ^= m;
    for (let r = 0; r < 2; r++) {
      a = (a + b) | 0;
      b = ((b << 5) | (b >>> 27)) ^ a;
      a = (a << 16) | (a >>> 16);
      c = (c + d) | 0;
      d = ((d << 8) | (d >>> 24)) ^ c;
      a = (a + d) | 0;
      d = ((d << 7) | (d >>> 25)) ^ a;
      c = (c + b) | 0;
      b = ((b << 13) | (b >>> 19)) ^ c;
      c = (c << 16) | (c >>> 16);
    }
    a ^= m;
  }
  c ^= 0xff;
  for (let r = 0; r < 4; r++) {
    a = (a + b) | 0;
    b = ((b << 5) | (b >>> 27)) ^ a;
    a = (a << 16) | (a >>> 16);
    c = (c + d) | 0;
    d = ((d << 8) | (d >>> 24)) ^ c;
    a = (a + d) | 0;
    d = ((d << 7) | (d >>> 25)) ^ a;
    c = (c + b) | 0;
    b = ((b << 13) | (b >>> 19)) ^ c;
    c = (c << 16) | (c >>> 16);
  }
  return (b ^ d) >>> 0;
}

/** HalfSipHash-2-4 of `bytes` with an 8-byte key; the 32-bit result as an unsigned integer. */
export function halfSipHash(key: Uint8Array, bytes: Uint8Array): number {
  if (key.length !== 8) throw new RangeError(`HalfSipHash key must be 8 bytes, not ${key.length}`);
  const le = (a: Uint8Array, o: number): number => a[o]! | (a[o + 1]! << 8) | (a[o + 2]! << 16) | (a[o + 3]! << 24);
  init(le(key, 0), le(key, 4));
  const whole = bytes.length - (bytes.length % 4);
  for (let o = 0; o < whole; o += 4) absorb(le(bytes, o));
  let b = (bytes.length & 0xff) << 24;
  for (let i = bytes.length - 1; i >= whole; i--) b |= bytes[i]! << ((i - whole) * 8);
  return final(b);
}
