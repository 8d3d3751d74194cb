// The two hash indexes of the connection table, chained through per-slot "next" arrays:
//   IN  keyed by (protocol, client address, client port, virtual address, virtual port): every
//       connection (templates are found through their own map, not here);
//   OUT keyed by (protocol, real-server address, real-server port, reply destination address and
//       port): NAT connections (the reply goes to the client) and FULLNAT connections once their
//       local endpoint is known (the reply goes to laddr:lport).
// The bucket count is the store's capacity rounded up to a power of two; growing past it
// re-buckets every live entry once.

import type { Dest } from "../dest.ts";
import { type AddrKey, addrKey, hash5 } from "./addr-key.ts";
import type { Conn } from "./conn.ts";
import type { ConnStore } from "./conn-store.ts";

/** Entry flag (in the conn's spare flag bits): linked in the OUT index. */
export const CF_OUTHASH = 0x80;

function inHash(c: Conn): number {
  return hash5(c._proto, c._ca, c.cport, c._va, c._vp);
}

export class ConnIndex {
  readonly #store: ConnStore;
  #inHeads = new Int32Array(0);
  #outHeads = new Int32Array(0);
  #inNext = new Int32Array(0);
  #outNext = new Int32Array(0);
  /** Bucket count - 1; -1 before the first grow. */
  #mask = -1;
  /** Destination addresses as keys, parsed once per destination. */
  readonly #destKeys = new WeakMap<Dest, AddrKey>();

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
    this.#inNext = i32(this.#inNext);
    this.#outNext = i32(this.#outNext);
    let buckets = 1;
    while (buckets < cap) buckets <<= 1;
    if (buckets - 1 === this.#mask) return;
    this.#mask = buckets - 1;
    this.#inHeads = new Int32Array(buckets).fill(-1);
    this.#outHeads = new Int32Array(buckets).fill(-1);
    for (const c of this.#store.live()) {
      if (!c.template) this.#push(this.#inHeads, this.#inNext, inHash(c), c._id);
      if (c._has(CF_OUTHASH)) this.#push(this.#outHeads, this.#outNext, this.#outHash(c), c._id);
    }
  }

  linkIn(c: Conn): void {
    this.#push(this.#inHeads, this.#inNext, inHash(c), c._id);
  }

  unlinkIn(c: Conn): void {
    this.#unlink(this.#inHeads, this.#inNext, inHash(c), c._id);
  }

  /** The connection with this IN key, bound or not. */
  findIn(p: number, ca: AddrKey, cport: number, va: AddrKey, vport: number): Conn | undefined {
    const store = this.#store;
    const next = this.#inNext;
    let id = this.#inHeads[hash5(p, ca, cport, va, vport) & this.#mask] ?? -1;
    while (id !== -1) {
      const c = store.at(id);
      if (c !== undefined && c.cport === cport && c._ca === ca && c._vp === vport && c._va === va && c._proto === p)
        return c;
      id = next[id] ?? -1;
    }
    return undefined;
  }

  linkOut(c: Conn): void {
    this.#push(this.#outHeads, this.#outNext, this.#outHash(c), c._id);
    c._set(CF_OUTHASH);
  }

  unlinkOut(c: Conn): void {
    c._clear(CF_OUTHASH);
    this.#unlink(this.#outHeads, this.#outNext, this.#outHash(c), c._id);
  }

  /** The connection whose replies come from da:dport to xa:xport (client, or FULLNAT local endpoint). */
  findOut(p: number, da: AddrKey, dport: number, xa: AddrKey, xport: number): Conn | undefined {
    const store = this.#store;
    const next = this.#outNext;
    let id = this.#outHeads[hash5(p, da, dport, xa, xport) & this.#mask] ?? -1;
    while (id !== -1) {
      const c = store.at(id);
      if (c !== undefined && c._dp === dport && c._proto === p && this.daddrKey(c) === da) {
        const x = c._x;
        if (x !== undefined && x.laddr !== "") {
          if (x.lport === xport && addrKey(x.laddr) === xa) return c;
        } else if (c.cport === xport && c._ca === xa) return c;
      }
      id = next[id] ?? -1;
    }
    return undefined;
  }

  /** A destination's address as the indexes key it. */
  destKey(d: Dest): AddrKey {
    let k = this.#destKeys.get(d);
    if (k === undefined) {
      k = addrKey(d.addr);
      this.#destKeys.set(d, k);
    }
    return k;
  }

  /** An entry's real-server address as a key: its destination's, or an unbound entry's own. */
  daddrKey(c: Conn): AddrKey {
    return c.dest !== undefined ? this.destKey(c.dest) : addrKey(c.daddr);
  }

  #outHash(c: Conn): number {
    const x = c._x;
    const full = x !== undefined && x.laddr !== "";
    return hash5(c._proto, this.daddrKey(c), c._dp, full ? addrKey(x.laddr) : c._ca, full ? x.lport : c.cport);
  }

  #push(heads: Int32Array, next: Int32Array, h: number, id: number): void {
    const b = h & this.#mask;
    next[id] = heads[b] ?? -1;
    heads[b] = id;
  }

  #unlink(heads: Int32Array, next: Int32Array, h: number, target: number): void {
    const b = h & this.#mask;
    let id = heads[b] ?? -1;
    if (id === target) {
      heads[b] = next[id] ?? -1;
      return;
    }
    while (id !== -1) {
      const n = next[id] ?? -1;
      if (n === target) {
        next[id] = next[n] ?? -1;
        return;
      }
      id = n;
    }
  }
}
