// Soak: tvsd (socket data plane) under a mix of everything at once for N minutes, reporting over
// time whether anything grows or stalls. It is the long-running companion of
// test/tvsd-hardening.test.ts: what those tests show once, this shows holding for minutes.
//
//   node --import tsx bench/soak.ts [minutes=3] [--nofile N=1024] [--every SECONDS=15]
//
// Load, all on 127.0.0.1, every loop bounded by the run's end and by a fixed rate:
//   TCP   short connections (connect, 1 KB echoed, close) from 8 loops, and 300 held idle
//         connections (more than the descriptor budget of a small --nofile allows, so some are
//         refused: that is the point), reopened as they are refused or closed
//   UDP   a flood of one datagram from a fresh source port each, 400/s, and 4 steady clients that
//         ask every 100 ms and check the answer
//   control  `tvsadm -L -n` (the real tvsadm main, in process) every 200 ms, timed; a service
//         added and deleted every 5 s (at the descriptor limit its listener is refused: counted
//         apart from control errors); the rules file rewritten and reloaded every 20 s
// Every interval prints: tvsd's open descriptors and RSS (from /proc), tvsadm -L -n latency
// (p50 / p99 / max), completed TCP connections and UDP answers, refusals and errors of each kind,
// and the plane's own counters from tvs status (descriptors used, UDP flows, evictions). The end
// prints the first and last samples side by side: descriptors and RSS should be flat, latency
// bounded, control errors zero. tvsd runs under `ulimit -n N`, is stopped by its PID, and the
// temporary directory is removed. There is no reference system to run beside it: the figures are
// tvsd's own over time.

import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { main as tvsadmMain } from "../src/cli/tvsadm/main.ts";
import { HttpControlClient } from "../src/control/api/client.ts";

const ROOT = resolve(import.meta.dirname, "..");
const argv = process.argv.slice(2);
function flag(name: string, def: number, min: number, max: number): number {
  const i = argv.indexOf(name);
  const v = i === -1 ? def : Number(argv[i + 1]);
  if (i !== -1) argv.splice(i, 2);
  return Math.min(max, Math.max(min, Number.isFinite(v) ? v : def));
}
const NOFILE = flag("--nofile", 1024, 256, 1 << 20);
const EVERY_S = flag("--every", 15, 2, 600);
const MINUTES = Math.min(120, Math.max(0.2, Number(argv[0] ?? 3)));
const END = performance.now() + MINUTES * 60_000;
const HELD = 300;

const dir = mkdtempSync(join(tmpdir(), "tvs-soak-"));
const socket = join(dir, "control.sock");
const rules = join(dir, "rules");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const running = () => performance.now() < END;

async function freePort(kind: "tcp" | "udp"): Promise<number> {
  if (kind === "udp") {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
    const p = s.address().port;
    await new Promise<void>((r) => s.close(() => r()));
    return p;
  }
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

// Real servers: TCP echo, UDP echo.
const tcpReal = net.createServer((s) => {
  s.on("error", () => {});
  s.pipe(s);
});
await new Promise<void>((r) => tcpReal.listen(0, "127.0.0.1", () => r()));
const tcpRealPort = (tcpReal.address() as net.AddressInfo).port;
const udpReal = dgram.createSocket("udp4");
udpReal.on("message", (m, r) => udpReal.send(m, r.port, r.address));
await new Promise<void>((r) => udpReal.bind(0, "127.0.0.1", () => r()));
const udpRealPort = udpReal.address().port;

const tport = await freePort("tcp");
const uport = await freePort("udp");
const extraPort = await freePort("tcp");
function writeRules(withExtra: boolean): void {
  const lines = [
    `-A -t 127.0.0.1:${tport} -s rr`,
    `-a -t 127.0.0.1:${tport} -r 127.0.0.1:${tcpRealPort} -m -w 1`,
    `-A -u 127.0.0.1:${uport} -s rr`,
    `-a -u 127.0.0.1:${uport} -r 127.0.0.1:${udpRealPort} -m -w 1`,
  ];
  if (withExtra) lines.push(`-A -t 127.0.0.1:${extraPort} -s wlc`);
  writeFileSync(rules, `${lines.join("\n")}\n`);
}
writeRules(false);

const tvsdArgv = [process.execPath, "--import", "tsx", join(ROOT, "bin/tvsd.ts"), "--socket", socket, "--rules", rules];
const tvsd: ChildProcess = spawn("sh", ["-c", `ulimit -n ${NOFILE} && exec "$@"`, "sh", ...tvsdArgv], {
  cwd: ROOT,
  stdio: ["ignore", "ignore", "pipe"],
  env: { ...process.env, TVS_LOG_LEVEL: "warn" },
});
let logTail = "";
const logLevels: Record<string, number> = {};
tvsd.stderr?.on("data", (c: Buffer) => {
  logTail = (logTail + c.toString()).slice(-4000);
  for (const m of c.toString().matchAll(/"level":"(\w+)"/g))
    logLevels[m[1] as string] = (logLevels[m[1] as string] ?? 0) + 1;
});
const client = new HttpControlClient({ socketPath: socket, timeoutMs: 5000 });
for (let i = 0; ; i++) {
  try {
    await client.snapshot();
    break;
  } catch {
    if (i > 400 || tvsd.exitCode !== null) {
      console.error(`tvsd did not start:\n${logTail}`);
      process.exit(1);
    }
    await sleep(50);
  }
}
const pid = tvsd.pid as number;

// Counters for the current interval.
const fresh = () => ({
  tcpOk: 0,
  tcpRefused: 0,
  tcpErr: 0,
  heldRefused: 0,
  udpAnswered: 0,
  udpLost: 0,
  flood: 0,
  listMs: [] as number[],
  ctlErr: 0,
  changes: 0,
  changeRefused: 0,
  reloads: 0,
  reloadErr: 0,
});
let cur = fresh();

async function tcpOnce(): Promise<void> {
  await new Promise<void>((resolveP) => {
    const s = net.connect({ host: "127.0.0.1", port: tport });
    const payload = Buffer.alloc(1024, 7);
    let got = 0;
    const timer = setTimeout(() => {
      cur.tcpErr++;
      s.destroy();
      resolveP();
    }, 5000);
    s.on("connect", () => s.write(payload));
    s.on("data", (c: Buffer) => {
      got += c.length;
      if (got >= payload.length) {
        clearTimeout(timer);
        cur.tcpOk++;
        s.end();
        resolveP();
      }
    });
    s.on("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === "ECONNRESET" || e.code === "ECONNREFUSED") cur.tcpRefused++;
      else cur.tcpErr++;
      resolveP();
    });
    s.on("close", () => {
      clearTimeout(timer);
      resolveP();
    });
  });
}

async function tcpLoop(): Promise<void> {
  while (running()) {
    await tcpOnce();
    await sleep(20);
  }
}

const held = new Set<net.Socket>();
async function heldLoop(): Promise<void> {
  while (running()) {
    while (held.size < HELD && running()) {
      const s = net.connect({ host: "127.0.0.1", port: tport });
      s.on("error", () => {});
      s.on("close", () => {
        held.delete(s);
        if (running()) cur.heldRefused++;
      });
      held.add(s);
      await sleep(5);
    }
    await sleep(500);
  }
}

async function floodLoop(): Promise<void> {
  // 400 datagrams/s, each from a fresh source port (20 every 50 ms).
  while (running()) {
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        const s = dgram.createSocket("udp4");
        s.on("error", () => {});
        await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
        await new Promise<void>((r) => s.send("flood", uport, "127.0.0.1", () => r()));
        s.close();
        cur.flood++;
      }),
    );
    await sleep(50);
  }
}

async function udpSteady(id: number): Promise<void> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  let waiting: ((m: string) => void) | undefined;
  s.on("message", (m) => waiting?.(m.toString()));
  for (let n = 0; running(); n++) {
    const want = `steady-${id}-${n}`;
    const ok = await new Promise<boolean>((r) => {
      const t = setTimeout(() => r(false), 1000);
      waiting = (m) => {
        if (m === want) {
          clearTimeout(t);
          r(true);
        }
      };
      s.send(want, uport, "127.0.0.1");
    });
    if (ok) cur.udpAnswered++;
    else cur.udpLost++;
    await sleep(100);
  }
  s.close();
}

async function tvsadm(args: string[]): Promise<number> {
  return tvsadmMain(["--socket", socket, ...args], {
    stdout: { write: () => true },
    stderr: { write: () => true },
  });
}

async function listLoop(): Promise<void> {
  while (running()) {
    const t0 = performance.now();
    const code = await tvsadm(["-L", "-n"]).catch(() => 99);
    if (code === 0) cur.listMs.push(performance.now() - t0);
    else cur.ctlErr++;
    await sleep(200);
  }
}

async function changeLoop(): Promise<void> {
  const port = await freePort("tcp");
  while (running()) {
    const a = await tvsadm(["-A", "-t", `127.0.0.1:${port}`, "-s", "rr"]).catch(() => 99);
    const d = await tvsadm(["-D", "-t", `127.0.0.1:${port}`]).catch(() => 99);
    // A refused -A (no descriptor left for its listener) is the plane's limit, not a control failure.
    if (a === 0 && d === 0) cur.changes++;
    else if (a !== 0 && a !== 99) cur.changeRefused++;
    else cur.ctlErr++;
    await sleep(5000);
  }
}

async function reloadLoop(): Promise<void> {
  let extra = false;
  while (running()) {
    await sleep(20_000);
    if (!running()) break;
    extra = !extra;
    writeRules(extra);
    try {
      await client.reload();
      cur.reloads++;
    } catch {
      cur.reloadErr++;
    }
  }
}

function fdCount(): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

function rssMb(): number {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : -1;
  } catch {
    return -1;
  }
}

function pct(xs: number[], p: number): number {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number;
}

interface Row {
  t: number;
  fds: number;
  rss: number;
  p50: number;
  p99: number;
  max: number;
  c: ReturnType<typeof fresh>;
  plane: string;
}
const rows: Row[] = [];
const f1 = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(1));
const header =
  "   t(s)  fds  rss(MB)  -L p50/p99/max ms   tcp ok/refused/err  held-refused  udp ok/lost  flood  ctl-err  changes ok/refused  reloads/err  plane";
console.log(
  `Soak: ${MINUTES} min, tvsd pid ${pid} under ulimit -n ${NOFILE}, report every ${EVERY_S} s (TCP :${tport}, UDP :${uport})`,
);
console.log(header);

async function sample(t: number): Promise<void> {
  const c = cur;
  cur = fresh();
  let plane = "";
  try {
    const st = await client.status();
    const fd = st.notes.find((n) => n.startsWith("File descriptors on the data plane"));
    const udp = st.notes.find((n) => n.startsWith("UDP flows"));
    plane = [fd?.replace("File descriptors on the data plane: ", "fd "), udp].filter(Boolean).join("; ");
  } catch (e) {
    c.ctlErr++;
    plane = `status failed: ${(e as Error).message}`;
  }
  const row: Row = {
    t,
    fds: fdCount(),
    rss: rssMb(),
    p50: pct(c.listMs, 50),
    p99: pct(c.listMs, 99),
    max: c.listMs.length ? Math.max(...c.listMs) : Number.NaN,
    c,
    plane,
  };
  rows.push(row);
  console.log(
    `${String(Math.round(t)).padStart(7)} ${String(row.fds).padStart(4)} ${f1(row.rss).padStart(8)}  ${`${f1(row.p50)}/${f1(row.p99)}/${f1(row.max)}`.padStart(17)}   ${`${c.tcpOk}/${c.tcpRefused}/${c.tcpErr}`.padStart(18)}  ${String(c.heldRefused).padStart(12)}  ${`${c.udpAnswered}/${c.udpLost}`.padStart(11)}  ${String(c.flood).padStart(5)}  ${String(c.ctlErr).padStart(7)}  ${`${c.changes}/${c.changeRefused}`.padStart(17)}  ${`${c.reloads}/${c.reloadErr}`.padStart(11)}  ${plane}`,
  );
}

const start = performance.now();
const loops = [
  ...Array.from({ length: 8 }, () => tcpLoop()),
  heldLoop(),
  floodLoop(),
  ...Array.from({ length: 4 }, (_, i) => udpSteady(i)),
  listLoop(),
  changeLoop(),
  reloadLoop(),
];
const sampler = (async () => {
  while (running()) {
    await sleep(Math.min(EVERY_S * 1000, Math.max(0, END - performance.now())));
    await sample((performance.now() - start) / 1000);
  }
})();
await Promise.all([...loops, sampler]);

for (const s of held) s.destroy();
const alive = tvsd.exitCode === null;
tvsd.kill("SIGTERM");
await new Promise((r) => tvsd.once("exit", r));
tcpReal.close();
udpReal.close();
rmSync(dir, { recursive: true, force: true });

const first = rows[0];
const last = rows[rows.length - 1];
if (first && last) {
  const all = rows.flatMap((r) => r.c.listMs);
  const sum = (k: keyof ReturnType<typeof fresh>) => rows.reduce((n, r) => n + (r.c[k] as number), 0);
  console.log("\nSummary            first sample   last sample   ratio last/first");
  console.log(
    `descriptors        ${String(first.fds).padStart(13)} ${String(last.fds).padStart(13)}   ${(last.fds / first.fds).toFixed(2)}`,
  );
  console.log(
    `RSS (MB)           ${f1(first.rss).padStart(13)} ${f1(last.rss).padStart(13)}   ${(last.rss / first.rss).toFixed(2)}`,
  );
  console.log(
    `tvsadm -L -n: ${all.length} runs, p50 ${f1(pct(all, 50))} ms, p99 ${f1(pct(all, 99))} ms, max ${f1(Math.max(...all))} ms; control errors ${sum("ctlErr")}`,
  );
  console.log(
    `TCP: ${sum("tcpOk")} ok, ${sum("tcpRefused")} refused, ${sum("tcpErr")} errors; held connections refused ${sum("heldRefused")}`,
  );
  console.log(
    `UDP: ${sum("udpAnswered")} steady answers, ${sum("udpLost")} lost; ${sum("flood")} flood datagrams; changes ${sum("changes")} (${sum("changeRefused")} refused at the descriptor limit), reloads ${sum("reloads")} (${sum("reloadErr")} refused)`,
  );
  console.log(`tvsd log lines by level: ${JSON.stringify(logLevels)}; tvsd alive at the end: ${alive}`);
}
