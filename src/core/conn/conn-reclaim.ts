// Room in a full connection table. The kernel's table has no hard limit: under memory pressure
// its defense timer (ip_vs_random_dropentry, driven by the drop_entry sysctl) scans part of the
// table each second and drops entries that carry nothing worth keeping, half-open connections
// first. tvs has a hard limit (--conn-limit), so it does the same on demand: when a new flow
// finds the table full, entries are reclaimed before the flow is refused, in this order:
//
//   1. finished connections that only linger: TCP TIME_WAIT and CLOSE, SCTP CLOSED. Nothing flows
//      on them any more; the kernel keeps them only to absorb stray segments.
//   2. half-open connections: TCP SYN_RECV, SYNACK and SYN_SENT (the kernel's dropentry removes
//      SYN_RECV and SYNACK entries first: that is what a SYN flood fills the table with).
//
// Established connections, UDP flows, connections shutting down with data still possible
// (FIN_WAIT, CLOSE_WAIT, LAST_ACK) and persistence templates are never reclaimed: when only they
// are left, the new flow is refused and counted in `dropped`, as before.
//
// The search walks the timer wheel from the next tick on, so it meets soon-to-expire entries
// first (TIME_WAIT's two minutes are short next to ESTABLISHED's fifteen) and looks at a bounded
// number of entries. It reclaims a batch (1/64 of the limit, 1..256 entries) so a stream of new
// flows does not walk the wheel once each; after a walk that finds nothing it waits a second
// before walking again, so a table full of established connections costs a refusal, not a scan,
// per new flow.

import { type Conn, protoCode } from "./conn.ts";
import type { ConnEntries } from "./conn-entries.ts";
import { SCTP_S_CLOSED } from "./sctp-states.ts";
import { TCP_S_CLOSE, TCP_S_SYN_RECV, TCP_S_SYN_SENT, TCP_S_SYNACK, TCP_S_TIME_WAIT } from "./tcp-states.ts";

/** Entries looked at per walk. */
const MAX_VISITS = 8192;
/** After a fruitless walk, no other walk for this long (ms). */
const QUIET_MS = 1000;

const PROTO_TCP = protoCode("tcp");
const PROTO_SCTP = protoCode("sctp");

/** 1 for a finished connection, 2 for a half-open one, 0 for one never reclaimed. */
function reclaimClass(c: Conn): 0 | 1 | 2 {
  if (c.template) return 0;
  const p = c._proto;
  const s = c.state;
  if (p === PROTO_TCP) {
    if (s === TCP_S_TIME_WAIT || s === TCP_S_CLOSE) return 1;
    if (s === TCP_S_SYN_RECV || s === TCP_S_SYNACK || s === TCP_S_SYN_SENT) return 2;
    return 0;
  }
  if (p === PROTO_SCTP && s === SCTP_S_CLOSED) return 1;
  return 0;
}

export class ConnReclaimer {
  readonly #t: ConnEntries;
  readonly #batch: number;
  #quietUntil = Number.NEGATIVE_INFINITY;
  /** Entries removed to make room for new flows. */
  reclaimed = 0;
  /** Entries removed by drop_entry. */
  dropEntried = 0;

  constructor(entries: ConnEntries) {
    this.#t = entries;
    this.#batch = Math.min(256, Math.max(1, Math.floor(entries.limit / 64)));
  }

  /** Make room for `need` more entries if lingering or half-open entries allow; true when there is room. */
  makeRoom(need: number, now: number): boolean {
    const t = this.#t;
    if (t.hasRoom(need)) return true;
    if (now < this.#quietUntil) return false;
    const want = Math.max(this.#batch, t.size + need - t.limit);
    const finished: Conn[] = [];
    const halfOpen: Conn[] = [];
    // Finished entries are preferred, but once a batch of half-open ones is in hand the walk looks
    // only a little further for them: under a SYN flood the table is all half-open entries, and
    // walking MAX_VISITS of them for every batch would cost more than the flood itself.
    const window = Math.max(1024, 4 * want);
    let visits = 0;
    t.wheel.soonest((c) => {
      visits++;
      const k = reclaimClass(c);
      if (k === 1) finished.push(c);
      else if (k === 2 && halfOpen.length < want) halfOpen.push(c);
      return finished.length >= want || (halfOpen.length >= want && visits >= window);
    }, MAX_VISITS);
    const victims = finished.length >= want ? finished : [...finished, ...halfOpen].slice(0, want);
    for (const c of victims) {
      if (c._id < 0) continue;
      t.remove(c, undefined);
      this.reclaimed++;
    }
    if (t.hasRoom(need)) return true;
    this.#quietUntil = now + QUIET_MS;
    return false;
  }

  /**
   * drop_entry while it is on (defense.ts), once a second: remove up to `count` finished and
   * half-open entries, nearest expiry first, whether or not the table is full. Returns how many.
   */
  dropEntries(count: number): number {
    const t = this.#t;
    const victims: Conn[] = [];
    t.wheel.soonest((c) => {
      if (reclaimClass(c) !== 0) victims.push(c);
      return victims.length >= count;
    }, MAX_VISITS);
    let n = 0;
    for (const c of victims) {
      if (c._id < 0) continue;
      t.remove(c, undefined);
      n++;
    }
    this.dropEntried += n;
    return n;
  }
}
