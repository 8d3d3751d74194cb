// mulberry32: a small seeded generator of uniform numbers in [0, 1), for tests, fuzzers and the
// oracle's random sequences, so a failing run can be replayed from its seed. Not for anything a
// peer could predict to its advantage (scheduling uses the table's own random source).

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
