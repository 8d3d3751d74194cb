// ovf — overflow connection (the kernel's ip_vs_ovf.c): the highest-weight destination (earliest
// on ties) among those that are not overloaded, have weight != 0 and have no more ACTIVE
// connections than their weight; traffic overflows to the next weight once a destination is full.
// Only active connections count, so it suits TCP, not UDP (whose entries are always inactive).

import type { Dest } from "../dest.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

class Overflow implements SchedulerInstance {
  readonly #svc: SchedService;

  constructor(svc: SchedService) {
    this.#svc = svc;
  }

  schedule(_flow: Flow): Dest | undefined {
    let best: Dest | undefined;
    let hw = 0;
    for (const d of this.#svc.dests) {
      const w = d.weight;
      if (d.overloaded || d.activeConns > w || w === 0) continue;
      if (best === undefined || w > hw) {
        best = d;
        hw = w;
      }
    }
    return best ?? noDestination(this.#svc, "ovf");
  }
}

export const ovf: Scheduler = {
  name: "ovf",
  create: (svc) => new Overflow(svc),
};
