// lblcr — locality-based least connection with replication (the kernel's ip_vs_lblcr.c): each
// destination address maps to a SET of real servers (newest first).
//
//   entry = cache[daddr]; if there is one: lastuse = now; n = the set member with the least
//     overhead/weight among those not overloaded, available and with weight > 0 (earliest on
//     ties). If the set has more than one member and now > lastmod + expiration (the
//     lblcr_expiration sysctl, 24 h), the member with the MOST overhead/weight (among weight > 0)
//     is dropped and lastmod = now. If n exists and is not lblc-overloaded it is used; otherwise
//     the wlc choice over the service is used and added to the set (lastmod = now when it is new).
//   no entry: the wlc choice, and a new entry with a one-member set.
// Collection of idle entries as lblc (locality-table.ts), lazily from schedule().

import type { Dest } from "../dest.ts";
import { localityOverloaded } from "./lblc.ts";
import { DEFAULT_EXPIRATION, LocalityTable } from "./locality-table.ts";
import { connOverhead, mulGreater, mulLess } from "./overhead.ts";
import {
  type Flow,
  noDestination,
  type SchedEnv,
  type SchedService,
  type Scheduler,
  type SchedulerInstance,
} from "./types.ts";
import { weightedLeast } from "./weighted-least.ts";

interface DestSet {
  /** Members, the most recently inserted first (list_add_rcu at the head). */
  readonly members: Dest[];
  lastmod: number;
}

interface LblcrEntry {
  readonly addr: string;
  lastuse: number;
  readonly set: DestSet;
}

/** ip_vs_dest_set_min(): the least loaded usable member. */
function setMin(set: DestSet): Dest | undefined {
  const m = set.members;
  let i = 0;
  let least: Dest | undefined;
  for (; i < m.length; i++) {
    const d = m[i] as Dest;
    if (d.overloaded) continue;
    if (d.weight > 0 && d.available) {
      least = d;
      break;
    }
  }
  if (least === undefined) return undefined;
  let loh = connOverhead(least);
  for (i++; i < m.length; i++) {
    const d = m[i] as Dest;
    if (d.overloaded) continue;
    const doh = connOverhead(d);
    if (mulGreater(loh, d.weight, doh, least.weight) && d.available) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** ip_vs_dest_set_max(): the most loaded member with weight > 0. */
function setMax(set: DestSet): Dest | undefined {
  const m = set.members;
  let i = 0;
  let most: Dest | undefined;
  for (; i < m.length; i++) {
    const d = m[i] as Dest;
    if (d.weight > 0) {
      most = d;
      break;
    }
  }
  if (most === undefined) return undefined;
  let moh = connOverhead(most);
  for (i++; i < m.length; i++) {
    const d = m[i] as Dest;
    const doh = connOverhead(d);
    if (mulLess(moh, d.weight, doh, most.weight) && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

class LocalityReplicated implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #env: SchedEnv;
  readonly #table: LocalityTable<LblcrEntry>;

  constructor(svc: SchedService, env: SchedEnv) {
    this.#svc = svc;
    this.#env = env;
    this.#table = new LocalityTable<LblcrEntry>(env.clock.now());
  }

  get table(): LocalityTable<LblcrEntry> {
    return this.#table;
  }

  schedule(flow: Flow): Dest | undefined {
    const now = this.#env.clock.now();
    const expiration = this.#env.sysctl?.lblcrExpiration ?? DEFAULT_EXPIRATION;
    this.#table.collect(now, expiration);
    const dests = this.#svc.dests;
    const en = this.#table.get(flow.daddr);
    if (en !== undefined) {
      en.lastuse = now;
      const set = en.set;
      const least = setMin(set);
      if (set.members.length > 1 && now > set.lastmod + expiration) {
        const most = setMax(set);
        if (most !== undefined) {
          set.members.splice(set.members.indexOf(most), 1);
          set.lastmod = now;
        }
      }
      if (least !== undefined && !localityOverloaded(least, dests)) return least;
      const dest = weightedLeast(dests, connOverhead);
      if (dest === undefined) return noDestination(this.#svc, "lblcr");
      if (!set.members.includes(dest)) {
        set.members.unshift(dest);
        set.lastmod = now;
      }
      return dest;
    }
    const dest = weightedLeast(dests, connOverhead);
    if (dest === undefined) return noDestination(this.#svc, "lblcr");
    this.#table.add({ addr: flow.daddr, lastuse: now, set: { members: [dest], lastmod: now } });
    return dest;
  }

  dispose(): void {
    this.#table.clear();
  }
}

export const lblcr: Scheduler = {
  name: "lblcr",
  create: (svc, env) => new LocalityReplicated(svc, env),
};
