// lc — least connection (the kernel's ip_vs_lc.c): among destinations that are not overloaded and
// have a non-zero weight, the one with the smallest overhead (activeconns << 8) + inactconns,
// compared as unsigned; strict <, so the earliest in list order wins a tie. Weights otherwise
// play no part.

import type { Dest } from "../dest.ts";
import { connOverhead } from "./overhead.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

class LeastConnection implements SchedulerInstance {
  readonly #svc: SchedService;

  constructor(svc: SchedService) {
    this.#svc = svc;
  }

  schedule(_flow: Flow): Dest | undefined {
    const dests = this.#svc.dests;
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
    return least ?? noDestination(this.#svc, "lc");
  }
}

export const lc: Scheduler = {
  name: "lc",
  create: (svc) => new LeastConnection(svc),
};
