// Random 32-bit words from the system's CSPRNG for the SYN cookie keys (a new key every cookie
// period, two words each), drawn from a small refilled pool so a key costs no system call.

import { randomFillSync } from "node:crypto";

const pool = new Uint32Array(64);
let next = pool.length;

export function randomWord(): number {
  if (next >= pool.length) {
    randomFillSync(pool);
    next = 0;
  }
  return pool[next++]!;
}
