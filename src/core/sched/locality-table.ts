// The per-service cache table of lblc and lblcr (struct ip_vs_lblc_table / ip_vs_lblcr_table):
// 1024 hash buckets of entries keyed by destination address, and the kernel's garbage collection.
//
// The kernel runs the collector from a timer every 60 s (first 60 s after the service is
// created). Core has no timers, so the owner calls collect(now) at the start of every schedule()
// and the table replays, in order, every periodic run whose time has come (at creation + 60 s,
// + 120 s, ...), each judged at its own scheduled time — the state a packet sees is the one it would
// see on a kernel whose timer fired on time. A run:
//   - every 30th run (counter % 30 == 0): a full sweep of all 1024 buckets, starting after the
//     rover, removing entries idle for the expiration (the lblc/lblcr_expiration sysctl, 24 h);
//     the counter goes back to 1 (the rover ends where it started);
//   - otherwise, with at most 16 * 1024 entries: nothing but counter++;
//   - otherwise: remove entries idle >= 6 min, bucket by bucket from rover + 1, until
//     goal = min((entries - 16384) * 4 / 3, 8192) entries have gone (checked after each bucket);
//     the rover stays at the last bucket visited.
// Replaying a long idle spell is cheap: while the table is small, runs up to the next full sweep
// are only counter increments and are skipped over in one step.

import { foldAddress, hash32 } from "./kernel-hash.ts";

export const LOCALITY_TAB_BITS = 10;
const TAB_SIZE = 1 << LOCALITY_TAB_BITS;
const TAB_MASK = TAB_SIZE - 1;
/** CHECK_EXPIRE_INTERVAL: 60 s. */
export const CHECK_EXPIRE_INTERVAL = 60_000;
/** ENTRY_TIMEOUT: 6 min, for the partial collection of an overfull table. */
export const ENTRY_TIMEOUT = 6 * 60_000;
/** DEFAULT_EXPIRATION of the lblc/lblcr_expiration sysctls: 24 h. */
export const DEFAULT_EXPIRATION = 24 * 60 * 60_000;
const COUNT_FOR_FULL_EXPIRATION = 30;

export interface LocalityEntry {
  readonly addr: string;
  lastuse: number;
}

/** The kernel's ip_vs_lblc_hashkey(): hash_32(fold(addr), 10). */
export function localityBucket(addr: string): number {
  return hash32(foldAddress(addr), LOCALITY_TAB_BITS);
}

export class LocalityTable<E extends LocalityEntry> {
  readonly #byAddr = new Map<string, E>();
  readonly #buckets: E[][] = Array.from({ length: TAB_SIZE }, () => []);
  readonly maxSize = TAB_SIZE * 16;
  #rover = 0;
  #counter = 1;
  #nextCheck: number;

  constructor(now: number) {
    this.#nextCheck = now + CHECK_EXPIRE_INTERVAL;
  }

  get size(): number {
    return this.#byAddr.size;
  }

  get(addr: string): E | undefined {
    return this.#byAddr.get(addr);
  }

  add(e: E): void {
    this.#byAddr.set(e.addr, e);
    (this.#buckets[localityBucket(e.addr)] as E[]).push(e);
  }

  remove(e: E): void {
    this.#byAddr.delete(e.addr);
    const b = this.#buckets[localityBucket(e.addr)] as E[];
    const i = b.indexOf(e);
    if (i !== -1) b.splice(i, 1);
  }

  entries(): IterableIterator<E> {
    return this.#byAddr.values();
  }

  clear(): void {
    this.#byAddr.clear();
    for (const b of this.#buckets) b.length = 0;
  }

  /** Run every periodic collection due at or before `now`; `expiration` is the sysctl value. */
  collect(now: number, expiration: number): void {
    while (this.#nextCheck <= now) {
      if (this.#counter % COUNT_FOR_FULL_EXPIRATION !== 0 && this.#byAddr.size <= this.maxSize) {
        const due = Math.floor((now - this.#nextCheck) / CHECK_EXPIRE_INTERVAL) + 1;
        const skip = Math.min(COUNT_FOR_FULL_EXPIRATION - this.#counter, due);
        this.#counter += skip;
        this.#nextCheck += skip * CHECK_EXPIRE_INTERVAL;
        continue;
      }
      this.#run(this.#nextCheck, expiration);
      this.#nextCheck += CHECK_EXPIRE_INTERVAL;
    }
  }

  /** One timer run at time t (ip_vs_lblc_check_expire). */
  #run(t: number, expiration: number): void {
    if (this.#counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      if (this.#byAddr.size > 0) this.#sweep(t, expiration, Number.POSITIVE_INFINITY);
      this.#counter = 1;
      return;
    }
    if (this.#byAddr.size <= this.maxSize) {
      this.#counter++;
      return;
    }
    let goal = Math.trunc(((this.#byAddr.size - this.maxSize) * 4) / 3);
    if (goal > this.maxSize / 2) goal = this.maxSize / 2;
    this.#sweep(t, ENTRY_TIMEOUT, goal);
  }

  /** Visit buckets from rover + 1, dropping entries with t >= lastuse + idle, until goal is met. */
  #sweep(t: number, idle: number, goal: number): void {
    let j = this.#rover;
    for (let i = 0; i < TAB_SIZE; i++) {
      j = (j + 1) & TAB_MASK;
      const b = this.#buckets[j] as E[];
      if (b.length > 0) {
        let keep = 0;
        for (let k = 0; k < b.length; k++) {
          const e = b[k] as E;
          if (t < e.lastuse + idle) b[keep++] = e;
          else {
            this.#byAddr.delete(e.addr);
            goal--;
          }
        }
        b.length = keep;
      }
      if (goal <= 0) break;
    }
    this.#rover = j;
  }
}
