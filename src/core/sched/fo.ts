// fo — weighted failover (the kernel's ip_vs_fo.c): the destination with the highest weight among
// those not overloaded; strict >, so the earliest in list order wins a tie and weight 0 never wins.

import type { Dest } from "../dest.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

class Failover implements SchedulerInstance {
  readonly #svc: SchedService;

  constructor(svc: SchedService) {
    this.#svc = svc;
  }

  schedule(_flow: Flow): Dest | undefined {
    let best: Dest | undefined;
    let hw = 0;
    for (const d of this.#svc.dests) {
      if (!d.overloaded && d.weight > hw) {
        best = d;
        hw = d.weight;
      }
    }
    return best ?? noDestination(this.#svc, "fo");
  }
}

export const fo: Scheduler = {
  name: "fo",
  create: (svc) => new Failover(svc),
};
