// The kernel's get_random_u32_below(ceil) (drivers/char/random.c): Lemire's multiply-shift, the
// high 32 bits of ceil * rand, rejecting the few samples whose low half falls under
// (2^32 - ceil) % ceil so the result is exactly uniform in [0, ceil). ceil = 0 returns the raw
// sample. The 64-bit product is formed from 16-bit pieces so no precision is lost.

/** High 32 bits of the 64-bit product of two unsigned 32-bit values. */
export function mulHigh32(a: number, b: number): number {
  const lo = a * (b & 0xffff); // < 2^48
  const hi = a * (b >>> 16); // < 2^48, weight 2^16
  const hiTop = Math.floor(hi / 0x10000); // weight 2^32
  const hiLow = hi - hiTop * 0x10000; // weight 2^16
  return (hiTop + Math.floor((hiLow * 0x10000 + lo) / 0x100000000)) >>> 0;
}

/** Uniform in [0, ceil) from a source of uniform unsigned 32-bit integers, as the kernel draws it. */
export function randomBelow(ceil: number, random: () => number): number {
  const c = ceil >>> 0;
  let rand = random() >>> 0;
  if (c === 0) return rand;
  let low = Math.imul(c, rand) >>> 0;
  if (low < c) {
    const bound = (0x100000000 - c) % c;
    while (low < bound) {
      rand = random() >>> 0;
      low = Math.imul(c, rand) >>> 0;
    }
  }
  return mulHigh32(c, rand);
}
