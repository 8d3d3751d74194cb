// The walk shared by wlc, sed, lblc and lblcr (and nq's second stage): the first destination that
// is not overloaded and has weight > 0 becomes `least`; every later destination that is not
// overloaded replaces it when loh * w(d) > doh * w(least) in 64-bit arithmetic. A weight-0
// destination never wins (its side of the comparison is 0) and ties keep the earlier destination,
// so the result is the earliest destination with the smallest overhead/weight.

import type { Dest } from "../dest.ts";
import { EXACT_PRODUCT, mulGreater } from "./overhead.ts";

export function weightedLeast(dests: readonly Dest[], overhead: (d: Dest) => number): Dest | undefined {
  const n = dests.length;
  let i = 0;
  let least: Dest | undefined;
  for (; i < n; i++) {
    const d = dests[i] as Dest;
    if (!d.overloaded && d.weight > 0) {
      least = d;
      break;
    }
  }
  if (least === undefined) return undefined;
  let loh = overhead(least);
  let lw = least.weight;
  for (i++; i < n; i++) {
    const d = dests[i] as Dest;
    if (d.overloaded) continue;
    const doh = overhead(d);
    const dw = d.weight;
    const x = loh * dw;
    const y = doh * lw;
    if (
      x < EXACT_PRODUCT && x > -EXACT_PRODUCT && y < EXACT_PRODUCT && y > -EXACT_PRODUCT
        ? x > y
        : mulGreater(loh, dw, doh, lw)
    ) {
      least = d;
      loh = doh;
      lw = dw;
    }
  }
  return least;
}
