// Socket data plane benchmark: wrk against the same nginx backend (one worker process, two ports,
// a fixed body) on loopback, reached directly, through tvsd (socket data plane, rr, masq), through
// haproxy (mode tcp, roundrobin) and through nginx stream (round robin), one after the other in the
// same run. Each proxy runs with 1 and with 2 workers (tvsd --workers, haproxy nbthread, nginx
// worker_processes), and every ratio compares equal counts: tvsd with N workers against haproxy and
// nginx with N. Three figures per system: keep-alive HTTP requests/s, new connections/s (every
// request with "Connection: close"), and bulk: one download of BENCH_BULK_MB (default 1024 MB, a
// sparse file the backend sends with sendfile) through one connection with curl, in Gbit/s.
//
// Beside each figure: the CPU the proxy's processes (all their threads) spent per request, per
// connection and per GB (from /proc/PID/stat), which stays comparable when other work shares the
// machine, and the backend's share of one core during the run (near 100 % it would be the
// bottleneck and the ratios would mean little). The load average is printed before and after.
// tvsd runs from the compiled dist/ (built first when the sources are newer), as installed.
//
//   node --import tsx bench/proxy.ts                # 5 s per run
//   BENCH_SECONDS=3 BENCH_BULK_MB=512 node --import tsx bench/proxy.ts
//   BENCH_SYSTEMS=tvsd,haproxy BENCH_WORKERS=1 node --import tsx bench/proxy.ts   # a subset
//
// tvsd runs twice per worker count: with its default TCP relay (the native addon's pump) and as
// "tvsd handle" with --tcp-relay handle (the relay used where the addon is not built).
//
// Needs wrk, nginx (+ libnginx-mod-stream) and haproxy (.ci/packages.txt). Traffic stays on
// 127.0.0.1; every process started here is ended by its PID; the temporary directory is removed.
// All systems share the machine's cores with wrk and the backend, so figures are comparable with
// each other, not with a dedicated director.
import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import net from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const SECONDS = Math.min(60, Math.max(1, Number(process.env.BENCH_SECONDS ?? 5)));
const CONNS = Math.min(1000, Math.max(1, Number(process.env.BENCH_CONNS ?? 50)));
const THREADS = Math.min(cpus().length, 2);
const BULK_MB = Math.min(8192, Math.max(0, Number(process.env.BENCH_BULK_MB ?? 1024)));
const SYSTEMS = new Set((process.env.BENCH_SYSTEMS ?? "direct,tvsd,tvsd-handle,haproxy,nginx").split(","));
const WORKERS = (process.env.BENCH_WORKERS ?? "1,2")
  .split(",")
  .map(Number)
  .filter((n) => Number.isInteger(n) && n >= 1 && n <= 8);
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";
/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS = 100;

const dir = mkdtempSync(join(tmpdir(), "tvs-bench-"));
const children: ChildProcess[] = [];

function need(cmd: string): void {
  try {
    execFileSync("sh", ["-c", `command -v ${cmd}`], { stdio: "ignore" });
  } catch {
    console.error(`bench/proxy.ts needs "${cmd}" (apt-get install wrk nginx libnginx-mod-stream haproxy)`);
    process.exit(2);
  }
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function waitPort(port: number, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        r(true);
      });
      s.once("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`Nothing listens on 127.0.0.1:${port}`);
}

function start(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): ChildProcess {
  const p = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"], env });
  let err = "";
  p.stderr?.on("data", (c: Buffer) => {
    err += c.toString();
    if (err.length > 20_000) err = err.slice(-10_000);
  });
  p.on("exit", (code, sig) => {
    if (code && code !== 0) console.error(`${cmd} exited ${code ?? sig}: ${err.slice(-2000)}`);
  });
  children.push(p);
  return p;
}

async function stop(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise((r) => p.once("exit", r));
  p.kill("SIGTERM");
  const t = setTimeout(() => p.kill("SIGKILL"), 15_000);
  await gone;
  clearTimeout(t);
}

/** A process and its descendants (tvsd's workers, nginx's and haproxy's children). */
function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    const p = out[i] as number;
    try {
      for (const t of readdirSync(`/proc/${p}/task`)) {
        const kids = readFileSync(`/proc/${p}/task/${t}/children`, "utf8").trim();
        if (kids) for (const k of kids.split(/\s+/)) out.push(Number(k));
      }
    } catch {
      // gone
    }
  }
  return out;
}

/** CPU seconds (every thread) a set of processes has used so far: [user, system]. */
function cpuTimes(pids: readonly number[]): [number, number] {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      user += Number(f[11]); // utime (field 14)
      system += Number(f[12]); // stime (field 15)
    } catch {
      // gone
    }
  }
  return [user / TICKS, system / TICKS];
}

/** CPU seconds (user + system, every thread) a set of processes has used so far. */
function cpuSeconds(pids: readonly number[]): number {
  const [user, system] = cpuTimes(pids);
  return user + system;
}

/** One measured run: its figure, the proxy's CPU seconds and the backend's during it, the elapsed time. */
interface Run {
  value: number;
  cpu: number;
  /** The part of cpu spent in user space (the rest is the kernel's, in the proxy's system calls). */
  user: number;
  backendCpu: number;
  secs: number;
}

function measured(proxyPids: readonly number[], backendPids: readonly number[], fn: () => number): Run {
  const [u0, s0] = cpuTimes(proxyPids);
  const b0 = cpuSeconds(backendPids);
  const t0 = process.hrtime.bigint();
  const value = fn();
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  const [u1, s1] = cpuTimes(proxyPids);
  return { value, cpu: u1 + s1 - u0 - s0, user: u1 - u0, backendCpu: cpuSeconds(backendPids) - b0, secs };
}

function wrk(port: number, close: boolean, host: string): number {
  const args = [`-t${THREADS}`, `-c${CONNS}`, `-d${SECONDS}s`, "--timeout", "5s"];
  if (close) args.push("-H", "Connection: close");
  args.push(`http://${host}:${port}/`);
  const out = execFileSync("wrk", args, { encoding: "utf8", timeout: (SECONDS + 30) * 1000 });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const errors = /Socket errors:[^\n]*/.exec(out)?.[0];
  const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1];
  if (errors || non2xx)
    console.error(`  (port ${port}${close ? ", close" : ""}: ${errors ?? ""} ${non2xx ? `non-2xx ${non2xx}` : ""})`);
  return m ? Number(m[1]) : 0;
}

/** One download of the bulk file through `host:port` with curl: Gbit/s (0 when it failed or is off). */
function bulk(port: number, host: string): number {
  if (BULK_MB === 0) return 0;
  try {
    const out = execFileSync(
      "curl",
      [
        "-s",
        "-o",
        "/dev/null",
        "--max-time",
        "120",
        "-w",
        "%{size_download} %{time_total}",
        `http://${host}:${port}/bulk`,
      ],
      { encoding: "utf8", timeout: 130_000 },
    );
    const [size, secs] = out.trim().split(" ").map(Number);
    if (size !== BULK_MB * 1024 * 1024 || !secs) {
      console.error(`  (port ${port}: bulk download got ${size} bytes)`);
      return 0;
    }
    return (size * 8) / secs / 1e9;
  } catch (err) {
    console.error(`  (port ${port}: bulk download failed: ${(err as Error).message.split("\n")[0]})`);
    return 0;
  }
}

interface Row {
  name: string;
  /** "tvsd", "tvsd-handle", "haproxy", "nginx" or "direct". */
  kind: string;
  workers: number;
  load: number;
  keepalive: Run;
  close: Run;
  bulk: Run;
}

/** tvsd as installed: the compiled dist/, rebuilt first when a source is newer than the build. */
function tvsdEntry(): string {
  const stamp = join(ROOT, "dist", ".build-stamp");
  const newest = (d: string): number => {
    let t = statSync(d).mtimeMs;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      t = Math.max(t, e.isDirectory() ? newest(p) : e.name.includes(".test.") ? 0 : statSync(p).mtimeMs);
    }
    return t;
  };
  if (!existsSync(stamp) || Math.max(newest(join(ROOT, "src")), newest(join(ROOT, "bin"))) > statSync(stamp).mtimeMs) {
    console.error("- building dist/ (the sources are newer than the last build)");
    const r = spawnSync(process.execPath, [join(ROOT, "tools/build.mjs"), "--strict"], { stdio: "inherit" });
    if (r.status !== 0) throw new Error("npm run build failed");
  }
  return join(ROOT, "dist/bin/tvsd.js");
}

async function main(): Promise<void> {
  for (const c of ["wrk", "nginx", "haproxy", ...(BULK_MB ? ["curl"] : [])]) need(c);
  const hasStream = existsSync(STREAM_MODULE);
  if (!hasStream) console.error(`nginx stream module missing (${STREAM_MODULE}): nginx stream is skipped`);
  const tvsdJs = SYSTEMS.has("tvsd") || SYSTEMS.has("tvsd-handle") ? tvsdEntry() : "";
  const [b1, b2, vip] = [await freePort(), await freePort(), await freePort()];
  const load0 = loadavg();

  // The backend: one nginx worker, two servers answering a small fixed body, and the bulk file
  // (sparse: it costs no disk, and the page cache serves its zero pages).
  const bulkFile = join(dir, "bulk.bin");
  writeFileSync(bulkFile, "", { mode: 0o644 });
  truncateSync(bulkFile, BULK_MB * 1024 * 1024);
  chmodSync(dir, 0o755); // nginx's workers may run as another user (nobody, www-data)
  const backendConf = join(dir, "backends.conf");
  writeFileSync(
    backendConf,
    `worker_processes 1;
pid ${dir}/backends.pid;
error_log ${dir}/backends.err warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  sendfile on;
  tcp_nodelay on;
  server { listen ${b1} reuseport; location / { return 200 "backend one\\n"; } location = /bulk { alias ${bulkFile}; } }
  server { listen ${b2} reuseport; location / { return 200 "backend two\\n"; } location = /bulk { alias ${bulkFile}; } }
}
`,
  );
  const backends = start("nginx", ["-p", dir, "-c", backendConf, "-g", "daemon off;"]);
  await waitPort(b1);
  await waitPort(b2);
  const backendPids = () => processTree(backends.pid as number).slice(1); // the worker, not the idle master

  const rows: Row[] = [];
  const measure = (name: string, kind: string, workers: number, pids: number[], port: number, host = "127.0.0.1") => {
    console.error(
      `- ${name}: keep-alive ${SECONDS}s, then Connection: close ${SECONDS}s${BULK_MB ? `, then ${BULK_MB} MB bulk` : ""}`,
    );
    const be = backendPids();
    rows.push({
      name,
      kind,
      workers,
      load: loadavg()[0] as number,
      keepalive: measured(pids, be, () => wrk(port, false, host)),
      close: measured(pids, be, () => wrk(port, true, host)),
      bulk: measured(pids, be, () => bulk(port, host)),
    });
  };

  // Each system reaches the backend on its own loopback address (127.0.0.2, .3, ...), so the
  // TIME_WAIT sockets one run leaves towards the backend (tens of thousands in a Connection: close
  // run) never crowd the next run's ephemeral ports.
  let nextAddr = 2;
  const backendAddr = () => `127.0.0.${nextAddr++}`;
  bulk(b1, "127.0.0.2"); // once unmeasured: the first read of the sparse file fills the page cache
  if (SYSTEMS.has("direct")) measure("direct (backend)", "direct", 0, [], b1, backendAddr());

  for (const workers of WORKERS) {
    // tvsd with its default relay (the addon's pump), then with the libuv-handle relay it falls
    // back to without the addon (--tcp-relay handle), so the gain shows in one run.
    for (const [system, relay] of [
      ["tvsd", undefined],
      ["tvsd-handle", "handle"],
    ] as const) {
      if (!SYSTEMS.has(system)) continue;
      const be = backendAddr();
      const rules = join(dir, `${system}-${workers}.rules`);
      writeFileSync(
        rules,
        `-A -t 127.0.0.1:${vip} -s rr\n-a -t 127.0.0.1:${vip} -r ${be}:${b1} -m\n-a -t 127.0.0.1:${vip} -r ${be}:${b2} -m\n`,
      );
      const tvsd = start(process.execPath, [
        tvsdJs,
        "--socket",
        join(dir, "tvsd.sock"),
        "--rules",
        rules,
        "--log-level",
        "warn",
        "--http",
        "none",
        "--drain-timeout",
        "1000",
        "--workers",
        String(workers),
        ...(relay ? ["--tcp-relay", relay] : []),
      ]);
      await waitPort(vip);
      const name = relay ? `tvsd ${relay} (${workers})` : `tvsd (${workers})`;
      measure(name, system, workers, processTree(tvsd.pid as number), vip);
      await stop(tvsd);
    }

    if (SYSTEMS.has("haproxy")) {
      const be = backendAddr();
      const hapConf = join(dir, `haproxy-${workers}.cfg`);
      writeFileSync(
        hapConf,
        `global
  nbthread ${workers}
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen bench
  bind 127.0.0.1:${vip}
  balance roundrobin
  server b1 ${be}:${b1}
  server b2 ${be}:${b2}
`,
      );
      const hap = start("haproxy", ["-f", hapConf, "-db"]);
      await waitPort(vip);
      measure(`haproxy (${workers})`, "haproxy", workers, processTree(hap.pid as number), vip);
      await stop(hap);
    }

    if (SYSTEMS.has("nginx") && hasStream) {
      const be = backendAddr();
      const ngxConf = join(dir, `stream-${workers}.conf`);
      writeFileSync(
        ngxConf,
        `load_module ${STREAM_MODULE};
worker_processes ${workers};
pid ${dir}/stream.pid;
error_log ${dir}/stream.err warn;
events { worker_connections 8192; }
stream {
  upstream bench { server ${be}:${b1}; server ${be}:${b2}; }
  server { listen 127.0.0.1:${vip} reuseport; proxy_pass bench; }
}
`,
      );
      const ngx = start("nginx", ["-p", dir, "-c", ngxConf, "-g", "daemon off;"]);
      await waitPort(vip);
      measure(`nginx stream (${workers})`, "nginx", workers, processTree(ngx.pid as number), vip);
      await stop(ngx);
    }
  }
  await stop(backends);
  console.log(report(rows, load0));
}

/** The two tables: figures with ratios to haproxy and nginx at the same worker count, then CPU costs. */
function report(rows: Row[], load0: number[]): string {
  const ref = (kind: string, workers: number) => rows.find((r) => r.kind === kind && r.workers === workers);
  const ratio = (v: number, r: number | undefined) => (r ? `${(v / r).toFixed(2)}x` : "-");
  const pad = (s: string, n: number) => s.padStart(n);
  const lines = [
    `wrk -t${THREADS} -c${CONNS} -d${SECONDS}s, bulk ${BULK_MB} MB with curl; ${cpus().length} cores, Node ${process.version}; load average ${load0.map((l) => l.toFixed(2)).join(" ")} before, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} after`,
    "(N) = workers: tvsd --workers N, haproxy nbthread N, nginx worker_processes N; ratios compare equal N",
    "",
    `${"system".padEnd(20)} ${pad("keep-alive/s", 12)} ${pad("vs hap", 7)} ${pad("vs ngx", 7)} ${pad("new conn/s", 11)} ${pad("vs hap", 7)} ${pad("vs ngx", 7)} ${pad("bulk Gbit/s", 11)} ${pad("vs hap", 7)} ${pad("vs ngx", 7)} ${pad("load", 5)}`,
  ];
  for (const r of rows) {
    const h = ref("haproxy", r.workers);
    const n = ref("nginx", r.workers);
    const cells = (["keepalive", "close", "bulk"] as const).map((k) => {
      const v = r[k].value;
      const w = k === "keepalive" ? 12 : 11;
      return `${pad(k === "bulk" ? v.toFixed(2) : v.toFixed(0), w)} ${pad(r.kind === "direct" ? "-" : ratio(v, h?.[k].value), 7)} ${pad(r.kind === "direct" ? "-" : ratio(v, n?.[k].value), 7)}`;
    });
    lines.push(`${r.name.padEnd(20)} ${cells.join(" ")} ${pad(r.load.toFixed(2), 5)}`);
  }
  lines.push(
    "",
    "CPU the proxy used (every process and thread, user + system) per unit, and the backend's share of one core",
    `${"system".padEnd(20)} ${pad("µs/request", 11)} ${pad("vs hap", 7)} ${pad("µs/conn", 9)} ${pad("vs hap", 7)} ${pad("ms/GB", 8)} ${pad("vs hap", 7)} ${pad("backend core % (ka/close/bulk)", 31)}`,
  );
  const perUnit = (run: Run, units: number) => (units > 0 ? run.cpu / units : 0);
  for (const r of rows) {
    const h = ref("haproxy", r.workers);
    const ka = perUnit(r.keepalive, r.keepalive.value * r.keepalive.secs) * 1e6;
    const cl = perUnit(r.close, r.close.value * r.close.secs) * 1e6;
    const gb = perUnit(r.bulk, r.bulk.value > 0 ? BULK_MB / 1024 : 0) * 1e3;
    const hka = h ? perUnit(h.keepalive, h.keepalive.value * h.keepalive.secs) * 1e6 : 0;
    const hcl = h ? perUnit(h.close, h.close.value * h.close.secs) * 1e6 : 0;
    const hgb = h ? perUnit(h.bulk, h.bulk.value > 0 ? BULK_MB / 1024 : 0) * 1e3 : 0;
    const be = [r.keepalive, r.close, r.bulk]
      .map((x) => (x.secs > 0 ? ((100 * x.backendCpu) / x.secs).toFixed(0) : "-"))
      .join("/");
    const direct = r.kind === "direct";
    lines.push(
      `${r.name.padEnd(20)} ${pad(direct ? "-" : ka.toFixed(1), 11)} ${pad(direct ? "-" : ratio(ka, hka), 7)} ${pad(direct ? "-" : cl.toFixed(1), 9)} ${pad(direct ? "-" : ratio(cl, hcl), 7)} ${pad(direct ? "-" : gb.toFixed(0), 8)} ${pad(direct ? "-" : ratio(gb, hgb), 7)} ${pad(be, 31)}`,
    );
  }
  // Where the time goes: the proxy's own code (user) against the kernel's work in its system calls.
  lines.push(
    "",
    "The same CPU split into user space (the proxy's own code) and system (the kernel, inside its system calls)",
    `${"system".padEnd(20)} ${pad("µs/req user", 12)} ${pad("system", 7)} ${pad("µs/conn user", 13)} ${pad("system", 7)} ${pad("ms/GB user", 11)} ${pad("system", 7)}`,
  );
  const split = (run: Run, units: number, scale: number): [string, string] =>
    units > 0
      ? [((run.user / units) * scale).toFixed(1), (((run.cpu - run.user) / units) * scale).toFixed(1)]
      : ["-", "-"];
  for (const r of rows) {
    if (r.kind === "direct") continue;
    const [kau, kas] = split(r.keepalive, r.keepalive.value * r.keepalive.secs, 1e6);
    const [clu, cls] = split(r.close, r.close.value * r.close.secs, 1e6);
    const [gbu, gbs] = split(r.bulk, r.bulk.value > 0 ? BULK_MB / 1024 : 0, 1e3);
    lines.push(
      `${r.name.padEnd(20)} ${pad(kau, 12)} ${pad(kas, 7)} ${pad(clu, 13)} ${pad(cls, 7)} ${pad(gbu, 11)} ${pad(gbs, 7)}`,
    );
  }
  return lines.join("\n");
}

try {
  await main();
} finally {
  for (const c of children) await stop(c);
  rmSync(dir, { recursive: true, force: true });
}
