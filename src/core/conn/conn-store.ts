// The slot store of the connection table: every live entry has a slot number, and the numbers
// that change on every packet (expiry, timeout) and the template's count of controlled
// connections (the kernel's n_control) live in typed arrays indexed by slot, so a million
// entries cost little heap. Slots freed by removals are reused first (a stack of free slots);
// the arrays grow by doubling up to the table's limit. The hash index and the timer wheel keep
// their own per-slot links and grow with it (conn-entries.ts grows all three together).

import { Conn, type ConnSlots } from "./conn.ts";

export class ConnStore {
  /** Expiry and timeout per slot; shared with the Conn handles (their expiresAt/timeoutMs getters). */
  readonly slots: ConnSlots = { exp: new Float64Array(0), tmo: new Float64Array(0) };
  #conns: (Conn | undefined)[] = [];
  #nctl = new Int32Array(0);
  #free = new Int32Array(0);
  #freeTop = 0;
  /** Slots below this have been used at least once. */
  #fresh = 0;
  #cap = 0;
  #size = 0;

  /** Live entries. */
  get size(): number {
    return this.#size;
  }
  get capacity(): number {
    return this.#cap;
  }
  /** One past the highest slot ever used: iterate ids below it. */
  get highWater(): number {
    return this.#fresh;
  }
  /** True when the next put() needs a grow() first. */
  get exhausted(): boolean {
    return this.#freeTop === 0 && this.#fresh === this.#cap;
  }

  at(id: number): Conn | undefined {
    return this.#conns[id];
  }
  exp(id: number): number {
    return this.slots.exp[id] ?? 0;
  }
  setExp(id: number, ms: number): void {
    this.slots.exp[id] = ms;
  }
  tmo(id: number): number {
    return this.slots.tmo[id] ?? 0;
  }
  setTmo(id: number, ms: number): void {
    this.slots.tmo[id] = ms;
  }
  /** Connections controlled by the template in this slot. */
  controlled(id: number): number {
    return this.#nctl[id] ?? 0;
  }
  addControlled(id: number, delta: number): void {
    this.#nctl[id] = (this.#nctl[id] ?? 0) + delta;
  }

  /** Whether a Conn handle was made for this store. */
  owns(c: unknown): c is Conn {
    return c instanceof Conn && c._s === this.slots;
  }

  grow(cap: number): void {
    if (cap <= this.#cap) return;
    const f64 = (a: Float64Array) => {
      const n = new Float64Array(cap);
      n.set(a);
      return n;
    };
    const i32 = (a: Int32Array) => {
      const n = new Int32Array(cap);
      n.set(a);
      return n;
    };
    this.slots.exp = f64(this.slots.exp);
    this.slots.tmo = f64(this.slots.tmo);
    this.#nctl = i32(this.#nctl);
    this.#free = i32(this.#free);
    this.#cap = cap;
  }

  /** Give `c` a slot (grow first when exhausted) with its expiry and timeout; returns the slot. */
  put(c: Conn, exp: number, tmo: number): number {
    const id = this.#freeTop > 0 ? (this.#free[--this.#freeTop] ?? 0) : this.#fresh++;
    c._id = id;
    this.#conns[id] = c;
    this.slots.tmo[id] = tmo;
    this.slots.exp[id] = exp;
    this.#nctl[id] = 0;
    this.#size++;
    return id;
  }

  /** Free slot `id`. */
  release(id: number): void {
    this.#conns[id] = undefined;
    this.#nctl[id] = 0;
    this.#free[this.#freeTop++] = id;
    this.#size--;
  }

  /** Every live entry in slot order. */
  *live(): IterableIterator<Conn> {
    for (let id = 0; id < this.#fresh; id++) {
      const c = this.#conns[id];
      if (c !== undefined) yield c;
    }
  }
}
