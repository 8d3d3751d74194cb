// The scheduler shape shared by lc, wlc, sed and nq: decisions come from a LeastIndex kept in step
// with the destination list by the add/del/upd hooks and with each destination's load by its
// loadWatcher; the kernel's plain walk (kept beside each scheduler) is used while the index reports
// an anomaly (see least-index.ts).

import type { Dest } from "../dest.ts";
import { LeastIndex, type Ranking } from "./least-index.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

class IndexedLeast implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #name: string;
  readonly #walk: (dests: readonly Dest[]) => Dest | undefined;
  readonly #index: LeastIndex;

  constructor(svc: SchedService, name: string, rank: Ranking, walk: (dests: readonly Dest[]) => Dest | undefined) {
    this.#svc = svc;
    this.#name = name;
    this.#walk = walk;
    this.#index = new LeastIndex(rank, svc.dests);
  }

  schedule(_flow: Flow): Dest | undefined {
    const d = this.#index.anomalies > 0 ? this.#walk(this.#svc.dests) : this.#index.winner();
    return d ?? noDestination(this.#svc, this.#name);
  }

  addDest(): void {
    this.#index.rebuild(this.#svc.dests);
  }

  delDest(): void {
    this.#index.rebuild(this.#svc.dests);
  }

  updDest(dest: Dest): void {
    this.#index.update(dest);
  }

  dispose(): void {
    this.#index.dispose();
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
