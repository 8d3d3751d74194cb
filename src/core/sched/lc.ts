// lc — least connection (the kernel's ip_vs_lc.c): among destinations that are not overloaded and
// have a non-zero weight, the one with the smallest overhead (activeconns << 8) + inactconns,
// compared as unsigned; strict <, so the earliest in list order wins a tie. Weights otherwise
// play no part. Decisions come from an exact index (least-index.ts); lcWalk is the kernel's loop.

import type { Dest } from "../dest.ts";
import { indexedScheduler } from "./indexed.ts";
import type { Ranking } from "./least-index.ts";
import { connOverhead } from "./overhead.ts";

/** The kernel's ip_vs_lc_schedule() loop. */
export function lcWalk(dests: readonly Dest[]): Dest | undefined {
  let least: Dest | undefined;
  let loh = 0;
  for (let i = 0; i < dests.length; i++) {
    const d = dests[i] as Dest;
    if (d.overloaded || d.weight === 0) continue;
    const doh = connOverhead(d) >>> 0;
    if (least === undefined || doh < loh) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

export const lcRanking: Ranking = {
  eligible: (d) => !d.overloaded && d.weight !== 0,
  better: (a, b) => connOverhead(a) >>> 0 < connOverhead(b) >>> 0,
};

export const lc = indexedScheduler("lc", lcRanking, lcWalk);
