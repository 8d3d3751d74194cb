// The health runner's schedule: every pending deadline of every watched real server (when its next
// check is due, when its attempt in flight runs out of time) in one binary min-heap, so a single
// timer armed for the earliest deadline drives them all.
//
// Why not one setTimeout per deadline: at 10,000 checks a second that is 20,000 timers a second,
// and Node keeps one timer list per distinct duration; delay_loop plus a random fraction of a
// millisecond of jitter makes nearly every duration distinct, so each timer costs a list, a
// priority-queue insertion and a removal of its own. Here a deadline is two numbers in typed arrays.
//
// The algorithm: an indexed binary heap. Items are small integers chosen by the caller (the runner
// uses two per real server: 2·slot for "next check", 2·slot+1 for "attempt time limit"); `time[i]`
// is the item's deadline and `pos[item]` its index in the heap array (-1 when absent), so an item
// can be rescheduled or removed in O(log n) without searching, and removing an attempt's limit when
// it finishes early leaves nothing stale behind. Ties on time go in no particular order.

export class DeadlineHeap {
  /** heap[k] = item at heap position k. */
  #heap = new Int32Array(64);
  /** times[k] = deadline of the item at heap position k (kept beside it for cache-friendly sifts). */
  #times = new Float64Array(64);
  /** pos[item] = heap position of item, or -1. */
  #pos = new Int32Array(64).fill(-1);
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Whether `item` has a deadline. */
  has(item: number): boolean {
    return item < this.#pos.length && (this.#pos[item] as number) >= 0;
  }

  /** The earliest deadline (Infinity when empty). */
  peekTime(): number {
    return this.#size > 0 ? (this.#times[0] as number) : Number.POSITIVE_INFINITY;
  }

  /** The item with the earliest deadline (-1 when empty). */
  peekItem(): number {
    return this.#size > 0 ? (this.#heap[0] as number) : -1;
  }

  /** Give `item` (a non-negative integer) the deadline `time`, adding it or moving it. */
  set(item: number, time: number): void {
    if (!(item >= 0 && Number.isInteger(item))) throw new RangeError(`Invalid heap item "${item}"`);
    if (item >= this.#pos.length) this.#growPos(item + 1);
    const k = this.#pos[item] as number;
    if (k >= 0) {
      const old = this.#times[k] as number;
      this.#times[k] = time;
      if (time < old) this.#up(k);
      else this.#down(k);
      return;
    }
    if (this.#size === this.#heap.length) this.#growHeap();
    const at = this.#size++;
    this.#heap[at] = item;
    this.#times[at] = time;
    this.#pos[item] = at;
    this.#up(at);
  }

  /** Remove `item`'s deadline; false when it had none. */
  delete(item: number): boolean {
    if (!this.has(item)) return false;
    const k = this.#pos[item] as number;
    this.#pos[item] = -1;
    const last = --this.#size;
    if (k !== last) {
      const moved = this.#heap[last] as number;
      const t = this.#times[last] as number;
      this.#heap[k] = moved;
      this.#times[k] = t;
      this.#pos[moved] = k;
      if (k > 0 && t < (this.#times[(k - 1) >> 1] as number)) this.#up(k);
      else this.#down(k);
    }
    return true;
  }

  /** Remove and return the item with the earliest deadline if that deadline is at or before `now`; else -1. */
  popDue(now: number): number {
    if (this.#size === 0 || (this.#times[0] as number) > now) return -1;
    const item = this.#heap[0] as number;
    this.delete(item);
    return item;
  }

  clear(): void {
    for (let k = 0; k < this.#size; k++) this.#pos[this.#heap[k] as number] = -1;
    this.#size = 0;
  }

  #up(k: number): void {
    const heap = this.#heap;
    const times = this.#times;
    const pos = this.#pos;
    const item = heap[k] as number;
    const t = times[k] as number;
    while (k > 0) {
      const p = (k - 1) >> 1;
      const pt = times[p] as number;
      if (pt <= t) break;
      const pi = heap[p] as number;
      heap[k] = pi;
      times[k] = pt;
      pos[pi] = k;
      k = p;
    }
    heap[k] = item;
    times[k] = t;
    pos[item] = k;
  }

  #down(k: number): void {
    const heap = this.#heap;
    const times = this.#times;
    const pos = this.#pos;
    const n = this.#size;
    const item = heap[k] as number;
    const t = times[k] as number;
    for (;;) {
      let c = 2 * k + 1;
      if (c >= n) break;
      let ct = times[c] as number;
      const r = c + 1;
      if (r < n && (times[r] as number) < ct) {
        c = r;
        ct = times[r] as number;
      }
      if (ct >= t) break;
      const ci = heap[c] as number;
      heap[k] = ci;
      times[k] = ct;
      pos[ci] = k;
      k = c;
    }
    heap[k] = item;
    times[k] = t;
    pos[item] = k;
  }

  #growHeap(): void {
    const heap = new Int32Array(this.#heap.length * 2);
    heap.set(this.#heap);
    this.#heap = heap;
    const times = new Float64Array(this.#times.length * 2);
    times.set(this.#times);
    this.#times = times;
  }

  #growPos(min: number): void {
    let n = this.#pos.length;
    while (n < min) n *= 2;
    const pos = new Int32Array(n).fill(-1);
    pos.set(this.#pos);
    this.#pos = pos;
  }
}
