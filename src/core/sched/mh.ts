// mh — Maglev hashing (the kernel's ip_vs_mh.c; Eisenbud et al., NSDI 2016, section 3.4).
//
// Table: M = 4093 slots (the kernel's default CONFIG_IP_VS_MH_TAB_INDEX 12 → primes[4]). Each
// destination has a preference list over the slots, offset + k * skip (mod M), with
//   offset = hsiphash(port + fold(addr), key1) % M,  skip = hsiphash(same, key2) % (M - 1) + 1
// computed from the destination's address and port (see kernel-hash.ts; the address is folded by
// the SERVICE's family, as the kernel passes svc->af, so an IPv6 tunnel destination of an IPv4
// service hashes its first 32-bit word).
//
// Population: weights are the destinations' last_weight (the latest non-zero weight, so quiescing
// to weight 0 keeps a destination's slots and only refuses it at lookup). g = gcd of the positive
// last weights; rshift = max(0, fls(max_last_weight / g) - 6); each destination claims
// turns = (last_weight / g) >> rshift slots per round (at least 1 when its last_weight is not 0,
// none when it is 0). Rounds walk the list in the kernel's order; a claim advances the
// destination's preference cursor past slots already taken. Filling stops the moment all M slots
// are taken. Every add, delete and edit repopulates from scratch; with no positive last weight the
// table is emptied. More than M destinations: the kernel's reassign fails with EINVAL and the old
// table stays (its add/edit hooks ignore that error), which we reproduce.
//
// Lookup: slot = hsiphash(port + fold(saddr), key1) % M, port = the client's source port with
// mh-port, else 0. A destination with weight <= 0 or overloaded is refused; with mh-fallback the
// lookup retries hsiphash(roffset + port + fold, key1) % M for roffset = ihash, ihash+1, ...
// (mod M), stopping at the first usable destination or an empty slot.

import { ipWords } from "../addr.ts";
import type { Dest } from "../dest.ts";
import { gcdOfWeights } from "./gcd.ts";
import { foldAddress, hsiphashU32, MH_KEY1, MH_KEY2 } from "./kernel-hash.ts";
import { type Flow, noDestination, type SchedService, type Scheduler, type SchedulerInstance } from "./types.ts";

/** Table sizes the kernel can be built with (CONFIG_IP_VS_MH_TAB_INDEX 8..17). */
export const MH_PRIMES: readonly number[] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];
const MH_TAB_INDEX_CONFIG = 12;
const MH_TAB_BITS = MH_TAB_INDEX_CONFIG / 2;
/** The lookup table size of a default kernel build. */
export const MH_TAB_SIZE = MH_PRIMES[MH_TAB_INDEX_CONFIG - 8] as number;

function unavailable(d: Dest): boolean {
  return d.weight <= 0 || d.overloaded;
}

function lastWeightOf(d: Dest): number {
  return d.lastWeight;
}

/** Position of the most significant set bit, 1-based; 0 for 0 (the kernel's fls). */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** The kernel's ip_vs_mh_hashkey() for a folded address. */
export function mhHash(fold: number, port: number, offset: number, key = MH_KEY1): number {
  return hsiphashU32((offset + port + fold) >>> 0, key);
}

/** A destination's address folded as the kernel does with the service's family. */
function destFold(d: Dest, svcFamily: 4 | 6): number {
  if (svcFamily === 4 && d.family === 6) return ipWords(d.addr)[0] as number;
  return foldAddress(d.addr);
}

class MaglevHashing implements SchedulerInstance {
  readonly #svc: SchedService;
  readonly #size: number;
  readonly #lookup: (Dest | undefined)[];
  /** Per destination: [offset, skip], cached (address and port never change). */
  readonly #perm = new WeakMap<Dest, readonly [number, number]>();
  #gcd = 0;
  #rshift = 0;

  constructor(svc: SchedService, size = MH_TAB_SIZE) {
    this.#svc = svc;
    this.#size = size;
    this.#lookup = new Array<Dest | undefined>(size).fill(undefined);
    this.#changed();
  }

  /** The lookup table as it stands (for tests and diagnostics). */
  get table(): readonly (Dest | undefined)[] {
    return this.#lookup;
  }

  schedule(flow: Flow): Dest | undefined {
    const flags = this.#svc.schedFlags;
    const port = flags.has("mh-port") ? flow.sport : 0;
    const fold = foldAddress(flow.saddr);
    const m = this.#size;
    const ihash = mhHash(fold, port, 0) % m;
    let d = this.#lookup[ihash];
    if (d !== undefined && !unavailable(d)) return d;
    if (d === undefined || !flags.has("mh-fallback")) return noDestination(this.#svc, "mh");
    for (let offset = 0; offset < m; offset++) {
      const roffset = (offset + ihash) % m;
      d = this.#lookup[mhHash(fold, port, roffset) % m];
      if (d === undefined) break;
      if (!unavailable(d)) return d;
    }
    return noDestination(this.#svc, "mh");
  }

  addDest(): void {
    this.#changed();
  }

  delDest(): void {
    this.#changed();
  }

  updDest(): void {
    this.#changed();
  }

  dispose(): void {
    this.#lookup.fill(undefined);
  }

  #changed(): void {
    const dests = this.#svc.dests;
    this.#gcd = gcdOfWeights(dests, lastWeightOf);
    this.#rshift = this.#shift();
    if (dests.length > this.#size) return;
    this.#populate();
  }

  #shift(): number {
    if (this.#gcd < 1) return 0;
    let w = 0;
    for (const d of this.#svc.dests) if (d.lastWeight > w) w = d.lastWeight;
    const shift = fls(Math.trunc(w / this.#gcd)) - MH_TAB_BITS;
    return shift >= 0 ? shift : 0;
  }

  #permutation(d: Dest): readonly [number, number] {
    let p = this.#perm.get(d);
    if (p === undefined) {
      const fold = destFold(d, this.#svc.family);
      const m = this.#size;
      p = [mhHash(fold, d.port, 0, MH_KEY1) % m, (mhHash(fold, d.port, 0, MH_KEY2) % (m - 1)) + 1];
      this.#perm.set(d, p);
    }
    return p;
  }

  #populate(): void {
    const m = this.#size;
    if (this.#gcd < 1) {
      this.#lookup.fill(undefined);
      return;
    }
    const dests = this.#svc.dests;
    const n = dests.length;
    const skip = new Array<number>(n);
    const perm = new Array<number>(n);
    const turns = new Array<number>(n);
    for (let i = 0; i < n; i++) {
      const d = dests[i] as Dest;
      const [offset, sk] = this.#permutation(d);
      perm[i] = offset;
      skip[i] = sk;
      const lw = d.lastWeight;
      turns[i] = Math.trunc(lw / this.#gcd) >> this.#rshift || (lw !== 0 ? 1 : 0);
    }
    const taken = new Uint8Array(m);
    let filled = 0;
    let claimed = 0;
    for (;;) {
      for (let i = 0; i < n; ) {
        const t = turns[i] as number;
        if (t < 1) {
          i++;
          continue;
        }
        let c = perm[i] as number;
        while (taken[c] === 1) {
          c += skip[i] as number;
          if (c >= m) c -= m;
        }
        perm[i] = c;
        taken[c] = 1;
        this.#lookup[c] = dests[i];
        if (++filled === m) return;
        if (++claimed >= t) {
          claimed = 0;
          i++;
        }
      }
    }
  }
}

export const mh: Scheduler = {
  name: "mh",
  flags: ["mh-fallback", "mh-port"],
  create: (svc) => new MaglevHashing(svc),
};

/** An mh instance with a non-default table size (a kernel built with another CONFIG_IP_VS_MH_TAB_INDEX). */
export function createMaglev(
  svc: SchedService,
  size: number,
): SchedulerInstance & {
  readonly table: readonly (Dest | undefined)[];
} {
  if (!MH_PRIMES.includes(size)) throw new RangeError(`Maglev table size "${size}" is not one of the kernel's primes`);
  return new MaglevHashing(svc, size);
}
