// sed — shortest expected delay (the kernel's ip_vs_sed.c): like wlc with overhead =
// activeconns + 1, so the incoming connection counts and inactive ones do not. With only short
// connections (all inactive) it keeps choosing the highest weight.

import type { Dest } from "../dest.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";
import { weightedLeast } from "./weighted-least.ts";

/** ip_vs_sed_dest_overhead(): activeconns + 1 as a C int. */
export function expectedDelayOverhead(d: Dest): number {
  return (d.activeConns + 1) | 0;
}

class ShortestExpectedDelay implements SchedulerInstance {
  readonly #svc: SchedService;

  constructor(svc: SchedService) {
    this.#svc = svc;
  }

  schedule(_flow: Flow): Dest | undefined {
    return weightedLeast(this.#svc.dests, expectedDelayOverhead) ?? noDestination(this.#svc, "sed");
  }
}

export const sed: Scheduler = {
  name: "sed",
  create: (svc) => new ShortestExpectedDelay(svc),
};
