// twos — power of two choices (the kernel's ip_vs_twos.c, Linux 6.8+). total = the sum of the
// weights of destinations that are not overloaded and have weight > 0; two independent uniform
// draws r1, r2 in [0, total] (get_random_u32_below(total + 1)); walking the list, each draw has
// each eligible destination's weight subtracted and picks the first destination where it reaches
// <= 0. The second pick wins when w2 * overhead1 > w1 * overhead2, otherwise the first.
//
// The kernel does this in C int arithmetic (weights, sums and the products wrap at 32 bits); we
// keep that, so even absurd weights (sums past 2^31) behave as on a kernel. Randomness comes from
// SchedEnv.random (get_random_u32), so tests seed it.

import type { Dest } from "../dest.ts";
import { connOverhead } from "./overhead.ts";
import { randomBelow } from "./random-below.ts";
import {
  type Flow,
  noDestination,
  type SchedEnv,
  type SchedService,
  type Scheduler,
  type SchedulerInstance,
} from "./types.ts";

class TwoChoices implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #env: SchedEnv;

  constructor(svc: SchedService, env: SchedEnv) {
    this.#svc = svc;
    this.#env = env;
  }

  schedule(_flow: Flow): Dest | undefined {
    const dests = this.#svc.dests;
    let total = 0;
    let choice1: Dest | undefined;
    for (const d of dests) {
      if (!d.overloaded && d.weight > 0) {
        total = (total + d.weight) | 0;
        choice1 = d;
      }
    }
    if (choice1 === undefined) return noDestination(this.#svc, "twos");
    total = (total + 1) | 0;
    let r1 = randomBelow(total, this.#env.random) | 0;
    let r2 = randomBelow(total, this.#env.random) | 0;
    let choice2: Dest | undefined;
    let w1 = -1;
    let w2 = -1;
    let oh1 = 0;
    let oh2 = 0;
    for (const d of dests) {
      if (d.overloaded) continue;
      const w = d.weight;
      if (w <= 0) continue;
      r1 = (r1 - w) | 0;
      r2 = (r2 - w) | 0;
      if (r1 <= 0 && w1 === -1) {
        choice1 = d;
        w1 = w;
        oh1 = connOverhead(d);
      }
      if (r2 <= 0 && w2 === -1) {
        choice2 = d;
        w2 = w;
        oh2 = connOverhead(d);
      }
      if (w1 !== -1 && w2 !== -1) break;
    }
    if (choice2 !== undefined && Math.imul(w2, oh1) > Math.imul(w1, oh2)) return choice2;
    return choice1;
  }
}

export const twos: Scheduler = {
  name: "twos",
  create: (svc, env) => new TwoChoices(svc, env),
};
