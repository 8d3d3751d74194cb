import assert from "node:assert/strict";
import { test } from "node:test";
import { halfSipHash, halfSipHashWords } from "./halfsiphash.ts";

// The reference implementation's vectors (vectors.h, hsip32): key 00..07, message 00..len-1,
// written here as the little-endian 32-bit value of the 4 output bytes.
const VECTORS: Record<number, number> = {
  0: 0x5b9f35a9,
  1: 0xb85a4727,
  2: 0x03a662fa,
  3: 0x04e7fe8a,
  4: 0x89466e2a,
  5: 0x69b6fac5,
  6: 0x23fc6358,
  7: 0xc563cf8b,
  8: 0x8f84b8d0,
  9: 0x79e706f8,
  10: 0x3479b094,
  11: 0x50300808,
};

const key = Uint8Array.from({ length: 8 }, (_, i) => i);

test("halfSipHash matches the reference vectors", () => {
  for (const [len, want] of Object.entries(VECTORS)) {
    const msg = Uint8Array.from({ length: Number(len) }, (_, i) => i);
    assert.equal(halfSipHash(key, msg), want, `length ${len}`);
  }
});

test("halfSipHashWords equals the byte form on little-endian words", () => {
  const k0 = 0x03020100;
  const k1 = 0x07060504;
  assert.equal(halfSipHashWords(k0, k1, []), VECTORS[0]);
  assert.equal(halfSipHashWords(k0, k1, [0x03020100]), VECTORS[4]);
  assert.equal(halfSipHashWords(k0, k1, [0x03020100, 0x07060504]), VECTORS[8]);
  // count limits how many words are read
  assert.equal(halfSipHashWords(k0, k1, [0x03020100, 0x07060504, 99], 2), VECTORS[8]);
});

test("halfSipHash refuses a key that is not 8 bytes", () => {
  assert.throws(() => halfSipHash(new Uint8Array(7), new Uint8Array(0)), /8 bytes/);
});
