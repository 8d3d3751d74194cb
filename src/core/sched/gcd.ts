// Greatest common divisor of the positive weights of a destination list (lib/math/gcd.c's result
// as ip_vs_wrr.c and ip_vs_mh.c fold it over their lists); 0 when no weight is positive.

import type { Dest } from "../dest.ts";

export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** gcd of the weights picked by `weightOf` that are > 0, or 0 when there is none. */
export function gcdOfWeights(dests: readonly Dest[], weightOf: (d: Dest) => number): number {
  let g = 0;
  for (const d of dests) {
    const w = weightOf(d);
    if (w > 0) g = g > 0 ? gcd(w, g) : w;
  }
  return g;
}
