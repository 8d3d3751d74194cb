// Observability benchmark: what tvsd's HTTP endpoint costs with a large table. A real tvsd (socket
// data plane) loads 1,000 services × 10 real servers from an ipvsadm rules file (VIPs
// 127.2.x.y:18080 on loopback, real servers in 192.0.2.0/24 that nothing connects to), then:
//
// 1. One scrape of /metrics (Prometheus text; and OpenMetrics with gzip, as Prometheus asks for
//    it): median and p90 wall time over N scrapes and the bytes on the wire, side by side with GET /v1/snapshot of the same
//    table on the same port (the floor: reading and serialising the table without the exposition).
//    node_exporter's ipvs collector, the reference for these names, needs the kernel's ip_vs
//    (/proc/net/ip_vs), which this machine's kernel lacks, so it cannot be run here.
// 2. tvsd's CPU (utime + stime from /proc/PID/stat) over a window with no dashboard open, then with
//    five dashboards open (five SSE clients on /dashboard/stream and /events reading every frame,
//    as the page does; a browser's rendering costs the browser, not tvsd), for the large table and
//    for a small one (the demo's size: 1 service × 2 real servers).
//
//   node --import tsx bench/metrics.ts [--services 1000] [--dests 10] [--scrapes 20] [--seconds 10]
//
// Every loop is bounded (scrape count, window seconds); tvsd is stopped by PID at the end.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(name);
  return i === -1 ? def : Number(process.argv[i + 1]);
};
const SERVICES = arg("--services", 1000);
const DESTS = arg("--dests", 10);
const SCRAPES = arg("--scrapes", 20);
const SECONDS = arg("--seconds", 10);
const TICKS = 100; // USER_HZ on Linux

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

function rules(services: number, dests: number): string {
  const lines: string[] = [];
  for (let i = 0; i < services; i++) {
    const vip = `127.2.${(i >> 8) & 255}.${i & 255}:18080`;
    lines.push(`-A -t ${vip} -s wlc`);
    for (let j = 0; j < dests; j++)
      lines.push(`-a -t ${vip} -r 192.0.2.${j + 1}:${8000 + (i % 1000)} -m -w ${1 + (j % 3)}`);
  }
  return `${lines.join("\n")}\n`;
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14 and 15)
}

interface Tvsd {
  proc: ChildProcess;
  http: number;
  stop(): Promise<void>;
}

async function startTvsd(dir: string, ruleText: string): Promise<Tvsd> {
  const file = join(dir, `rules-${Date.now()}`);
  writeFileSync(file, ruleText);
  const http = await freePort();
  const proc = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "bin/tvsd.ts"),
      "--socket",
      join(dir, `s-${http}.sock`),
      "--rules",
      file,
      "--http",
      `127.0.0.1:${http}`,
    ],
    { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, TVS_LOG_LEVEL: "warn" } },
  );
  let err = "";
  proc.stderr?.on("data", (c: Buffer) => (err += c.toString()));
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`tvsd exited: ${err}`);
    try {
      const r = await fetch(`http://127.0.0.1:${http}/v1/snapshot`);
      const s = (await r.json()) as { services: unknown[] };
      if (s.services.length === SERVICES || s.services.length === (ruleText.match(/^-A/gm)?.length ?? 0)) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`tvsd did not load the table in time: ${err}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    proc,
    http,
    async stop() {
      if (proc.exitCode === null && proc.pid !== undefined) process.kill(proc.pid, "SIGTERM");
      await exited;
    },
  };
}

/** One GET, timed to the last byte; bytes as sent on the wire (compressed when gzip was asked for). */
function timeGet(url: string, accept?: string, gzip = false): Promise<{ ms: number; bytes: number }> {
  const t0 = performance.now();
  const headers: Record<string, string> = {};
  if (accept) headers.accept = accept;
  if (gzip) headers["accept-encoding"] = "gzip";
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers }, (res) => {
        let bytes = 0;
        res.on("data", (c: Buffer) => (bytes += c.length));
        res.on("end", () => resolve({ ms: performance.now() - t0, bytes }));
      })
      .on("error", reject);
  });
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
}

async function scrapeCost(t: Tvsd): Promise<void> {
  const prom =
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
  const rows: [string, string, string | undefined, boolean][] = [
    ["/metrics (Prometheus text)", "/metrics", undefined, false],
    ["/metrics (OpenMetrics, gzip)", "/metrics", prom, true],
    ["/v1/snapshot (JSON, floor)", "/v1/snapshot", undefined, false],
  ];
  const results: { name: string; p50: number; p90: number; bytes: number }[] = [];
  for (const [name, path, accept, gzip] of rows) {
    await timeGet(`http://127.0.0.1:${t.http}${path}`, accept, gzip); // warm-up
    const ms: number[] = [];
    let bytes = 0;
    for (let i = 0; i < SCRAPES; i++) {
      const r = await timeGet(`http://127.0.0.1:${t.http}${path}`, accept, gzip);
      ms.push(r.ms);
      bytes = r.bytes;
    }
    results.push({ name, p50: quantile(ms, 0.5), p90: quantile(ms, 0.9), bytes });
  }
  const floor = results[2] as (typeof results)[number];
  console.log(`\nOne scrape, ${SERVICES} services × ${DESTS} real servers (${SCRAPES} scrapes each)`);
  console.log(
    `${"endpoint".padEnd(30)} ${"p50 ms".padStart(9)} ${"p90 ms".padStart(9)} ${"bytes".padStart(11)} ${"× snapshot".padStart(11)}`,
  );
  for (const r of results)
    console.log(
      `${r.name.padEnd(30)} ${r.p50.toFixed(1).padStart(9)} ${r.p90.toFixed(1).padStart(9)} ${String(r.bytes).padStart(11)} ${(r.p50 / floor.p50).toFixed(2).padStart(11)}`,
    );
}

/** Five SSE readers on /dashboard/stream and /events; returns a stop function and the bytes read. */
function openDashboards(port: number, n: number): { stop(): void; bytes(): number; frames(): number } {
  const ctl = new AbortController();
  let bytes = 0;
  let frames = 0;
  for (let i = 0; i < n; i++) {
    for (const path of ["/dashboard/stream", "/events"]) {
      void (async () => {
        try {
          const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: ctl.signal });
          const reader = r.body?.getReader();
          if (!reader) return;
          const dec = new TextDecoder();
          for (;;) {
            const { value, done } = await reader.read();
            if (done) return;
            bytes += value.byteLength;
            frames += (dec.decode(value, { stream: true }).match(/event: state/g) ?? []).length;
          }
        } catch {
          // aborted at the end
        }
      })();
    }
  }
  return { stop: () => ctl.abort(), bytes: () => bytes, frames: () => frames };
}

async function cpuWindow(pid: number, seconds: number): Promise<number> {
  const t0 = cpuTicks(pid);
  const w0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const dt = (performance.now() - w0) / 1000;
  return ((cpuTicks(pid) - t0) / TICKS / dt) * 100;
}

async function dashboardCpu(t: Tvsd, label: string): Promise<void> {
  const pid = t.proc.pid as number;
  await new Promise((r) => setTimeout(r, 2000)); // settle after loading
  const idle = await cpuWindow(pid, SECONDS);
  const d = openDashboards(t.http, 5);
  await new Promise((r) => setTimeout(r, 1500));
  const b0 = d.bytes();
  const f0 = d.frames();
  const open = await cpuWindow(pid, SECONDS);
  const rate = (d.bytes() - b0) / SECONDS;
  const frames = (d.frames() - f0) / SECONDS;
  d.stop();
  console.log(
    `${label.padEnd(30)} ${idle.toFixed(1).padStart(9)} ${open.toFixed(1).padStart(9)} ${(open - idle).toFixed(1).padStart(9)} ${(rate / 1024).toFixed(0).padStart(12)} ${frames.toFixed(1).padStart(10)}`,
  );
}

const dir = mkdtempSync(join(tmpdir(), "tvs-bench-metrics-"));
const started: Tvsd[] = [];
try {
  console.log(`tvsd observability bench (node ${process.version}); CPU over ${SECONDS} s windows, 100% = one core`);
  const big = await startTvsd(dir, rules(SERVICES, DESTS));
  started.push(big);
  await scrapeCost(big);
  console.log(`\ntvsd CPU with five dashboards open (SSE frames every second)`);
  console.log(
    `${"table".padEnd(30)} ${"idle %".padStart(9)} ${"5 open %".padStart(9)} ${"added %".padStart(9)} ${"KiB/s sent".padStart(12)} ${"frames/s".padStart(10)}`,
  );
  await dashboardCpu(big, `${SERVICES} × ${DESTS}`);
  await big.stop();
  const small = await startTvsd(dir, rules(1, 2));
  started.push(small);
  await dashboardCpu(small, "1 × 2 (demo size)");
  await small.stop();
} finally {
  for (const t of started) await t.stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
}
