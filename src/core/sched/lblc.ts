// lblc — locality-based least connection (the kernel's ip_vs_lblc.c), for cache clusters: the
// packet's DESTINATION address is remembered with the real server last chosen for it.
//
//   entry = cache[daddr]; if there is one, lastuse = now and its server is used when it is still
//     in the service (available), has weight > 0 and is not "lblc-overloaded": more active
//     connections than its weight while some server of the service has active * 2 < weight.
//     (The threshold overload flag is not consulted for a cached server, as in the kernel.)
//   otherwise the wlc choice over the service is taken and the entry is (re)made with it.
// Stale entries go by the collection in locality-table.ts, run lazily from schedule() on the
// injected clock; an entry keeps pointing at a removed destination until then (and is ignored),
// as the kernel's entries keep their reference.

import type { Dest } from "../dest.ts";
import { DEFAULT_EXPIRATION, LocalityTable } from "./locality-table.ts";
import { connOverhead } from "./overhead.ts";
import {
  type Flow,
  noDestination,
  type SchedEnv,
  type SchedService,
  type Scheduler,
  type SchedulerInstance,
} from "./types.ts";
import { weightedLeast } from "./weighted-least.ts";

interface LblcEntry {
  readonly addr: string;
  lastuse: number;
  readonly dest: Dest;
}

/**
 * The lblc/lblcr notion of overload: more active connections than weight, while some destination
 * of the service has fewer than half its weight in active connections.
 */
export function localityOverloaded(dest: Dest, dests: readonly Dest[]): boolean {
  if (dest.activeConns > dest.weight) {
    for (const d of dests) if (((d.activeConns * 2) | 0) < d.weight) return true;
  }
  return false;
}

class LocalityLeastConnection implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #env: SchedEnv;
  readonly #table: LocalityTable<LblcEntry>;

  constructor(svc: SchedService, env: SchedEnv) {
    this.#svc = svc;
    this.#env = env;
    this.#table = new LocalityTable<LblcEntry>(env.clock.now());
  }

  /** The cache, for tests and diagnostics. */
  get table(): LocalityTable<LblcEntry> {
    return this.#table;
  }

  schedule(flow: Flow): Dest | undefined {
    const now = this.#env.clock.now();
    this.#table.collect(now, this.#env.sysctl?.lblcExpiration ?? DEFAULT_EXPIRATION);
    const dests = this.#svc.dests;
    const en = this.#table.get(flow.daddr);
    if (en !== undefined) {
      en.lastuse = now;
      const d = en.dest;
      if (d.available && d.weight > 0 && !localityOverloaded(d, dests)) return d;
    }
    const dest = weightedLeast(dests, connOverhead);
    if (dest === undefined) return noDestination(this.#svc, "lblc");
    if (en === undefined || en.dest !== dest) {
      if (en !== undefined) this.#table.remove(en);
      this.#table.add({ addr: flow.daddr, lastuse: now, dest });
    }
    return dest;
  }

  dispose(): void {
    this.#table.clear();
  }
}

export const lblc: Scheduler = {
  name: "lblc",
  create: (svc, env) => new LocalityLeastConnection(svc, env),
};
