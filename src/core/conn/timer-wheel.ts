// The connection table's timers: a hashed timer wheel of 4096 slots of 250 ms (about 17 minutes
// per turn), chained through per-slot prev/next arrays. An entry sits in the wheel slot of its
// expiry time. advance(now) visits the slots whose time has come since the last call (at most
// one full turn), hands each due entry to the caller and re-files the rest (entries whose expiry
// was pushed later, and entries due in a later turn).
//
// Pushing an expiry later, which happens on nearly every packet, only rewrites the number in the
// store: the entry is re-filed lazily when its old slot comes up. Pulling it earlier (a state
// with a shorter timeout) must move it at once (unlink + insert). So a touch is O(1) and advance
// costs O(due + re-filed), never a scan of the table.

import type { Conn } from "./conn.ts";
import type { ConnStore } from "./conn-store.ts";

const WHEEL_BITS = 12;
export const WHEEL_SLOTS = 1 << WHEEL_BITS;
const WHEEL_MASK = WHEEL_SLOTS - 1;
export const WHEEL_TICK_MS = 250;

export class TimerWheel {
  readonly #store: ConnStore;
  readonly #heads = new Int32Array(WHEEL_SLOTS).fill(-1);
  #next = new Int32Array(0);
  #prev = new Int32Array(0);
  /** Wheel slot each store slot is filed in, -1 when not filed. */
  #slot = new Int32Array(0);
  /** Last tick fully processed; NaN until time is first seen. */
  #cursor = Number.NaN;
  readonly #batch: Conn[] = [];

  constructor(store: ConnStore) {
    this.#store = store;
  }

  /** Follow the store to `cap` slots (call after store.grow). */
  grow(cap: number): void {
    const i32 = (a: Int32Array) => {
      const n = new Int32Array(cap);
      n.set(a);
      return n;
    };
    this.#next = i32(this.#next);
    this.#prev = i32(this.#prev);
    this.#slot = i32(this.#slot);
  }

  /** The first time seen starts the clock: nothing before it is due. */
  start(now: number): void {
    if (Number.isNaN(this.#cursor)) this.#cursor = Math.floor(now / WHEEL_TICK_MS) - 1;
  }

  filed(id: number): boolean {
    return this.#slot[id] !== -1;
  }

  /** Mark a fresh slot as not filed (before its first insert). */
  clear(id: number): void {
    this.#slot[id] = -1;
  }

  /** File slot `id` under its expiry (the store's exp), or the next tick if that has passed. */
  insert(id: number): void {
    let abs = Math.floor(this.#store.exp(id) / WHEEL_TICK_MS);
    if (abs <= this.#cursor) abs = this.#cursor + 1;
    const slot = abs & WHEEL_MASK;
    const head = this.#heads[slot] ?? -1;
    this.#next[id] = head;
    this.#prev[id] = -1;
    if (head !== -1) this.#prev[head] = id;
    this.#heads[slot] = id;
    this.#slot[id] = slot;
  }

  unlink(id: number): void {
    const prev = this.#prev[id] ?? -1;
    const next = this.#next[id] ?? -1;
    if (prev === -1) this.#heads[this.#slot[id] ?? 0] = next;
    else this.#next[prev] = next;
    if (next !== -1) this.#prev[next] = prev;
    this.#slot[id] = -1;
  }

  /**
   * Expiry = now + the slot's timeout; moved in the wheel only when it got earlier. Runs on
   * every packet: kept small so that it is inlined, the move is out of line.
   */
  rearm(id: number, now: number): void {
    const slots = this.#store.slots;
    const next = now + (slots.tmo[id] ?? 0);
    const old = slots.exp[id] ?? 0;
    slots.exp[id] = next;
    if (next < old || this.#slot[id] === -1) this.#refile(id);
  }

  /** Give the slot a new timeout and rearm it (one call on the per-packet path). */
  retime(id: number, tmo: number, now: number): void {
    const slots = this.#store.slots;
    slots.tmo[id] = tmo;
    const next = now + tmo;
    const old = slots.exp[id] ?? 0;
    slots.exp[id] = next;
    if (next < old || this.#slot[id] === -1) this.#refile(id);
  }

  #refile(id: number): void {
    if (this.#slot[id] !== -1) this.unlink(id);
    this.insert(id);
  }

  /**
   * Entries in about the order they expire: the wheel's slots from the next tick on, one full turn
   * at most, each slot's chain in turn. `visit` returns true to stop. At most `maxVisits` entries
   * are looked at. The caller must not change the wheel during the walk (collect, then act).
   */
  soonest(visit: (c: Conn) => boolean, maxVisits: number): void {
    if (Number.isNaN(this.#cursor)) return;
    const store = this.#store;
    let visits = 0;
    for (let b = this.#cursor + 1; b <= this.#cursor + WHEEL_SLOTS; b++) {
      let id = this.#heads[b & WHEEL_MASK] ?? -1;
      while (id !== -1) {
        const c = store.at(id);
        if (c !== undefined && visit(c)) return;
        if (++visits >= maxVisits) return;
        id = this.#next[id] ?? -1;
      }
    }
  }

  /**
   * Visit every tick up to `now`: each entry whose expiry is at or before `now` goes to `due`
   * (which must remove it or re-file it, e.g. by rearm), the others are re-filed.
   */
  advance(now: number, due: (c: Conn) => void): void {
    this.start(now);
    const store = this.#store;
    const target = Math.floor(now / WHEEL_TICK_MS);
    const first = Math.max(this.#cursor + 1, target - WHEEL_SLOTS + 1);
    const batch = this.#batch;
    for (let b = first; b <= target; b++) {
      const slot = b & WHEEL_MASK;
      // Detach the slot's list first: callbacks may touch or remove other entries.
      let id = this.#heads[slot] ?? -1;
      this.#heads[slot] = -1;
      this.#cursor = b - 1;
      batch.length = 0;
      while (id !== -1) {
        const c = store.at(id);
        if (c !== undefined) batch.push(c);
        this.#slot[id] = -1;
        id = this.#next[id] ?? -1;
      }
      for (const c of batch) {
        const cid = c._id;
        // Skip entries removed, or re-filed, by a callback during this batch.
        if (cid < 0 || this.#slot[cid] !== -1) continue;
        if (store.exp(cid) <= now) due(c);
        else this.insert(cid);
      }
    }
    batch.length = 0;
    this.#cursor = target - 1;
  }
}
