// An exact index for the least-connection family (lc, wlc, sed, nq): a tournament tree over the
// service's destination list that always holds the kernel's choice at its root, so a scheduling
// decision reads one slot instead of walking every destination.
//
// Why it returns exactly the kernel's pick: each of these walks ends on the EARLIEST destination
// (in list order) that is best by a total preorder on (eligible, load) — the walk switches only to
// a strictly better destination, and the cross-multiplied comparison of load/weight with
// positive weights is an exact comparison of rationals. A tournament tree computes the same
// thing: every inner node holds the better of its two children, and on a tie the left child,
// whose list positions are all earlier. (The one place the walks are not such an order — a
// weight-0 destination with a NEGATIVE overhead, possible only past 2^23 active connections as
// the kernel's int wraps — is flagged as an anomaly and the scheduler then walks the list as the
// kernel does.)
//
// Keeping it exact: the tree is rebuilt (O(n)) whenever the list changes (add, delete); a
// destination's leaf and its path to the root (O(log n)) are recomputed whenever anything it is
// ranked by changes, which Dest reports through its loadWatcher (bind, unbind, becameActive,
// becameInactive, update). The randomized tests drive both this and the plain walk through the
// same random events and compare every decision.

import type { Dest } from "../dest.ts";

export interface Ranking {
  /** May the destination be chosen at all (not overloaded, weight > 0 or != 0 as the kernel says)? */
  eligible(d: Dest): boolean;
  /** Is a strictly better than b (the kernel would switch from b to a)? */
  better(a: Dest, b: Dest): boolean;
  /** A state in which the walk is not a total order; the caller must walk the list instead. */
  anomaly?(d: Dest): boolean;
}

export class LeastIndex {
  readonly #rank: Ranking;
  readonly #watch = (d: Dest): void => this.update(d);
  #dests: Dest[] = [];
  readonly #pos = new Map<Dest, number>();
  #size = 1;
  #tree = new Int32Array(2).fill(-1);
  #anomalous = new Uint8Array(1);
  #anomalies = 0;

  constructor(rank: Ranking, dests: readonly Dest[]) {
    this.#rank = rank;
    this.rebuild(dests);
  }

  /** Number of destinations in an anomalous state (the caller walks while this is > 0). */
  get anomalies(): number {
    return this.#anomalies;
  }

  /** The kernel's choice, or undefined when no destination is eligible. */
  winner(): Dest | undefined {
    const w = this.#tree[1] as number;
    return w < 0 ? undefined : this.#dests[w];
  }

  /** Take a new list (after an add or delete): positions change, so rebuild from scratch. */
  rebuild(dests: readonly Dest[]): void {
    for (const d of this.#dests) if (d.loadWatcher === this.#watch) d.loadWatcher = undefined;
    this.#dests = [...dests];
    this.#pos.clear();
    const n = this.#dests.length;
    let size = 1;
    while (size < n) size <<= 1;
    this.#size = size;
    this.#tree = new Int32Array(2 * size).fill(-1);
    this.#anomalous = new Uint8Array(size);
    this.#anomalies = 0;
    for (let i = 0; i < n; i++) {
      const d = this.#dests[i] as Dest;
      this.#pos.set(d, i);
      d.loadWatcher = this.#watch;
      this.#setLeaf(i, d);
    }
    for (let i = size - 1; i >= 1; i--)
      this.#tree[i] = this.#win(this.#tree[2 * i] as number, this.#tree[2 * i + 1] as number);
  }

  /** A destination's load, weight or flags changed: recompute its leaf and the path to the root. */
  update(d: Dest): void {
    const p = this.#pos.get(d);
    if (p === undefined) return;
    this.#setLeaf(p, d);
    // Only p's rank changed: a node that neither held p nor holds it now is unchanged, and so is
    // everything above it, so the climb stops there.
    const tree = this.#tree;
    for (let i = (this.#size + p) >> 1; i >= 1; i >>= 1) {
      const old = tree[i] as number;
      const now = this.#win(tree[2 * i] as number, tree[2 * i + 1] as number);
      if (now === old && old !== p) break;
      tree[i] = now;
    }
  }

  /** Stop watching the destinations (the scheduler is being replaced or the service deleted). */
  dispose(): void {
    this.rebuild([]);
  }

  #setLeaf(p: number, d: Dest): void {
    this.#tree[this.#size + p] = this.#rank.eligible(d) ? p : -1;
    const a = this.#rank.anomaly?.(d) === true ? 1 : 0;
    this.#anomalies += a - (this.#anomalous[p] as number);
    this.#anomalous[p] = a;
  }

  /** The better of two positions (i < j when both are set); ties keep i, the earlier. */
  #win(i: number, j: number): number {
    if (i < 0) return j;
    if (j < 0) return i;
    return this.#rank.better(this.#dests[j] as Dest, this.#dests[i] as Dest) ? j : i;
  }
}
