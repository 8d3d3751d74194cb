// Connection-table benchmark: fills a ConnTable with N live NAT entries (default 1,000,000) from
// N distinct client endpoints, then measures inserts/s (schedule), lookups/s from both directions
// (text and numeric IPv4 paths), TCP transitions/s, and expiry of the whole table, and the heap
// each live entry costs (process.memoryUsage().heapUsed after a full GC, before and after the
// fill; typed-array backing stores live outside the JS heap, so a second row adds
// process.memoryUsage().arrayBuffers). The same workload runs against a naive baseline in the same process — a Map keyed by a
// "proto|caddr|cport|vaddr|vport" string holding a plain object per entry — and the table prints
// the kernel's own figure (IPVS: 128 bytes per entry plus 8 per hash bucket) beside both.
//
//   node --expose-gc --import tsx bench/conntable.ts [N]
//
// Pure CPU and memory: no network, no files. Bounded by N (at most 4,000,000).

import { performance } from "node:perf_hooks";
import { Conn } from "../src/core/conn/conn.ts";
import { ConnTable } from "../src/core/conn/conn-table.ts";
import { TCP_ACK, TCP_SYN } from "../src/core/conn/tcp-states.ts";
import { destSpec } from "../src/core/dest.ts";
import { SchedulerRegistry } from "../src/core/sched/registry.ts";
import type { Flow, SchedService, Scheduler } from "../src/core/sched/types.ts";
import { serviceOptions } from "../src/core/service.ts";
import { ServiceTable } from "../src/core/service-table.ts";

const N = Math.min(4_000_000, Math.max(1000, Number(process.argv[2] ?? 1_000_000)));
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) {
  console.error("Run with node --expose-gc --import tsx bench/conntable.ts");
  process.exit(2);
}

/** Bytes after a full GC: the JS heap, and typed-array backing stores (outside the heap). */
function heap(): { heap: number; buffers: number } {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { heap: m.heapUsed, buffers: m.arrayBuffers };
}

/** Client i: 10.x.y.z (i / 50000 hosts) with port 1024 + i % 50000 — distinct endpoints. */
const HOSTS_PER = 50_000;
function clientAddr(i: number): string {
  const h = Math.floor(i / HOSTS_PER) + 1;
  return `10.${(h >> 16) & 255}.${(h >> 8) & 255}.${h & 255}`;
}
function clientPort(i: number): number {
  return 1024 + (i % HOSTS_PER);
}
function clientU32(i: number): number {
  const h = Math.floor(i / HOSTS_PER) + 1;
  return ((10 << 24) | h) >>> 0;
}

const rr: Scheduler = {
  name: "rr",
  create(svc: SchedService) {
    let i = 0;
    return {
      schedule() {
        const d = svc.dests[i];
        i = (i + 1) % svc.dests.length;
        return d;
      },
    };
  },
};

const VIP = "192.0.2.1";
const VIP_U32 = 0xc0000201;
const rows: Array<[string, string, string, string]> = [];
const fmt = (v: number) => Math.round(v).toLocaleString("en-US");
const rate = (n: number, ms: number) => fmt((n / ms) * 1000);

/**
 * CPU milliseconds the callback took (user + system of this process). The machines these runs
 * share are often busy, so CPU time rather than wall time is what the rates are computed from;
 * the wall time is kept for the footer.
 */
let wallMs = 0;
function time(fn: () => void): number {
  const w0 = performance.now();
  const c0 = process.cpuUsage();
  fn();
  const c = process.cpuUsage(c0);
  wallMs += performance.now() - w0;
  return (c.user + c.system) / 1000;
}

// ---- the ConnTable ------------------------------------------------------------------------------
function benchTable(): void {
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock: { now: () => 0 }, random: () => 0 });
  const key = { kind: "vip", protocol: "tcp", addr: VIP, port: 80 } as const;
  const svc = services.addService(key, serviceOptions(4, { scheduler: "rr" }));
  for (let d = 1; d <= 10; d++) services.addDest(key, destSpec(`198.51.100.${d}`, 8080, { fwd: "masq" }));
  const table = new ConnTable({ services, limit: Math.max(N, 1 << 20) });
  const conns: Conn[] = new Array(N);

  const before = heap();
  const tInsert = time(() => {
    for (let i = 0; i < N; i++) {
      const f: Flow = { family: 4, protocol: "tcp", saddr: clientAddr(i), sport: clientPort(i), daddr: VIP, dport: 80 };
      const c = table.schedule(svc, f, 0);
      if (!(c instanceof Conn)) throw new Error(`schedule failed at ${i}: ${c.error}`);
      conns[i] = c;
    }
  });
  // The benchmark's own array of handles is not the table's cost: measure with it dropped.
  const sample = conns[N >> 1] as Conn;
  conns.length = 0;
  const after = heap();
  if (table.size !== N) throw new Error(`size ${table.size}`);
  const perEntry = (after.heap - before.heap) / N;
  const perEntryAll = (after.heap + after.buffers - before.heap - before.buffers) / N;

  let found = 0;
  const tLookupIn = time(() => {
    for (let i = 0; i < N; i++) if (table.lookupIn("tcp", clientAddr(i), clientPort(i), VIP, 80)) found++;
  });
  const tLookupIn4 = time(() => {
    for (let i = 0; i < N; i++) if (table.lookupIn4("tcp", clientU32(i), clientPort(i), VIP_U32, 80)) found++;
  });
  const tLookupOut = time(() => {
    for (let i = 0; i < N; i++) {
      const d = `198.51.100.${10 - (i % 10)}`; // rr over the list, newest first
      if (table.lookupOut("tcp", d, 8080, clientAddr(i), clientPort(i))) found++;
    }
  });
  const tMiss = time(() => {
    for (let i = 0; i < N; i++) if (table.lookupIn4("tcp", clientU32(i), clientPort(i), VIP_U32, 81)) found++;
  });
  if (found !== 3 * N) throw new Error(`found ${found} of ${3 * N}`);
  const tTcp = time(() => {
    for (let i = 0; i < N; i++) {
      const c = table.lookupIn4("tcp", clientU32(i), clientPort(i), VIP_U32, 80) as Conn;
      table.tcpPacket(c, "in", i & 1 ? TCP_ACK : TCP_SYN, 1000);
    }
  });
  void sample;
  let expired = 0;
  const tExpire = time(() => {
    expired = table.expire(3_600_000).length;
  });
  if (expired !== N) throw new Error(`expired ${expired}`);

  rows.push(["inserts/s (schedule: rr, new entry, bind, count)", rate(N, tInsert), "", ""]);
  rows.push(["lookups/s client → VIP (text addresses)", rate(N, tLookupIn), "", ""]);
  rows.push(["lookups/s client → VIP (lookupIn4, u32)", rate(N, tLookupIn4), "", ""]);
  rows.push(["lookups/s real server → client (text)", rate(N, tLookupOut), "", ""]);
  rows.push(["misses/s (lookupIn4)", rate(N, tMiss), "", ""]);
  rows.push(["lookup + tcpPacket/s", rate(N, tTcp), "", ""]);
  rows.push([`expire(): all ${fmt(N)} entries removed, per s`, rate(N, tExpire), "", ""]);
  rows.push([`heapUsed per live entry (${fmt(N)} entries)`, `${perEntry.toFixed(1)} B`, "", ""]);
  rows.push([`heapUsed for ${fmt(N)} entries`, `${((after.heap - before.heap) / 1e6).toFixed(1)} MB`, "", ""]);
  rows.push(["heap + typed arrays per live entry", `${perEntryAll.toFixed(1)} B`, "", ""]);
  rows.push([`heap + typed arrays for ${fmt(N)} entries`, `${((perEntryAll * N) / 1e6).toFixed(1)} MB`, "", ""]);
}

// ---- the naive baseline -------------------------------------------------------------------------
interface NaiveConn {
  protocol: string;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  state: number;
  expiresAt: number;
}

function benchNaive(): void {
  const byIn = new Map<string, NaiveConn>();
  const byOut = new Map<string, NaiveConn>();
  const before = heap();
  const tInsert = time(() => {
    for (let i = 0; i < N; i++) {
      const caddr = clientAddr(i);
      const cport = clientPort(i);
      const daddr = `198.51.100.${1 + (i % 10)}`;
      const c: NaiveConn = {
        protocol: "tcp",
        caddr,
        cport,
        vaddr: VIP,
        vport: 80,
        daddr,
        dport: 8080,
        state: 0,
        expiresAt: 3000,
      };
      byIn.set(`tcp|${caddr}|${cport}|${VIP}|80`, c);
      byOut.set(`tcp|${daddr}|8080|${caddr}|${cport}`, c);
    }
  });
  const after = heap();
  let found = 0;
  const tLookup = time(() => {
    for (let i = 0; i < N; i++) if (byIn.get(`tcp|${clientAddr(i)}|${clientPort(i)}|${VIP}|80`)) found++;
  });
  const tOut = time(() => {
    for (let i = 0; i < N; i++)
      if (byOut.get(`tcp|198.51.100.${1 + (i % 10)}|8080|${clientAddr(i)}|${clientPort(i)}`)) found++;
  });
  if (found !== 2 * N) throw new Error("naive lookups failed");
  const perEntry = (after.heap - before.heap) / N;
  const perEntryAll = (after.heap + after.buffers - before.heap - before.buffers) / N;
  const set = (i: number, v: string) => {
    const r = rows[i];
    if (r) r[2] = v;
  };
  set(0, `${rate(N, tInsert)} (2 Map.set)`);
  set(1, rate(N, tLookup));
  set(3, rate(N, tOut));
  set(7, `${perEntry.toFixed(1)} B`);
  set(8, `${((after.heap - before.heap) / 1e6).toFixed(1)} MB`);
  set(9, `${perEntryAll.toFixed(1)} B`);
  set(10, `${((perEntryAll * N) / 1e6).toFixed(1)} MB`);
  byIn.clear();
  byOut.clear();
}

benchTable();
benchNaive();
// The kernel's figures (reference page: 128 bytes per entry + 8 per hash bucket).
const kernelBytes = 128 + 8 * ((1 << 12) / N);
for (const i of [7, 9]) {
  const r = rows[i];
  if (r) r[3] = `${kernelBytes.toFixed(1)} B (IPVS)`;
}
for (const i of [8, 10]) {
  const r = rows[i];
  if (r) r[3] = `${((128 * N + 8 * 4096) / 1e6).toFixed(1)} MB (IPVS)`;
}

const head: [string, string, string, string] = ["measure", "tvs ConnTable", "naive Map<string,obj>", "kernel"];
const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
const line = (r: string[]) =>
  r.map((c, i) => (i === 0 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join("  ");
console.log(`Connection table, ${fmt(N)} live entries (Node ${process.version}, one thread)\n`);
console.log(line(head));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));
console.log(`\nRates per CPU-second of this process (wall time of the timed parts: ${(wallMs / 1000).toFixed(1)} s).`);
