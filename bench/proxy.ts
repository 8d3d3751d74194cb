// Socket data plane benchmark: wrk against the same two nginx backends on loopback, reached
// directly, through tvsd (socket data plane, rr, masq), through haproxy (mode tcp, roundrobin) and
// through nginx stream (round robin), one after the other in the same run. Two figures per system:
// keep-alive HTTP requests/s, new connections/s (every request with "Connection: close"), and
// bulk: one download of BENCH_BULK_MB (default 1024 MB, a sparse file the backends send with
// sendfile) through one connection with curl, in Gbit/s. The table shows each figure and its ratio
// to haproxy's.
//
//   node --import tsx bench/proxy.ts                # 5 s per run
//   BENCH_SECONDS=10 BENCH_CONNS=64 node --import tsx bench/proxy.ts
//
// Needs wrk, nginx (+ libnginx-mod-stream) and haproxy (.ci/packages.txt). Traffic stays on
// 127.0.0.1; every process started here is ended by its PID; the temporary directory is removed.
// All systems share the machine's cores with wrk and the backends, so figures are comparable with
// each other, not with a dedicated director.

import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import net from "node:net";
import { cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const SECONDS = Math.min(60, Math.max(1, Number(process.env.BENCH_SECONDS ?? 5)));
const CONNS = Math.min(1000, Math.max(1, Number(process.env.BENCH_CONNS ?? 50)));
const THREADS = Math.min(cpus().length, 2);
const BULK_MB = Math.min(8192, Math.max(0, Number(process.env.BENCH_BULK_MB ?? 1024)));
const STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

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
  keepalive: number;
  close: number;
  bulk: number;
}

async function main(): Promise<void> {
  for (const c of ["wrk", "nginx", "haproxy", ...(BULK_MB ? ["curl"] : [])]) need(c);
  if (!existsSync(STREAM_MODULE))
    console.error(`nginx stream module missing (${STREAM_MODULE}): nginx stream is skipped`);
  const [b1, b2, vTvsd, vHap, vNgx] = [
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
    await freePort(),
  ];

  // The backends: one nginx, two servers answering a small body, and the bulk file (sparse: it
  // costs no disk, and the page cache serves its zero pages).
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
  server { listen ${b1} reuseport; location / { return 200 "backend one\\n"; } location = /bulk { alias ${bulkFile}; } }
  server { listen ${b2} reuseport; location / { return 200 "backend two\\n"; } location = /bulk { alias ${bulkFile}; } }
}
`,
  );
  const backends = start("nginx", ["-p", dir, "-c", backendConf, "-g", "daemon off;"]);
  await waitPort(b1);
  await waitPort(b2);

  const rows: Row[] = [];
  const measure = (name: string, port: number, host = "127.0.0.1") => {
    console.error(
      `- ${name}: keep-alive ${SECONDS}s, then Connection: close ${SECONDS}s${BULK_MB ? `, then ${BULK_MB} MB bulk` : ""}`,
    );
    rows.push({ name, keepalive: wrk(port, false, host), close: wrk(port, true, host), bulk: bulk(port, host) });
  };

  // Each system reaches the backends on its own loopback address, so the TIME_WAIT sockets one run
  // leaves towards the backends (tens of thousands in a Connection: close run) never crowd the
  // next run's ephemeral ports.
  bulk(b1, "127.0.0.2"); // once unmeasured: the first read of the sparse file fills the page cache
  measure("direct (one backend)", b1, "127.0.0.2");

  // tvsd on the socket data plane.
  for (const workers of [1, 2]) {
    const be = `127.0.0.${2 + workers}`;
    const rules = join(dir, `tvsd-${workers}.rules`);
    writeFileSync(
      rules,
      `-A -t 127.0.0.1:${vTvsd} -s rr\n-a -t 127.0.0.1:${vTvsd} -r ${be}:${b1} -m\n-a -t 127.0.0.1:${vTvsd} -r ${be}:${b2} -m\n`,
    );
    const tvsd = start(process.execPath, [
      "--import",
      "tsx",
      join(ROOT, "bin/tvsd.ts"),
      "--socket",
      join(dir, "tvsd.sock"),
      "--rules",
      rules,
      "--log-level",
      "warn",
      "--drain-timeout",
      "1000",
      "--workers",
      String(workers),
    ]);
    await waitPort(vTvsd);
    measure(`tvsd (${workers} worker${workers > 1 ? "s" : ""})`, vTvsd);
    await stop(tvsd);
  }

  // haproxy, mode tcp, one thread per core.
  const hapConf = join(dir, "haproxy.cfg");
  writeFileSync(
    hapConf,
    `global
  nbthread ${THREADS}
  maxconn 8000
defaults
  mode tcp
  timeout connect 5s
  timeout client 30s
  timeout server 30s
listen bench
  bind 127.0.0.1:${vHap}
  balance roundrobin
  server b1 127.0.0.5:${b1}
  server b2 127.0.0.5:${b2}
`,
  );
  const hap = start("haproxy", ["-f", hapConf, "-db"]);
  await waitPort(vHap);
  measure("haproxy (mode tcp)", vHap);
  await stop(hap);

  if (existsSync(STREAM_MODULE)) {
    const ngxConf = join(dir, "stream.conf");
    writeFileSync(
      ngxConf,
      `load_module ${STREAM_MODULE};
worker_processes ${THREADS};
pid ${dir}/stream.pid;
error_log ${dir}/stream.err warn;
events { worker_connections 8192; }
stream {
  upstream bench { server 127.0.0.6:${b1}; server 127.0.0.6:${b2}; }
  server { listen 127.0.0.1:${vNgx} reuseport; proxy_pass bench; }
}
`,
    );
    const ngx = start("nginx", ["-p", dir, "-c", ngxConf, "-g", "daemon off;"]);
    await waitPort(vNgx);
    measure("nginx stream", vNgx);
    await stop(ngx);
  }
  await stop(backends);

  const hap0 = rows.find((r) => r.name.startsWith("haproxy"));
  const ratio = (v: number, ref: number | undefined) => (ref ? `${(v / ref).toFixed(2)}x` : "-");
  const lines = [
    `wrk -t${THREADS} -c${CONNS} -d${SECONDS}s, ${cpus().length} cores, Node ${process.version}`,
    `${"system".padEnd(24)} ${"keep-alive req/s".padStart(17)} ${"vs haproxy".padStart(10)} ${"new conn/s".padStart(12)} ${"vs haproxy".padStart(10)} ${"bulk Gbit/s".padStart(12)} ${"vs haproxy".padStart(10)}`,
  ];
  for (const r of rows) {
    lines.push(
      `${r.name.padEnd(24)} ${r.keepalive.toFixed(0).padStart(17)} ${ratio(r.keepalive, hap0?.keepalive).padStart(10)} ${r.close.toFixed(0).padStart(12)} ${ratio(r.close, hap0?.close).padStart(10)} ${r.bulk.toFixed(2).padStart(12)} ${ratio(r.bulk, hap0?.bulk).padStart(10)}`,
    );
  }
  console.log(lines.join("\n"));
}

try {
  await main();
} finally {
  for (const c of children) await stop(c);
  rmSync(dir, { recursive: true, force: true });
}
