// The scheduler shape shared by lc, wlc, sed and nq: with INDEX_MIN_DESTS destinations or more,
// decisions come from a LeastIndex kept in step with the destination list by the add/del hooks and
// with each destination's load by its loadWatcher; smaller services, and any service while the
// index reports an anomaly (see least-index.ts), use the kernel's plain walk kept beside each
// scheduler. Both give the same destination.

import type { Dest } from "../dest.ts";
import { LeastIndex, type Ranking } from "./least-index.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

/**
 * Below this many destinations the plain walk is cheaper than keeping an index up to date on every
 * connection event, so small services walk (exactly as the kernel) and carry no index.
 */
export const INDEX_MIN_DESTS = 32;

class IndexedLeast implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #name: string;
  readonly #rank: Ranking;
  readonly #walk: (dests: readonly Dest[]) => Dest | undefined;
  #index: LeastIndex | undefined = undefined;

  constructor(svc: SchedService, name: string, rank: Ranking, walk: (dests: readonly Dest[]) => Dest | undefined) {
    this.#svc = svc;
    this.#name = name;
    this.#rank = rank;
    this.#walk = walk;
    this.#listChanged();
  }

  /** Whether decisions currently come from the index (for tests and diagnostics). */
  get indexed(): boolean {
    return this.#index !== undefined;
  }

  schedule(_flow: Flow): Dest | undefined {
    const ix = this.#index;
    const d = ix === undefined || ix.anomalies > 0 ? this.#walk(this.#svc.dests) : ix.winner();
    return d ?? noDestination(this.#svc, this.#name);
  }

  addDest(): void {
    this.#listChanged();
  }

  delDest(): void {
    this.#listChanged();
  }

  updDest(dest: Dest): void {
    this.#index?.update(dest);
  }

  dispose(): void {
    this.#index?.dispose();
    this.#index = undefined;
  }

  #listChanged(): void {
    const dests = this.#svc.dests;
    if (dests.length >= INDEX_MIN_DESTS) {
      if (this.#index === undefined) this.#index = new LeastIndex(this.#rank, dests);
      else this.#index.rebuild(dests);
    } else this.dispose();
  }
}

/** A least-connection scheduler: `walk` is the kernel's algorithm, `rank` the same order for the index. */
export function indexedScheduler(
  name: string,
  rank: Ranking,
  walk: (dests: readonly Dest[]) => Dest | undefined,
): Scheduler {
  return { name, create: (svc) => new IndexedLeast(svc, name, rank, walk) };
}
