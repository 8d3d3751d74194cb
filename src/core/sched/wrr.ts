// wrr — weighted round robin (the kernel's ip_vs_wrr.c).
//
// State: di = gcd of the positive weights (1 if none), mw = max weight - (di - 1), cw = the
// current weight threshold, and cl = the last destination chosen (or the list head). Each call
// walks on from cl and takes the first destination that is not overloaded and has weight >= cw.
// Reaching the end of the list lowers cw by di and restarts from the head; when cw drops to 0 or
// below it goes back to mw. mw is lowered by (di - 1) so the last pass runs with cw = 1 and still
// finds a destination whose weight fell below di. The walk gives up ("all destinations are
// overloaded") once every destination has been checked for weight >= 1: either a pass started at
// the head ran down to cw <= 0, or, having started mid-list, it wrapped to the last pass and came
// back round to where it began.
//
// Every destination change (add, delete, edit) resets cl to the head and recomputes di and mw;
// cw becomes mw when it is above mw or 0, else (when di > 1) it is rounded to a multiple of di
// plus one. Because of that reset, the history of additions shapes the sequence: rs1=3, rs2=2,
// rs3=1 added one by one serve rs3 rs2 rs1 rs1 rs2 rs1 | rs3 rs2 rs1 rs1 rs2 rs1 ...

import type { Dest } from "../dest.ts";
import { gcdOfWeights } from "./gcd.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

const HEAD = -1;

function weightOf(d: Dest): number {
  return d.weight;
}

class WeightedRoundRobin implements SchedulerInstance {
  readonly #svc: SchedService;
  /** Index of the last chosen destination in svc.dests, or HEAD. Valid until the next change. */
  #cl = HEAD;
  #cw = 0;
  #mw = 0;
  #di = 1;
  readonly #skip: boolean;

  constructor(svc: SchedService, skipFailingPasses = true) {
    this.#svc = svc;
    this.#skip = skipFailingPasses;
    this.#di = gcdOfWeights(svc.dests, weightOf) || 1;
    this.#mw = maxWeight(svc.dests) - (this.#di - 1);
    this.#cw = this.#mw;
  }

  schedule(_flow: Flow): Dest | undefined {
    const dests = this.#svc.dests;
    const n = dests.length;
    if (this.#mw === 0) return noDestination(this.#svc, "wrr");
    const last = this.#cl;
    let from = this.#cl;
    let stop = Number.NaN;
    let lastPass = false;
    let restarted = false;
    let maxUsable = -1;
    for (;;) {
      for (let i = from + 1; i < n; i++) {
        const d = dests[i] as Dest;
        if (!d.overloaded && d.weight >= this.#cw) {
          this.#cl = i;
          return d;
        }
        if (i === stop) {
          this.#cl = i;
          return noDestination(this.#svc, "wrr", "all destinations are overloaded");
        }
      }
      from = HEAD;
      this.#cw -= this.#di;
      if (this.#cw <= 0) {
        this.#cw = this.#mw;
        if (lastPass || last === HEAD) {
          this.#cl = HEAD;
          return noDestination(this.#svc, "wrr", "all destinations are overloaded");
        }
        restarted = true;
      }
      lastPass = this.#cw <= this.#di;
      if (lastPass && restarted && last !== HEAD) stop = last;
      if (this.#skip && Number.isNaN(stop)) {
        // Every pass from the head with cw above the largest usable weight (and above di, so no
        // wrap or last-pass bookkeeping happens) fails: jump over them in one step. With weights
        // like 65535 and 1 the kernel loops tens of thousands of passes here; the result is the
        // same, only faster.
        if (maxUsable < 0) maxUsable = maxUsableWeight(dests);
        const t = Math.max(maxUsable, this.#di);
        if (this.#cw > t) {
          this.#cw -= Math.ceil((this.#cw - t) / this.#di) * this.#di;
          lastPass = this.#cw <= this.#di;
          if (lastPass && restarted && last !== HEAD) stop = last;
        }
      }
    }
  }

  addDest(_dest: Dest): void {
    this.#changed();
  }

  delDest(_dest: Dest): void {
    this.#changed();
  }

  updDest(_dest: Dest): void {
    this.#changed();
  }

  #changed(): void {
    const dests = this.#svc.dests;
    this.#cl = HEAD;
    this.#di = gcdOfWeights(dests, weightOf) || 1;
    this.#mw = maxWeight(dests) - (this.#di - 1);
    if (this.#cw > this.#mw || this.#cw === 0) this.#cw = this.#mw;
    else if (this.#di > 1) this.#cw = Math.trunc(this.#cw / this.#di) * this.#di + 1;
  }
}

/** The largest weight among destinations that are not overloaded (0 if none). */
function maxUsableWeight(dests: readonly Dest[]): number {
  let w = 0;
  for (const d of dests) if (!d.overloaded && d.weight > w) w = d.weight;
  return w;
}

function maxWeight(dests: readonly Dest[]): number {
  let w = 0;
  for (const d of dests) if (d.weight > w) w = d.weight;
  return w;
}

export const wrr: Scheduler = {
  name: "wrr",
  create: (svc) => new WeightedRoundRobin(svc),
};

/** wrr exactly as the kernel loops, pass by pass (no skipping); for tests that prove the skip. */
export function createLiteralWrr(svc: SchedService): SchedulerInstance {
  return new WeightedRoundRobin(svc, false);
}
