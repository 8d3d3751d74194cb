// sh — source hashing (the kernel's ip_vs_sh.c). A 256-bucket table maps a hash of the client
// address to a destination. Filling walks the destination list in the kernel's order, giving each
// destination `weight` consecutive buckets before moving on (a weight-0 destination still takes
// one bucket per round and is refused at lookup), cycling until all 256 are assigned; it is
// refilled after every add, delete and edit.
//
// Bucket of a client: (offset + hash_32(port + fold(saddr), 8)) & 255 with offset 0, where port is
// the client's source port with the sh-port flag and 0 otherwise (see kernel-hash.ts for the exact
// values hashed). The bucket's destination is refused when its weight is <= 0 or it is overloaded.
// With sh-fallback a refused pick retries offsets ihash, ihash+1, ... (mod 256) — rehashing with
// the offset added — and stops at the first usable destination or at an empty bucket.

import type { Dest } from "../dest.ts";
import { foldAddress, hash32 } from "./kernel-hash.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

const SH_TAB_BITS = 8;
const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || d.overloaded;
}

/** The kernel's ip_vs_sh_hashkey(): the bucket for a folded address, port and offset. */
export function shBucket(fold: number, port: number, offset: number): number {
  return (offset + hash32((port + fold) >>> 0, SH_TAB_BITS)) & SH_TAB_MASK;
}

class SourceHashing implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #buckets: (Dest | undefined)[] = new Array<Dest | undefined>(SH_TAB_SIZE).fill(undefined);

  constructor(svc: SchedService) {
    this.#svc = svc;
    this.#reassign();
  }

  /** The table as it stands (for tests and diagnostics). */
  get buckets(): readonly (Dest | undefined)[] {
    return this.#buckets;
  }

  schedule(flow: Flow): Dest | undefined {
    const flags = this.#svc.schedFlags;
    const port = flags.has("sh-port") ? flow.sport : 0;
    const fold = foldAddress(flow.saddr);
    const ihash = shBucket(fold, port, 0);
    let d = this.#buckets[ihash];
    if (d !== undefined && !unavailable(d)) return d;
    if (d === undefined || !flags.has("sh-fallback")) return noDestination(this.#svc, "sh");
    for (let offset = 0; offset < SH_TAB_SIZE; offset++) {
      const roffset = (offset + ihash) % SH_TAB_SIZE;
      d = this.#buckets[shBucket(fold, port, roffset)];
      if (d === undefined) break;
      if (!unavailable(d)) return d;
    }
    return noDestination(this.#svc, "sh");
  }

  addDest(): void {
    this.#reassign();
  }

  delDest(): void {
    this.#reassign();
  }

  updDest(): void {
    this.#reassign();
  }

  dispose(): void {
    this.#buckets.fill(undefined);
  }

  #reassign(): void {
    const dests = this.#svc.dests;
    const n = dests.length;
    if (n === 0) {
      this.#buckets.fill(undefined);
      return;
    }
    let p = 0;
    let count = 0;
    for (let i = 0; i < SH_TAB_SIZE; i++) {
      const d = dests[p] as Dest;
      this.#buckets[i] = d;
      if (++count >= d.weight) {
        p = p + 1 === n ? 0 : p + 1;
        count = 0;
      }
    }
  }
}

export const sh: Scheduler = {
  name: "sh",
  flags: ["sh-fallback", "sh-port"],
  create: (svc) => new SourceHashing(svc),
};
