// SCTP checksum costs on the packet plane: CRC32c over typical SCTP packet sizes computed byte at
// a time (the classic table loop), by slicing-by-8 (what tvs uses for a full computation), and
// the O(log n) update NAT uses after a port rewrite; the Internet checksum over the same bytes
// (what TCP/UDP NAT would pay for a full recomputation, which it also avoids) is the yardstick.
// Figures are packets per second and bytes per second on this machine, measured side by side in
// one run, with ratios to the byte loop. Bounded: each cell runs for about 200 ms.
//
//   node --import tsx bench/sctp-crc32c.ts

import { performance } from "node:perf_hooks";
import { sumBytes } from "../src/dataplane/packet/codec/checksum.ts";
import { crc32c, crc32cBytewise, crc32cUpdate32 } from "../src/dataplane/packet/codec/crc32c.ts";

const SIZES = [64, 512, 1452, 9000];
const CELL_MS = 200;

function rate(fn: () => number): number {
  let sink = 0;
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < CELL_MS) {
    for (let i = 0; i < 200; i++) sink ^= fn();
    n += 200;
    t = performance.now();
  }
  if (sink === 0.5) console.log("");
  return n / ((t - t0) / 1000);
}

const fmt = (v: number) => (v >= 1e6 ? `${(v / 1e6).toFixed(2)}M` : `${(v / 1e3).toFixed(1)}k`);
console.log("SCTP checksum cost per packet (packets/s; MB/s for the full computations; ratio to the byte loop)");
console.log(
  `${"bytes".padStart(6)} ${"byte loop".padStart(16)} ${"slicing-by-8".padStart(22)} ${"NAT update (ports)".padStart(22)} ${"Internet csum".padStart(22)}`,
);
for (const size of SIZES) {
  const pkt = Buffer.alloc(size);
  for (let i = 0; i < size; i++) pkt[i] = (i * 31 + 7) & 0xff;
  const crc = crc32c(pkt);
  const bytewise = rate(() => crc32cBytewise(pkt));
  const sliced = rate(() => crc32c(pkt));
  let port = 1;
  const update = rate(() => crc32cUpdate32(crc, size, 0, 0x9c40_8e3c, (0x9c40_0000 | (port++ & 0xffff)) >>> 0));
  const inet = rate(() => sumBytes(pkt, 0, size));
  const mbs = (pps: number) => `${((pps * size) / 1e6).toFixed(0)} MB/s`;
  console.log(
    `${String(size).padStart(6)} ${`${fmt(bytewise)} ${mbs(bytewise)}`.padStart(16)} ${`${fmt(sliced)} ${mbs(sliced)} x${(sliced / bytewise).toFixed(1)}`.padStart(22)} ${`${fmt(update)} x${(update / bytewise).toFixed(1)}`.padStart(22)} ${`${fmt(inet)} ${mbs(inet)} x${(inet / bytewise).toFixed(1)}`.padStart(22)}`,
  );
}
