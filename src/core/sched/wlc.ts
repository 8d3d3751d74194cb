// wlc — weighted least connection, ipvsadm's default (the kernel's ip_vs_wlc.c): the destination
// with the smallest overhead / weight, overhead = (activeconns << 8) + inactconns, earliest on
// ties (see weighted-least.ts for the kernel's walk). Decisions come from an exact index
// (least-index.ts) kept in step with every connection count change.

import type { Dest } from "../dest.ts";
import { indexedScheduler } from "./indexed.ts";
import type { Ranking } from "./least-index.ts";
import { connOverhead, mulGreater } from "./overhead.ts";
import { weightedLeast } from "./weighted-least.ts";

export function wlcWalk(dests: readonly Dest[]): Dest | undefined {
  return weightedLeast(dests, connOverhead);
}

export const wlcRanking: Ranking = {
  eligible: (d) => !d.overloaded && d.weight > 0,
  better: (a, b) => mulGreater(connOverhead(b), a.weight, connOverhead(a), b.weight),
  anomaly: (d) => !d.overloaded && connOverhead(d) < 0,
};

export const wlc = indexedScheduler("wlc", wlcRanking, wlcWalk);
