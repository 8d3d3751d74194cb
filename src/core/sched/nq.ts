// nq — never queue (the kernel's ip_vs_nq.c): skipping overloaded and weight-0 destinations, the
// first one with no active connection is taken at once; otherwise the choice is sed's (smallest
// (activeconns + 1) / weight, earliest on ties). With only short connections every destination is
// idle, so nq keeps choosing the list head. Decisions come from an exact index (least-index.ts)
// ordering idle before busy; nqWalk is the kernel's loop.

import type { Dest } from "../dest.ts";
import { indexedScheduler } from "./indexed.ts";
import type { Ranking } from "./least-index.ts";
import { EXACT_PRODUCT, mulGreater } from "./overhead.ts";
import { expectedDelayOverhead } from "./sed.ts";

export function nqWalk(dests: readonly Dest[]): Dest | undefined {
  let least: Dest | undefined;
  let loh = 0;
  let lw = 0;
  for (let i = 0; i < dests.length; i++) {
    const d = dests[i] as Dest;
    const dw = d.weight;
    if (d.overloaded || dw === 0) continue;
    if (d.activeConns === 0) return d;
    const doh = (d.activeConns + 1) | 0;
    const x = loh * dw;
    const y = doh * lw;
    if (
      least === undefined ||
      (x < EXACT_PRODUCT && x > -EXACT_PRODUCT && y < EXACT_PRODUCT && y > -EXACT_PRODUCT
        ? x > y
        : mulGreater(loh, dw, doh, lw))
    ) {
      least = d;
      loh = doh;
      lw = dw;
    }
  }
  return least;
}

export const nqRanking: Ranking = {
  eligible: (d) => !d.overloaded && d.weight !== 0,
  better: (a, b) => {
    const aIdle = a.activeConns === 0;
    const bIdle = b.activeConns === 0;
    if (aIdle || bIdle) return aIdle && !bIdle;
    return mulGreater(expectedDelayOverhead(b), a.weight, expectedDelayOverhead(a), b.weight);
  },
  anomaly: (d) => !d.overloaded && expectedDelayOverhead(d) < 0,
};

export const nq = indexedScheduler("nq", nqRanking, nqWalk);
