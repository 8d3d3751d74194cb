// wlc — weighted least connection, ipvsadm's default (the kernel's ip_vs_wlc.c): the destination
// with the smallest overhead / weight, overhead = (activeconns << 8) + inactconns; see
// weighted-least.ts for the walk and its tie rule.

import type { Dest } from "../dest.ts";
import { connOverhead } from "./overhead.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";
import { weightedLeast } from "./weighted-least.ts";

class WeightedLeastConnection implements SchedulerInstance {
  readonly #svc: SchedService;

  constructor(svc: SchedService) {
    this.#svc = svc;
  }

  schedule(_flow: Flow): Dest | undefined {
    return weightedLeast(this.#svc.dests, connOverhead) ?? noDestination(this.#svc, "wlc");
  }
}

export const wlc: Scheduler = {
  name: "wlc",
  create: (svc) => new WeightedLeastConnection(svc),
};
