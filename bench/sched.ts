// Scheduler benchmark: nanoseconds per scheduling decision for every scheduler at 10, 100, 1,000
// and 10,000 destinations. Each service gets destinations with weights 1..100 and held-open
// active/inactive counts (seeded, so every run sees the same load), and decisions are made for a
// rotating set of 4,096 flows (distinct client and destination addresses and ports). Counts are
// not changed by the decisions, so the least-connection family measures its walk, not a moving
// target.
//
// lc, wlc, sed and nq answer from an exact index (src/core/sched/least-index.ts). A second table
// runs them under churn (every decision binds, establishes and later closes a connection, so the
// index is updated as on a live director) side by side with the kernel's plain O(n) walk doing
// the same, and a walk doing the 64-bit cross-multiplication with BigInt everywhere. mh at 10,000 is marked: the kernel refuses more
// destinations than its 4,093 slots (the service keeps no table).
//
//   node --import tsx bench/sched.ts [millisecondsPerCell]
//
// Pure CPU: no network, no files. Each cell runs for about the given time (default 150 ms, at most
// 2,000) and at most 5,000,000 decisions.

import { performance } from "node:perf_hooks";
import { Dest, destSpec } from "../src/core/dest.ts";
import { ALL_SCHEDULERS } from "../src/core/sched/all.ts";
import { seededRandom } from "../src/core/sched/harness.ts";
import { lcWalk } from "../src/core/sched/lc.ts";
import { MH_TAB_SIZE } from "../src/core/sched/mh.ts";
import { nqWalk } from "../src/core/sched/nq.ts";
import { connOverhead } from "../src/core/sched/overhead.ts";
import { sedWalk } from "../src/core/sched/sed.ts";
import type { Flow, SchedEnv, SchedService } from "../src/core/sched/types.ts";
import { wlcWalk } from "../src/core/sched/wlc.ts";

const CELL_MS = Math.min(2000, Math.max(20, Number(process.argv[2] ?? 150)));
const MAX_DECISIONS = 5_000_000;
const SIZES = [10, 100, 1000, 10000];

function makeService(n: number, scheduler: string): SchedService & { dests: Dest[] } {
  const rand = seededRandom(n * 7919 + 1);
  const dests: Dest[] = [];
  for (let i = 0; i < n; i++) {
    const d = new Dest(
      destSpec(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, 80, { weight: 1 + (rand() % 100) }),
    );
    d.activeConns = rand() % 50;
    d.inactConns = rand() % 500;
    dests.unshift(d); // the kernel's order: the newest at the head
  }
  return {
    family: 4,
    dests,
    schedFlags: new Set(scheduler === "sh" ? ["sh-fallback"] : scheduler === "mh" ? ["mh-fallback"] : []),
    reportNoDestination: () => {},
  };
}

function makeFlows(): Flow[] {
  const rand = seededRandom(42);
  const flows: Flow[] = [];
  for (let i = 0; i < 4096; i++) {
    const c = rand();
    flows.push({
      family: 4,
      protocol: "tcp",
      saddr: `${100 + ((c >>> 24) % 100)}.${(c >>> 16) & 255}.${(c >>> 8) & 255}.${c & 255}`,
      sport: 1024 + (rand() % 60000),
      daddr: `203.0.${(i >> 8) & 3}.${i & 255}`,
      dport: 80,
    });
  }
  return flows;
}

/** Runs `decide` over the flows for about CELL_MS; returns ns per decision. */
function measure(decide: (f: Flow) => unknown, flows: Flow[]): number {
  // Warm-up, then a calibrated run.
  let sink = 0;
  for (let i = 0; i < 2000; i++) if (decide(flows[i & 4095] as Flow) !== undefined) sink++;
  let batch = 1000;
  let done = 0;
  let elapsed = 0;
  const start = performance.now();
  while (elapsed < CELL_MS && done < MAX_DECISIONS) {
    for (let i = 0; i < batch; i++) if (decide(flows[(done + i) & 4095] as Flow) !== undefined) sink++;
    done += batch;
    elapsed = performance.now() - start;
    if (elapsed < CELL_MS / 10) batch *= 2;
  }
  if (sink < 0) console.log(sink);
  return (elapsed * 1e6) / done;
}

/** The least-connection walk with BigInt products throughout (reference for the fast path). */
function bigintWlc(svc: SchedService): Dest | undefined {
  let least: Dest | undefined;
  let loh = 0n;
  for (const d of svc.dests) {
    if (d.overloaded || d.weight <= 0) continue;
    const doh = BigInt(connOverhead(d));
    if (least === undefined || loh * BigInt(d.weight) > doh * BigInt(least.weight)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

function fmt(ns: number): string {
  return ns >= 10000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(0)} ns`;
}

const flows = makeFlows();
let clockNow = 0;
const env: SchedEnv = { clock: { now: () => clockNow }, random: seededRandom(5) };
const rows: string[][] = [];
for (const s of ALL_SCHEDULERS) {
  const row = [s.name];
  for (const n of SIZES) {
    const svc = makeService(n, s.name);
    const inst = s.create(svc, env);
    if (s.name === "mh" && n > MH_TAB_SIZE) {
      row.push("n/a (> 4093)");
      continue;
    }
    clockNow += 1000;
    row.push(fmt(measure((f) => inst.schedule(f), flows)));
  }
  rows.push(row);
}
// Second table: the least-connection family under churn. Every decision binds a connection to
// the chosen destination, establishes it, and closes the one opened 1,000 decisions earlier, so
// the counts keep moving: the index pays for its updates here. Beside it, the kernel's plain walk
// (the same destinations, no index attached) doing the same work.
const walks: Record<string, (ds: readonly Dest[]) => Dest | undefined> = {
  lc: lcWalk,
  wlc: wlcWalk,
  sed: sedWalk,
  nq: nqWalk,
};
function churn(decide: () => Dest | undefined): (f: Flow) => unknown {
  const ring: (Dest | undefined)[] = new Array(1000).fill(undefined);
  let k = 0;
  return () => {
    const d = decide();
    if (d !== undefined) {
      d.bind("inactive");
      d.becameActive();
    }
    const old = ring[k];
    if (old !== undefined) {
      old.becameInactive();
      old.unbind("inactive");
    }
    ring[k] = d;
    k = (k + 1) % 1000;
    return d;
  };
}
const refRows: string[][] = [];
for (const name of ["lc", "wlc", "sed", "nq"]) {
  const s = ALL_SCHEDULERS.find((x) => x.name === name)!;
  const rowIndex = [`${name}: index, with churn`];
  const rowWalk = [`${name}: kernel walk, with churn`];
  for (const n of SIZES) {
    const svc = makeService(n, name);
    const inst = s.create(svc, env);
    rowIndex.push(
      fmt(
        measure(
          churn(() => inst.schedule(flows[0] as Flow)),
          flows,
        ),
      ),
    );
    inst.dispose?.();
    const plain = makeService(n, name);
    const walk = walks[name]!;
    rowWalk.push(
      fmt(
        measure(
          churn(() => walk(plain.dests)),
          flows,
        ),
      ),
    );
  }
  refRows.push(rowIndex, rowWalk);
}
{
  const row = ["wlc: BigInt walk, no churn"];
  for (const n of SIZES) {
    const svc = makeService(n, "wlc");
    row.push(fmt(measure(() => bigintWlc(svc), flows)));
  }
  refRows.push(row);
}

const header = ["scheduler", ...SIZES.map((n) => `${n.toLocaleString("en")} dests`)];
const all = [header, ...rows, ...refRows];
const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? "").length)));
const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(`Scheduling decision time (node ${process.version}, ${CELL_MS} ms per cell)`);
console.log(line(header));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of rows) console.log(line(r));
console.log(widths.map((w) => "-".repeat(w)).join("  "));
for (const r of refRows) console.log(line(r));
console.log("\nTarget: lc/wlc/sed/nq under 1 µs per decision at 1,000 destinations (first table).");
