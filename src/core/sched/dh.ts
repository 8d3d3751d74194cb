// dh — destination hashing (the kernel's ip_vs_dh.c). A 256-bucket table maps a hash of the
// packet's destination address to a real server: bucket i goes to destination i mod n in list
// order (weights are ignored), refilled when a destination is added or deleted (the kernel has no
// edit hook for dh; an edit cannot change the fill). Bucket = hash_32(fold(daddr), 8). There is no
// fallback: when the bucket's destination is unavailable, has weight <= 0 or is overloaded, no
// destination is chosen.

import type { Dest } from "../dest.ts";
import { foldAddress, hash32 } from "./kernel-hash.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

const DH_TAB_BITS = 8;
const DH_TAB_SIZE = 1 << DH_TAB_BITS;

/** The kernel's ip_vs_dh_hashkey(). */
export function dhBucket(fold: number): number {
  return hash32(fold, DH_TAB_BITS);
}

class DestinationHashing implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #buckets: (Dest | undefined)[] = new Array<Dest | undefined>(DH_TAB_SIZE).fill(undefined);

  constructor(svc: SchedService) {
    this.#svc = svc;
    this.#reassign();
  }

  get buckets(): readonly (Dest | undefined)[] {
    return this.#buckets;
  }

  schedule(flow: Flow): Dest | undefined {
    const d = this.#buckets[dhBucket(foldAddress(flow.daddr))];
    if (d === undefined || !d.available || d.weight <= 0 || d.overloaded) return noDestination(this.#svc, "dh");
    return d;
  }

  addDest(): void {
    this.#reassign();
  }

  delDest(): void {
    this.#reassign();
  }

  dispose(): void {
    this.#buckets.fill(undefined);
  }

  #reassign(): void {
    const dests = this.#svc.dests;
    const n = dests.length;
    for (let i = 0; i < DH_TAB_SIZE; i++) this.#buckets[i] = n === 0 ? undefined : dests[i % n];
  }
}

export const dh: Scheduler = {
  name: "dh",
  create: (svc) => new DestinationHashing(svc),
};
