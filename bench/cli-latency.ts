// CLI latency benchmark: wall time of one `tvsadm -L -n` and one `tvs status` against a running
// tvsd, side by side with a bare `node -e 0` (the floor any Node program pays) and, where it is
// installed and the kernel has ip_vs, ipvsadm -L -n. Scripts call tvsadm in loops, so the figure
// that matters is the whole process: start-up, module loading, one request, output, exit.
//
//   npm run build && node --import tsx bench/cli-latency.ts [rounds]
//
// Each command is measured twice: as an installed package runs it (the bin package.json names,
// with no src/ beside it: bin/tvsadm.cjs requires the single CommonJS file dist/bin/tvsadm.cjs, and
// bin/tvs.cjs the one of its status subcommand; a copy of package.json, bin/ and dist/ in a temporary
// directory) and as a source checkout runs it (the same bins here, which first check that dist/ is
// newer than every source file, else run the sources through tsx). The
// rounds are interleaved (every round runs every command once, in turn), so load from other
// processes on the machine falls on all of them alike; the table gives the median and 90th
// percentile of wall time and the median CPU time (user + system, from bash's `times`, which other
// processes disturb far less), each with its ratio to `node -e 0`. tvsd listens on a private socket in a temporary
// directory with three services on 127.0.0.1 at free ports; it is stopped by its PID at the end.

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { performance } from "node:perf_hooks";

const ROOT = resolve(import.meta.dirname, "..");
const ROUNDS = Math.min(500, Math.max(3, Number(process.argv[2] ?? 40)));
const dir = mkdtempSync(join(tmpdir(), "tvs-cli-bench-"));
const socket = join(dir, "control.sock");
const env = { ...process.env, TVS_SOCKET: socket };

if (!existsSync(join(ROOT, "dist", "bin", "tvsadm.js"))) {
  console.error("bench/cli-latency.ts measures the compiled CLI: run `npm run build` first");
  process.exit(2);
}

/** The files package.json names for the commands (bin/tvsadm.cjs, bin/tvs.cjs). */
const BINS = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> }).bin;
const TVSADM_BIN = BINS.tvsadm as string;
const TVS_BIN = BINS.tvs as string;

// The installed layout: what `npm pack` ships of the bins and the compiled code.
const installed = join(dir, "pkg");
for (const part of ["package.json", "bin", "dist"]) {
  cpSync(join(ROOT, part), join(installed, part), {
    recursive: true,
    filter: (src) => !src.endsWith(".ts"),
  });
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * CPU time (user + system, ms) the command used: bash's `times` reports its children's. Unlike
 * wall time this hardly moves when other processes compete for the cores.
 */
function cpu(cmd: string, args: string[]): number {
  const r = spawnSync("bash", ["-c", '"$@" >/dev/null 2>&1; times', "_", cmd, ...args], { env, encoding: "utf8" });
  const m = /\n(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(r.stdout);
  if (!m) throw new Error(`cannot read times from ${JSON.stringify(r.stdout)}`);
  return (Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4])) * 1000;
}

function run(cmd: string, args: string[]): { ms: number; status: number | null; out: string } {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  const ms = performance.now() - t0;
  return { ms, status: r.status, out: r.stdout + r.stderr };
}

async function startTvsd(): Promise<ChildProcess> {
  const p = spawn(process.execPath, [join(ROOT, "dist", "bin", "tvsd.js"), "--socket", socket], {
    env,
    stdio: ["ignore", "ignore", "inherit"],
  });
  const end = Date.now() + 15_000;
  while (Date.now() < end) {
    if (run(process.execPath, [join(ROOT, "dist", "bin", "tvsadm.js"), "-L", "-n"]).status === 0) return p;
    await new Promise((r) => setTimeout(r, 100));
  }
  p.kill("SIGKILL");
  throw new Error("tvsd did not answer on its socket within 15 s");
}

const tvsd = await startTvsd();
try {
  const tvsadm = join(ROOT, "dist", "bin", "tvsadm.js");
  for (const sched of ["rr", "wlc", "sh"]) {
    const port = await freePort();
    const vip = `127.0.0.1:${port}`;
    for (const args of [
      ["-A", "-t", vip, "-s", sched],
      ["-a", "-t", vip, "-r", `127.0.0.2:${port}`, "-m"],
      ["-a", "-t", vip, "-r", `127.0.0.3:${port}`, "-m", "-w", "2"],
    ]) {
      const r = run(process.execPath, [tvsadm, ...args]);
      if (r.status !== 0) throw new Error(`tvsadm ${args.join(" ")}: ${r.out}`);
    }
  }

  const node = process.execPath;
  const commands: { label: string; cmd: string; args: string[] }[] = [
    { label: "node -e 0", cmd: node, args: ["-e", "0"] },
    { label: "tvsadm -L -n (installed)", cmd: node, args: [join(installed, TVSADM_BIN), "-L", "-n"] },
    { label: "tvsadm -L -n (checkout)", cmd: node, args: [join(ROOT, TVSADM_BIN), "-L", "-n"] },
    { label: "tvs status (installed)", cmd: node, args: [join(installed, TVS_BIN), "status"] },
    { label: "tvs status (checkout)", cmd: node, args: [join(ROOT, TVS_BIN), "status"] },
  ];
  const ipvsadm = spawnSync("ipvsadm", ["-L", "-n"], { stdio: "ignore" });
  if (ipvsadm.status === 0) commands.push({ label: "ipvsadm -L -n (kernel)", cmd: "ipvsadm", args: ["-L", "-n"] });

  // One untimed pass first: page cache, V8's code cache where the runtime keeps one.
  for (const c of commands) {
    const r = run(c.cmd, c.args);
    if (r.status !== 0) throw new Error(`${c.label} failed (exit ${r.status}): ${r.out}`);
  }
  const times = commands.map(() => [] as number[]);
  const cpus = commands.map(() => [] as number[]);
  for (let round = 0; round < ROUNDS; round++) {
    commands.forEach((c, i) => {
      times[i]?.push(run(c.cmd, c.args).ms);
      cpus[i]?.push(cpu(c.cmd, c.args));
    });
  }

  const pct = (xs: number[], p: number): number => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(p * (s.length - 1) + 0.5))] ?? Number.NaN;
  };
  const floor = pct(times[0] ?? [], 0.5);
  const cpuFloor = pct(cpus[0] ?? [], 0.5);
  console.log(`node ${process.version}, ${ROUNDS} interleaved rounds, milliseconds per process`);
  console.log(
    `${"command".padEnd(36)} ${"wall med".padStart(9)} ${"p90".padStart(7)} ${"× node".padStart(7)} ${"cpu med".padStart(8)} ${"× node".padStart(7)}`,
  );
  commands.forEach((c, i) => {
    const xs = times[i] ?? [];
    const med = pct(xs, 0.5);
    const cmed = pct(cpus[i] ?? [], 0.5);
    console.log(
      `${c.label.padEnd(36)} ${med.toFixed(1).padStart(9)} ${pct(xs, 0.9).toFixed(1).padStart(7)} ${(med / floor).toFixed(2).padStart(7)} ${cmed.toFixed(0).padStart(8)} ${(cmed / cpuFloor).toFixed(2).padStart(7)}`,
    );
  });
  console.log("× node: median over the median of `node -e 0` (wall: elapsed; cpu: user + system)");
  if (ipvsadm.status !== 0) console.log("ipvsadm: not installed or no ip_vs in this kernel (not measured)");
} finally {
  tvsd.kill("SIGTERM");
  await new Promise((r) => tvsd.once("exit", r));
  rmSync(dir, { recursive: true, force: true });
}
