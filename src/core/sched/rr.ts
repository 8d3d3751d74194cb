// rr — round robin (the kernel's ip_vs_rr.c). The cursor is the last destination chosen, or the
// list head. Each call walks on from the cursor, wrapping once, and ends with the cursor itself;
// it takes the first destination with weight > 0 that is not overloaded. Removing the destination
// under the cursor moves the cursor to its predecessor, so the walk resumes where it would have.
// New destinations join at the list head, so with rs1, rs2, rs3 added in that order the service
// serves rs3, rs2, rs1, rs3, ...

import type { Dest } from "../dest.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

class RoundRobin implements SchedulerInstance {
  readonly #svc: SchedService;
  /** The last destination chosen; undefined = the list head. */
  #cursor: Dest | undefined = undefined;
  /** Where #cursor sits in svc.dests (kept in step by the hooks, checked before use). */
  #index = -1;

  constructor(svc: SchedService) {
    this.#svc = svc;
  }

  schedule(_flow: Flow): Dest | undefined {
    const dests = this.#svc.dests;
    const n = dests.length;
    const start = this.#cursorIndex();
    // From the head: 0 .. n-1. From a destination: start+1 .. n-1, then 0 .. start (itself last).
    for (let k = 1; k <= n; k++) {
      let i = start + k;
      if (i >= n) i -= n;
      const d = dests[i] as Dest;
      if (!d.overloaded && d.weight > 0) {
        this.#cursor = d;
        this.#index = i;
        return d;
      }
    }
    return noDestination(this.#svc, "rr");
  }

  addDest(_dest: Dest): void {
    this.#resync();
  }

  delDest(dest: Dest): void {
    if (dest === this.#cursor) {
      // The kernel steps back to the removed entry's predecessor (or the head).
      const prev = this.#index - 1;
      this.#cursor = prev >= 0 ? this.#svc.dests[prev] : undefined;
      this.#index = prev;
      return;
    }
    this.#resync();
  }

  #cursorIndex(): number {
    if (this.#cursor === undefined) return -1;
    if (this.#svc.dests[this.#index] !== this.#cursor) this.#resync();
    return this.#index;
  }

  #resync(): void {
    if (this.#cursor === undefined) {
      this.#index = -1;
      return;
    }
    const dests = this.#svc.dests;
    const i = this.#index;
    if (dests[i] === this.#cursor) return;
    if (dests[i + 1] === this.#cursor) this.#index = i + 1;
    else if (dests[i - 1] === this.#cursor) this.#index = i - 1;
    else this.#index = dests.indexOf(this.#cursor);
    if (this.#index === -1) this.#cursor = undefined;
  }
}

export const rr: Scheduler = {
  name: "rr",
  create: (svc) => new RoundRobin(svc),
};
