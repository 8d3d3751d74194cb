// sed — shortest expected delay (the kernel's ip_vs_sed.c): like wlc with overhead =
// activeconns + 1, so the incoming connection counts and inactive ones do not. With only short
// connections (all inactive) it keeps choosing the highest weight. Decisions come from an exact
// index (least-index.ts); sedWalk is the kernel's loop.

import type { Dest } from "../dest.ts";
import { indexedScheduler } from "./indexed.ts";
import type { Ranking } from "./least-index.ts";
import { mulGreater } from "./overhead.ts";
import { weightedLeast } from "./weighted-least.ts";

/** ip_vs_sed_dest_overhead(): activeconns + 1 as a C int. */
export function expectedDelayOverhead(d: Dest): number {
  return (d.activeConns + 1) | 0;
}

export function sedWalk(dests: readonly Dest[]): Dest | undefined {
  return weightedLeast(dests, expectedDelayOverhead);
}

export const sedRanking: Ranking = {
  eligible: (d) => !d.overloaded && d.weight > 0,
  better: (a, b) => mulGreater(expectedDelayOverhead(b), a.weight, expectedDelayOverhead(a), b.weight),
  anomaly: (d) => !d.overloaded && expectedDelayOverhead(d) < 0,
};

export const sed = indexedScheduler("sed", sedRanking, sedWalk);
