// nq — never queue (the kernel's ip_vs_nq.c): skipping overloaded and weight-0 destinations, the
// first one with no active connection is taken at once; otherwise the choice is sed's (smallest
// (activeconns + 1) / weight, earliest on ties). With only short connections every destination is
// idle, so nq keeps choosing the list head.

import type { Dest } from "../dest.ts";
import { EXACT_PRODUCT, mulGreater } from "./overhead.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

class NeverQueue implements SchedulerInstance {
  readonly #svc: SchedService;

  constructor(svc: SchedService) {
    this.#svc = svc;
  }

  schedule(_flow: Flow): Dest | undefined {
    const dests = this.#svc.dests;
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
    return least ?? noDestination(this.#svc, "nq");
  }
}

export const nq: Scheduler = {
  name: "nq",
  create: (svc) => new NeverQueue(svc),
};
