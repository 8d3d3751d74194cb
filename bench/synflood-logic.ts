// What one spoofed SYN costs the packet plane's JavaScript, side by side: scheduled into the table
// (NAT and DR, as without the SYN proxy: an entry per SYN) against answered with a SYN cookie
// (NAT with sysctl synproxy=1: a SYN-ACK written in place, no entry), and the valid cookie ACK
// that then opens a connection, and DR under mh forwarded without an entry (sysctl stateless_syn=1:
// a hash and a MAC rewrite) against DR under mh with an entry per SYN. Every SYN has a new source address (as hping3 --rand-source);
// batches of 64 through Pipeline.process on a memory batch, CPU time per frame (process.cpuUsage),
// the cost of copying the input frames in measured alone and subtracted. Also the keyed hash alone.
// Bounded: fixed counts. Run: node --import tsx bench/synflood-logic.ts
import type { FwdMethod } from "../src/core/dest.ts";
import { halfSipHashWords } from "../src/core/synproxy/halfsiphash.ts";
import { checksum } from "../src/dataplane/packet/codec/checksum.ts";
import {
  CLIENT,
  CLIENT_MAC,
  DIRECTOR_MAC,
  fixtureDirector,
  RS1,
  RS1_MAC,
  VIP,
} from "../src/dataplane/packet/fixtures.ts";
import { tcp4Frame } from "../src/dataplane/packet/frame-builder.ts";
import { FrameBatch, HEADROOM } from "../src/dataplane/packet/io.ts";

const BATCH = 64;
const ROUNDS = 1500;
const SADDR = 14 + 12;

function measure(
  fwd: FwdMethod,
  synproxy: boolean,
  o: { scheduler?: string; statelessSyn?: boolean } = {},
): { ns: number; entries: number; verdict: string } {
  const d = fixtureDirector(
    {
      services: [{ protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 80, fwd }] }],
      neighbours: { [RS1]: RS1_MAC, [CLIENT]: CLIENT_MAC },
    },
    { scheduler: o.scheduler ?? "rr" },
  );
  d.conns.setSysctl("synproxy", synproxy ? 1 : 0);
  d.conns.setSysctl("stateless_syn", o.statelessSyn === true ? 1 : 0);
  const syn = tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 40000, dport: 80, flags: 0x02, mss: 1460 });
  const batch = new FrameBatch(BATCH, 2048, BATCH, HEADROOM);
  let src = 0x0b000000;
  const fill = () => {
    for (let i = 0; i < BATCH; i++) {
      const o = batch.rxOffset(i);
      batch.buf.set(syn, o);
      batch.buf.writeUInt32BE(src++ >>> 0, o + SADDR);
      batch.buf.writeUInt16BE(0, o + 24);
      batch.buf.writeUInt16BE(checksum(batch.buf, o + 14, 20), o + 24);
      batch.meta[i * 4] = syn.length;
      batch.meta[i * 4 + 1] = 0;
      batch.meta[i * 4 + 2] = 0;
    }
    batch.rxCount = BATCH;
  };
  const run = (withPipeline: boolean) => {
    const t0 = process.cpuUsage();
    for (let r = 0; r < ROUNDS; r++) {
      fill();
      if (withPipeline) d.pipeline.process(batch, d.clock.now(), false);
    }
    const u = process.cpuUsage(t0);
    return ((u.user + u.system) * 1000) / (ROUNDS * BATCH);
  };
  run(true);
  const copy = Math.min(run(false), run(false));
  const total = Math.min(run(true), run(true));
  return { ns: total - copy, entries: d.conns.size, verdict: d.pipeline.verdicts[0] ?? "" };
}

function cookieAckCost(): number {
  // A SYN answered, then its ACK: the ACK checks the cookie, makes the entry and sends the SYN.
  const d = fixtureDirector({
    services: [{ protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 80, fwd: "masq" }] }],
    neighbours: { [RS1]: RS1_MAC, [CLIENT]: CLIENT_MAC },
  });
  d.conns.setSysctl("synproxy", 1);
  const n = 20_000;
  const acks: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const sport = 1024 + (i % 60000);
    const src = `10.${1 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`;
    d.io.inject(tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, src, VIP, { sport, dport: 80, flags: 0x02, seq: 1000 }));
    d.engine.drain();
    const sa = Buffer.from(d.io.drain()[0]!);
    const cookie = sa.readUInt32BE(14 + 20 + 4);
    acks.push(
      tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, src, VIP, { sport, dport: 80, flags: 0x10, seq: 1001, ack: cookie + 1 }),
    );
  }
  const batch = new FrameBatch(BATCH, 2048, BATCH, HEADROOM);
  let copyUs = 0;
  let allUs = 0;
  for (let k = 0; k + BATCH <= n; k += BATCH) {
    const fill = () => {
      for (let i = 0; i < BATCH; i++) {
        const f = acks[k + i]!;
        batch.buf.set(f, batch.rxOffset(i));
        batch.meta[i * 4] = f.length;
        batch.meta[i * 4 + 1] = 0;
        batch.meta[i * 4 + 2] = 0;
      }
      batch.rxCount = BATCH;
    };
    let t0 = process.cpuUsage();
    fill();
    let u = process.cpuUsage(t0);
    copyUs += u.user + u.system;
    t0 = process.cpuUsage();
    fill();
    d.pipeline.process(batch, d.clock.now(), false);
    u = process.cpuUsage(t0);
    allUs += u.user + u.system;
  }
  const made = Math.floor(n / BATCH) * BATCH;
  if (d.conns.size !== made) throw new Error(`expected ${made} entries, got ${d.conns.size}`);
  return ((allUs - copyUs) * 1000) / made;
}

function hashCost(): number {
  const w = new Int32Array([1, 2, 3, 4, 5, 6]);
  let x = 0;
  const n = 2_000_000;
  const t0 = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    w[0] = i;
    x ^= halfSipHashWords(0x1234, 0x5678, w, 6);
  }
  const u = process.cpuUsage(t0);
  if (x === 0.5) console.log(x);
  return ((u.user + u.system) * 1000) / n;
}

console.log(`A spoofed SYN (new source each), JS per frame, batches of ${BATCH} x ${ROUNDS} rounds`);
console.log(
  `${"case".padEnd(34)} ${"ns/SYN".padStart(8)} ${"entries left".padStart(13)} ${"vs NAT entry".padStart(13)}`,
);
const nat = measure("masq", false);
const rows: [string, ReturnType<typeof measure>][] = [
  ["NAT, entry per SYN (synproxy=0)", nat],
  ["DR, entry per SYN", measure("droute", false)],
  ["NAT, SYN cookie (synproxy=1)", measure("masq", true)],
  ["DR mh, entry per SYN", measure("droute", false, { scheduler: "mh" })],
  ["DR mh, no entry (stateless_syn=1)", measure("droute", false, { scheduler: "mh", statelessSyn: true })],
];
for (const [name, r] of rows)
  console.log(
    `${name.padEnd(34)} ${r.ns.toFixed(0).padStart(8)} ${String(r.entries).padStart(13)} ${(r.ns / nat.ns).toFixed(2).padStart(13)}  (${r.verdict})`,
  );
console.log(`${"valid cookie ACK → entry + SYN".padEnd(34)} ${cookieAckCost().toFixed(0).padStart(8)}  `);
console.log(`${"HalfSipHash-2-4 of 6 words".padEnd(34)} ${hashCost().toFixed(0).padStart(8)}`);
