// Health-check benchmark: N real servers (default 10,000) as loopback TCP listeners, all watched
// by one HealthRunner with TCP_CHECK and delay_loop 1 s, so N checks a second. It runs, side by
// side in one process and one run, three ways of checking:
//
//   before   the runner and TCP checker of an earlier commit (--before REF, default the commit
//            before the single-timer runner landed), extracted with `git archive` into a temp dir:
//            a setTimeout per check and per time limit, a promise per attempt, a libuv TCP handle
//   libuv    today's runner on its own connect path (tcp.ts: a libuv TCP handle per connect)
//   native   today's runner with the native addon's batch prober (src/platform/tcp-prober.ts),
//            what tvsd uses when the addon is built
//
// For each it prints the CPU the checking process uses over the window (process.cpuUsage) as a
// share of one core, the checks done, and the CPU per check scaled to N checks a second, which is
// the figure to compare (a run that falls behind on a busy machine does fewer checks and so looks
// cheaper in raw CPU). The ways alternate for --rounds rounds so machine load drifts over all of
// them alike. Then, for each way, K listeners are closed and the time until each server's down
// transition is measured against keepalived's bound (delay_loop + jitter + delay_before_retry +
// slack); the listeners are reopened before the next way. Also printed: each runner alone, with a
// checker that answers at once (scheduling and bookkeeping only).
//
//   node --import tsx bench/health.ts [N] [--seconds S] [--rounds R] [--kill K] [--before REF]
//
// The listeners run in a child process (their CPU is the real servers', not the checker's), one
// per real server, bound to 127.1.x.y:8080 — N distinct loopback addresses, so each real server
// is its own address:port and no ephemeral-port or TIME_WAIT pile-up hits one destination. They
// need one fd each: the child is started through `sh -c 'ulimit -n 65536; exec node ...'` (raising
// the soft limit up to the hard one works unprivileged). Everything is bounded: each window is S
// seconds (default 10), each kill phase at most bound + 5 s.
//
// Loopback caveat: a loopback connect runs the whole handshake, the real server's half included,
// inside the checker's connect() and close() system calls, so the system time printed here also
// pays for work a remote real server's kernel would do. Reference: keepalived's checker needs
// ip_vs, which this kernel lacks, so it cannot run beside these; the "before" column is tvs's own
// previous code and the detection bound is what keepalived's rules give.

import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import type net from "node:net";
import { createServer } from "node:net";
import os from "node:os";
import { join, resolve } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";
import type { Checker, CheckResult } from "../src/health/checker.ts";
import { checkerCommon, type TcpCheckSpec } from "../src/health/checker-spec.ts";
import { type ConnectProber, type HealthEvent, HealthRunner } from "../src/health/runner.ts";
import { nativeStatus } from "../src/platform/native-addon.ts";
import { TcpProber } from "../src/platform/tcp-prober.ts";

const PORT = 8080;
/** The commit before the single-timer runner: the "before" column unless --before says otherwise. */
const DEFAULT_BEFORE = "26c7152";
const addrOf = (i: number) => `127.1.${(i >> 8) & 255}.${i & 255}`;

// ---- child: the real servers -------------------------------------------------------------------
async function runListeners(n: number): Promise<void> {
  const servers: (net.Server | undefined)[] = [];
  const listen = (i: number) =>
    new Promise<void>((resolve) => {
      const s = createServer((c) => {
        c.on("error", () => {});
        c.destroy();
      });
      s.on("error", (e) => process.stdout.write(`error ${i} ${e.message}\n`));
      s.listen({ host: addrOf(i), port: PORT, backlog: 511 }, () => resolve());
      servers[i] = s;
    });
  for (let i = 0; i < n; i++) await listen(i);
  process.stdout.write("ready\n");
  const rl = createInterface({ input: process.stdin });
  rl.on("line", async (line) => {
    const [cmd, ...rest] = line.trim().split(" ");
    if (cmd === "kill") {
      for (const x of rest) {
        servers[Number(x)]?.close();
        servers[Number(x)] = undefined;
      }
      process.stdout.write("killed\n");
    } else if (cmd === "revive") {
      for (const x of rest) if (!servers[Number(x)]) await listen(Number(x));
      process.stdout.write("revived\n");
    }
  });
  rl.on("close", () => process.exit(0));
}

// ---- parent: the checkers ----------------------------------------------------------------------

/** What the bench needs of a runner (today's and the old one have it). */
interface RunnerLike {
  add(t: { id: string; address: string; port: number; spec: TcpCheckSpec }): void;
  stop(): void;
  state(id: string): "up" | "down" | undefined;
  status(): { checks: number; lastResult?: CheckResult }[];
}
interface RunnerOptionsLike {
  onEvent: (e: HealthEvent) => void;
  createChecker?: (spec: TcpCheckSpec) => unknown;
  createProber?: () => ConnectProber | undefined;
}
type RunnerCtor = new (o: RunnerOptionsLike) => RunnerLike;

interface Way {
  name: string;
  make: (onEvent: (e: HealthEvent) => void) => RunnerLike;
  /** The runner with a checker that answers at once. */
  alone: (onEvent: (e: HealthEvent) => void) => RunnerLike;
}

function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

function spec0(): TcpCheckSpec {
  return { ...checkerCommon("TCP_CHECK", { delayLoopMs: 1000, connectTimeoutMs: 1000 }), type: "TCP_CHECK" };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const sumChecks = (r: RunnerLike) => r.status().reduce((a, s) => a + s.checks, 0);

/** The old runner from git, or why it cannot be had. */
async function loadBefore(ref: string): Promise<{ ctor: RunnerCtor; dir: string; commit: string } | string> {
  const root = resolve(import.meta.dirname, "..");
  let commit: string;
  try {
    commit = execFileSync("git", ["-C", root, "rev-parse", "--short", `${ref}^{commit}`], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    }).trim();
  } catch {
    return `git cannot resolve "${ref}" here`;
  }
  const dir = mkdtempSync(join(os.tmpdir(), "tvs-health-bench-"));
  execFileSync("sh", ["-c", `git -C "$0" archive "$1" src | tar -x -C "$2"`, root, commit, dir]);
  const mod = (await import(pathToFileURL(join(dir, "src", "health", "runner.ts")).href)) as {
    HealthRunner: RunnerCtor;
  };
  return { ctor: mod.HealthRunner, dir, commit };
}

/** The cost of the runner alone: a checker (or prober) that answers at once. */
function instantChecker(): () => Checker {
  const instant: CheckResult = { ok: true, reason: "instant", latencyMs: 0 };
  return () => ({ type: "TCP_CHECK", check: () => Promise.resolve(instant) });
}
function instantProber(): ConnectProber {
  return {
    start: (_t, done) => {
      queueMicrotask(() => done(0));
      return 0;
    },
    cancel: () => {},
  };
}

interface Window {
  cpuUs: number;
  userUs: number;
  wallMs: number;
  checks: number;
  loopP99: number;
  latencies: number[];
}

async function measure(way: Way, n: number, seconds: number, alone: boolean): Promise<Window> {
  const runner = alone ? way.alone(() => {}) : way.make(() => {});
  for (let i = 0; i < n; i++) runner.add({ id: String(i), address: addrOf(i), port: PORT, spec: spec0() });
  // The first checks are spread over [0, warmup = delay_loop]; measure after that.
  await sleep(1500);
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  const k0 = sumChecks(runner);
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  await sleep(seconds * 1000);
  const c = process.cpuUsage(c0);
  const wallMs = performance.now() - w0;
  const checks = sumChecks(runner) - k0;
  loop.disable();
  const latencies: number[] = [];
  for (const s of runner.status()) if (s.lastResult) latencies.push(s.lastResult.latencyMs);
  runner.stop();
  await sleep(300);
  return {
    cpuUs: c.user + c.system,
    userUs: c.user,
    wallMs,
    checks,
    loopP99: loop.percentile(99) / 1e6,
    latencies: latencies.sort((a, b) => a - b),
  };
}

interface Detection {
  expected: number;
  seen: number;
  within: number;
  p50: number;
  max: number;
  spurious: number;
}

async function detection(
  way: Way,
  n: number,
  victims: number[],
  bound: number,
  send: (cmd: string, ack: string) => Promise<void>,
): Promise<Detection> {
  const downAt = new Map<string, number>();
  const downs: string[] = [];
  const runner = way.make((e) => {
    if (e.type !== "down") return;
    downs.push(e.id);
    if (!downAt.has(e.id)) downAt.set(e.id, performance.now());
  });
  for (let i = 0; i < n; i++) runner.add({ id: String(i), address: addrOf(i), port: PORT, spec: spec0() });
  await sleep(2500);
  const expectDown = victims.filter((v) => runner.state(String(v)) === "up");
  for (const v of victims) downAt.delete(String(v));
  await send(`kill ${victims.join(" ")}`, "killed");
  const killAck = performance.now();
  const deadline = killAck + bound + 5000;
  while (expectDown.some((v) => !downAt.has(String(v))) && performance.now() < deadline) await sleep(20);
  const times = expectDown
    .map((v) => (downAt.get(String(v)) ?? Number.NaN) - killAck)
    .filter((x) => !Number.isNaN(x))
    .sort((a, b) => a - b);
  const victimSet = new Set(victims.map(String));
  const spurious = downs.filter((id) => !victimSet.has(id)).length;
  runner.stop();
  await send(`revive ${victims.join(" ")}`, "revived");
  return {
    expected: expectDown.length,
    seen: times.length,
    within: times.filter((d) => d <= bound).length,
    p50: pct(times, 50),
    max: pct(times, 100),
    spurious,
  };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === "--listeners") {
    await runListeners(Number(args[1]));
    return;
  }
  const flag = (name: string, dflt: number) => {
    const i = args.indexOf(name);
    return i === -1 ? dflt : Number(args[i + 1]);
  };
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i]?.startsWith("--")) i++;
    else positional.push(args[i] as string);
  }
  const n = Number(positional[0] ?? 10000);
  const seconds = flag("--seconds", 10);
  const rounds = flag("--rounds", 2);
  const killCount = Math.min(n, flag("--kill", 100));
  const beforeRef = args.includes("--before") ? (args[args.indexOf("--before") + 1] as string) : DEFAULT_BEFORE;
  if (!(n >= 1 && n <= 65536)) throw new RangeError(`Invalid number of real servers "${n}" (1..65536)`);
  if (!(seconds > 0 && seconds <= 120)) throw new RangeError(`Invalid --seconds "${seconds}" (0..120)`);
  if (!(rounds >= 1 && rounds <= 10)) throw new RangeError(`Invalid --rounds "${rounds}" (1..10)`);

  // The ways to compare.
  const ways: Way[] = [];
  const before = await loadBefore(beforeRef);
  if (typeof before === "string") console.log(`(no "before" column: ${before})`);
  else {
    const Old = before.ctor;
    ways.push({
      name: `before (${before.commit})`,
      make: (onEvent) => new Old({ onEvent }),
      alone: (onEvent) => new Old({ onEvent, createChecker: instantChecker() }),
    });
  }
  ways.push({
    name: "libuv handle",
    make: (onEvent) => new HealthRunner({ onEvent }),
    alone: (onEvent) => new HealthRunner({ onEvent, createChecker: instantChecker() }),
  });
  const nat = nativeStatus();
  if (nat.ok)
    ways.push({
      name: "native prober",
      make: (onEvent) => new HealthRunner({ onEvent, createProber: () => new TcpProber() }),
      alone: (onEvent) => new HealthRunner({ onEvent, createProber: instantProber }),
    });
  else console.log(`(no "native prober" column: ${nat.reason})`);

  const self = new URL(import.meta.url).pathname;
  const child = spawn(
    "sh",
    [
      "-c",
      `ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn); exec "$0" --import tsx "$1" --listeners "$2"`,
      process.execPath,
      self,
      String(n),
    ],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  const lines = createInterface({ input: child.stdout });
  const waiters: ((l: string) => boolean)[] = [];
  lines.on("line", (l) => {
    if (l.startsWith("error")) console.error(`listener ${l}`);
    const i = waiters.findIndex((w) => w(l));
    if (i !== -1) waiters.splice(i, 1);
  });
  const waitLine = (want: string) =>
    new Promise<void>((resolve) => {
      waiters.push((l) => {
        if (l !== want) return false;
        resolve();
        return true;
      });
    });
  const send = async (cmd: string, ack: string) => {
    const got = waitLine(ack);
    child.stdin.write(`${cmd}\n`);
    await got;
  };
  const cleanup = () => {
    if (child.exitCode === null) child.kill();
    if (typeof before !== "string") rmSync(before.dir, { recursive: true, force: true });
  };
  process.on("exit", cleanup);
  const t0 = performance.now();
  await waitLine("ready");
  console.log(`${n} listeners ready in ${((performance.now() - t0) / 1000).toFixed(1)} s (child pid ${child.pid})`);
  const loadBefore1 = os.loadavg()[0] ?? 0;

  // Windows, alternating the ways round by round.
  const full = new Map<string, Window[]>();
  const alone = new Map<string, Window[]>();
  for (let r = 0; r < rounds; r++) {
    for (const w of ways) {
      const got = await measure(w, n, seconds, false);
      full.set(w.name, [...(full.get(w.name) ?? []), got]);
      const perCheck = got.cpuUs / got.checks;
      console.log(
        `  round ${r + 1} ${w.name.padEnd(18)} ${((got.cpuUs / 1000 / got.wallMs) * 100).toFixed(1)}% of one core, ${(got.checks / (got.wallMs / 1000)).toFixed(0)} checks/s, ${perCheck.toFixed(1)} µs per check`,
      );
    }
  }
  for (const w of ways) alone.set(w.name, [await measure(w, n, Math.min(5, seconds), true)]);

  // Detection: the same victims for every way, reopened in between.
  const spec = spec0();
  const bound = spec.delayLoopMs + Math.min(spec.delayLoopMs / 100, 50) + spec.delayBeforeRetryMs + 2 * 250;
  const victims: number[] = [];
  const step = Math.max(1, Math.floor(n / killCount));
  for (let i = 0; i < n && victims.length < killCount; i += step) victims.push(i);
  const detect = new Map<string, Detection>();
  for (const w of ways) detect.set(w.name, await detection(w, n, victims, bound, send));
  child.stdin.end();
  cleanup();

  // The table.
  const sum = (ws: Window[], f: (w: Window) => number) => ws.reduce((a, w) => a + f(w), 0);
  const usPerCheck = (ws: Window[]) => sum(ws, (w) => w.cpuUs) / sum(ws, (w) => w.checks);
  const cols = ways.map((w) => w.name);
  const width = 22;
  const row = (k: string, f: (name: string) => string) =>
    console.log(`  ${k.padEnd(44)}${cols.map((c) => f(c).padStart(width)).join("")}`);
  console.log(
    `\nHealth checking: ${n} real servers, TCP_CHECK, delay_loop 1 s, ${rounds} round(s) of ${seconds} s per way (node ${process.version})`,
  );
  console.log(`  ${"".padEnd(44)}${cols.map((c) => c.padStart(width)).join("")}`);
  row("CPU of the checking process, % of one core", (c) => {
    const ws = full.get(c) ?? [];
    return `${((sum(ws, (w) => w.cpuUs) / 1000 / sum(ws, (w) => w.wallMs)) * 100).toFixed(1)}%`;
  });
  row("checks per second done", (c) => {
    const ws = full.get(c) ?? [];
    return (sum(ws, (w) => w.checks) / (sum(ws, (w) => w.wallMs) / 1000)).toFixed(0);
  });
  row("CPU per check (user + system)", (c) => `${usPerCheck(full.get(c) ?? []).toFixed(1)} µs`);
  row("  of which user", (c) => {
    const ws = full.get(c) ?? [];
    return `${(sum(ws, (w) => w.userUs) / sum(ws, (w) => w.checks)).toFixed(1)} µs`;
  });
  row(
    `% of one core at ${n} checks/s (target < 35%)`,
    (c) => `${((usPerCheck(full.get(c) ?? []) * n) / 1e4).toFixed(1)}%`,
  );
  const base = cols[0] as string;
  row(`ratio to ${base}`, (c) => `${(usPerCheck(full.get(c) ?? []) / usPerCheck(full.get(base) ?? [])).toFixed(2)}×`);
  row("runner alone (instant checker), per check", (c) => `${usPerCheck(alone.get(c) ?? []).toFixed(1)} µs`);
  row("check latency p50 / p99 (ms)", (c) => {
    const l = (full.get(c) ?? []).at(-1)?.latencies ?? [];
    return `${pct(l, 50).toFixed(2)} / ${pct(l, 99).toFixed(2)}`;
  });
  row("event-loop delay p99 (ms)", (c) => `${Math.max(...(full.get(c) ?? []).map((w) => w.loopP99)).toFixed(1)}`);
  row(`down seen / within ${bound} ms bound`, (c) => {
    const d = detect.get(c);
    return d ? `${d.seen}/${d.expected}, ${d.within} within` : "";
  });
  row("detection time p50 / max (ms)", (c) => {
    const d = detect.get(c);
    return d ? `${d.p50.toFixed(0)} / ${d.max.toFixed(0)}` : "";
  });
  row("spurious down transitions", (c) => String(detect.get(c)?.spurious ?? ""));
  console.log(
    `\n  machine: ${os.cpus().length} CPUs, load average (1 min) ${loadBefore1.toFixed(1)} at the start, ${(os.loadavg()[0] ?? 0).toFixed(1)} at the end`,
  );
  console.log(
    "  The bound is keepalived's: the next check within delay_loop (+ up to 1% jitter), a failure, one retry",
  );
  console.log("  after delay_before_retry (1 s), + 500 ms slack. Killed: " + `${victims.length} listeners.`);
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
