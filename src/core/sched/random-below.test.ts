import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { seededRandom } from "./harness.ts";
import { mulHigh32, randomBelow } from "./random-below.ts";

/** Lemire's method written with BigInt, straight from the definition. */
function referenceBelow(ceil: number, next: () => number): number {
  const c = BigInt(ceil >>> 0);
  let r = BigInt(next() >>> 0);
  if (c === 0n) return Number(r);
  let m = c * r;
  if ((m & 0xffffffffn) < c) {
    const bound = ((1n << 32n) - c) % c;
    while ((m & 0xffffffffn) < bound) {
      r = BigInt(next() >>> 0);
      m = c * r;
    }
  }
  return Number(m >> 32n);
}

describe("randomBelow (get_random_u32_below)", () => {
  it("mulHigh32 is the exact high word of a 64-bit product", () => {
    const rand = seededRandom(7);
    const edge = [0, 1, 2, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff];
    for (const a of edge) for (const b of edge) assert.equal(mulHigh32(a, b), Number((BigInt(a) * BigInt(b)) >> 32n));
    for (let i = 0; i < 20000; i++) {
      const a = rand();
      const b = rand();
      assert.equal(mulHigh32(a, b), Number((BigInt(a) * BigInt(b)) >> 32n));
    }
  });

  it("draws exactly what the kernel's algorithm draws from the same stream", () => {
    const ceils = [1, 2, 3, 7, 100, 65536, 0x7fffffff, 0x80000001, 0xfffffffe, 0xffffffff, 0];
    for (const ceil of ceils) {
      const a = seededRandom(99);
      const b = seededRandom(99);
      for (let i = 0; i < 2000; i++) assert.equal(randomBelow(ceil, a), referenceBelow(ceil, b));
    }
  });

  it("rejects the biased low samples (ceil 3: 2^32 mod 3 = 1)", () => {
    // rand = 0 gives 3 * 0 = 0, low half 0 < bound 1: rejected; the next sample is used.
    const seq = [0, 0x80000000];
    let i = 0;
    assert.equal(
      randomBelow(3, () => seq[i++] as number),
      1,
    );
    assert.equal(i, 2);
  });
});
