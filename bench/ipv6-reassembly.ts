// IPv6 reassembly under a flood of fragments that never complete (a last piece whose first piece
// never comes, each with its own identification): the cost of one such fragment while the
// reassembler is empty beside its cost once memory is full (some 13,000 queues held, each new
// one evicting the oldest), and the cost of a datagram of 4 fragments that completes while the
// reassembler is full. Side by side in one run; the ratio full/empty is what matters: a
// reassembler whose per-fragment work grows with the queues it holds falls over under a flood.
// Bounded: each cell runs for about 300 ms.
//
//   node --import tsx bench/ipv6-reassembly.ts

import { performance } from "node:perf_hooks";
import { Ipv6Reassembler } from "../src/dataplane/packet/ipv6-reassembly.ts";

const CELL_MS = 300;

function lone(id: number): Uint8Array {
  const f = Buffer.alloc(48);
  f[0] = 0x60;
  f.writeUInt16BE(8, 4);
  f[6] = 44;
  f[40] = 17;
  f.writeUInt16BE(8, 42);
  f.writeUInt32BE(id >>> 0, 44);
  return f;
}

/** Four fragments of one datagram (3 × 1232 data bytes and a last one of 304). */
function datagram(id: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let off = 0; off < 4000; off += 1232) {
    const n = Math.min(1232, 4000 - off);
    const f = Buffer.alloc(48 + n);
    f[0] = 0x60;
    f.writeUInt16BE(8 + n, 4);
    f[6] = 44;
    f[40] = 17;
    f.writeUInt16BE(off | (off + n < 4000 ? 1 : 0), 42);
    f.writeUInt32BE(id >>> 0, 44);
    out.push(f);
  }
  return out;
}

/** Fragments per second over CELL_MS, `feed(i)` adding the i-th and returning how many it added. */
function rate(feed: (i: number) => number): number {
  let n = 0;
  let i = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < CELL_MS) {
    for (let k = 0; k < 100; k++) n += feed(i++);
    t = performance.now();
  }
  return n / ((t - t0) / 1000);
}

let id = 1;
const empty = new Ipv6Reassembler();
const emptyRate = rate(() => {
  empty.add(lone(id++), 0, 48, 0);
  empty.expire(Number.MAX_SAFE_INTEGER); // keep it empty
  return 1;
});
const full = new Ipv6Reassembler();
while (full.stats.evicted === 0) full.add(lone(id++), 0, 48, 0);
const held = full.queues;
const fullRate = rate(() => {
  full.add(lone(id++), 0, 48, 0);
  return 1;
});
const whole = datagram(0x7000_0000);
const completeRate = rate((i) => {
  for (const f of whole) {
    f[44] = (i >>> 8) & 0xff;
    f[45] = i & 0xff;
    full.add(f, 0, f.length, 0);
  }
  return whole.length;
});
const us = (r: number): string => (1e6 / r).toFixed(2).padStart(8);
console.log(`fragments that never complete, reassembler empty       ${us(emptyRate)} µs/fragment`);
console.log(
  `fragments that never complete, ${held} queues held    ${us(fullRate)} µs/fragment  (x${(emptyRate / fullRate).toFixed(2)} the empty cost)`,
);
console.log(`fragments of completing datagrams, ${held} queues held ${us(completeRate)} µs/fragment`);
