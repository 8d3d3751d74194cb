// The runner against real loopback listeners and scripts: keepalived's transitions (down after
// retry + 1 failures spaced by delay_before_retry, one failure before the first result, up after
// one success), alpha and omega, misc_dynamic weight events, a hung server not delaying others,
// the concurrency cap, ldirectord's combined checks, reloads, and the delays it schedules.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ManualClock } from "../core/clock.ts";
import { nativeStatus } from "../platform/native-addon.ts";
import { TcpProber } from "../platform/tcp-prober.ts";
import type { Checker } from "./checker.ts";
import {
  type CheckerSpec,
  checkerCommon,
  type FileCheckSpec,
  type HttpCheckSpec,
  type MiscCheckSpec,
  type TcpCheckSpec,
} from "./checker-spec.ts";
import { createChecker } from "./create-checker.ts";
import { type HealthEvent, HealthRunner, type HealthRunnerOptions, type TimerSource } from "./runner.ts";
import { closedPort, listenTcp, silentTcp, unansweredTcp } from "./test-listeners.ts";

const dir = mkdtempSync(join(tmpdir(), "tvs-runner-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const tcp = (over: Partial<TcpCheckSpec> = {}): TcpCheckSpec => ({
  ...checkerCommon("TCP_CHECK", { connectTimeoutMs: 500, delayLoopMs: 30, delayBeforeRetryMs: 10, warmupMs: 0 }),
  type: "TCP_CHECK",
  ...over,
});

/**
 * A runner with the built-in checkers (so a plain TCP_CHECK takes the lean connect path) whose
 * events and per-id results (through onResult) are recorded; stopped when the test ends.
 */
function recordingRunner(t: { after(fn: () => void): void }, opts: Partial<HealthRunnerOptions> = {}) {
  const events: HealthEvent[] = [];
  const results = new Map<string, boolean[]>();
  /** For each event, how many results each id had when it was emitted. */
  const resultsAtEvent: Map<string, number>[] = [];
  const runner = new HealthRunner({
    jitter: false,
    ...opts,
    onEvent: (e) => {
      events.push(e);
      resultsAtEvent.push(new Map([...results].map(([k, v]) => [k, v.length])));
    },
    onResult: (id, r) => {
      const list = results.get(id) ?? [];
      list.push(r.ok);
      results.set(id, list);
    },
  });
  t.after(() => runner.stop());
  return { runner, events, results, resultsAtEvent };
}

async function until(what: string, pred: () => boolean, limitMs = 5000): Promise<void> {
  const end = Date.now() + limitMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`Gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test("a healthy server stays up silently; after retry + 1 failures it goes down; one success brings it up", async (t) => {
  const l = await listenTcp(() => {});
  const port = l.port;
  const { runner, events, results, resultsAtEvent } = recordingRunner(t);
  runner.add({ id: "rs1", address: "127.0.0.1", port, spec: tcp({ retry: 2 }) });
  assert.equal(runner.state("rs1"), "up");
  assert.equal(runner.status()[0]?.pending, true);
  const key = "rs1";
  await until("three good checks", () => (results.get(key)?.length ?? 0) >= 3);
  assert.equal(events.length, 0);
  assert.equal(runner.status()[0]?.pending, false);

  await l.close();
  await until("the down event", () => events.length === 1);
  const seq = results.get(key) ?? [];
  const atDown = resultsAtEvent[0]?.get(key) ?? 0;
  assert.deepEqual(seq.slice(atDown - 4, atDown), [true, false, false, false], "down after exactly 3 failures");
  assert.equal(events[0]?.type, "down");
  assert.equal(events[0]?.reason, "Connection refused (3 failures)");
  assert.equal(runner.state("rs1"), "down");

  const again = await listenTcp(() => {}, "127.0.0.1", port);
  t.after(() => again.close());
  await until("the up event", () => events.length === 2);
  assert.equal(events[1]?.type, "up");
  assert.equal(events[1]?.reason, "Connected");
  const s = runner.status()[0];
  assert.equal(s?.state, "up");
  assert.equal(s?.failures, 0);
  assert.equal(s?.lastResult?.ok, true);
});

test("before its first result a server needs only one failure to go down", async (t) => {
  const port = await closedPort();
  const { runner, events, resultsAtEvent } = recordingRunner(t);
  runner.add({ id: "rs", address: "127.0.0.1", port, spec: tcp({ retry: 3 }) });
  await until("the down event", () => events.length === 1);
  assert.equal(events[0]?.type, "down");
  assert.equal(events[0]?.reason, "Connection refused");
  assert.equal(resultsAtEvent[0]?.get("rs"), 1);
});

test("alpha: a server starts down and comes up after one success; a dead one stays silent", async (t) => {
  const l = await listenTcp(() => {});
  t.after(() => l.close());
  const dead = await closedPort();
  const { runner, events, results } = recordingRunner(t);
  runner.add({ id: "live", address: "127.0.0.1", port: l.port, spec: tcp({ alpha: true }) });
  runner.add({ id: "dead", address: "127.0.0.1", port: dead, spec: tcp({ alpha: true }) });
  assert.equal(runner.state("live"), "down");
  assert.equal(runner.state("dead"), "down");
  await until(
    "the up event and three checks of the dead one",
    () => events.length >= 1 && (results.get("dead")?.length ?? 0) >= 3,
  );
  assert.deepEqual(
    events.map((e) => [e.type, e.id]),
    [["up", "live"]],
  );
});

test("omega: stop() and remove() report up servers down only when omega is set", async (t) => {
  const l = await listenTcp(() => {});
  t.after(() => l.close());
  const { runner, events } = recordingRunner(t);
  runner.add({ id: "a", address: "127.0.0.1", port: l.port, spec: tcp({ omega: true }) });
  runner.add({ id: "b", address: "127.0.0.1", port: l.port, spec: tcp() });
  runner.add({ id: "c", address: "127.0.0.1", port: l.port, spec: tcp({ omega: true }) });
  assert.equal(runner.remove("c"), true);
  assert.equal(runner.remove("c"), false);
  runner.stop();
  assert.deepEqual(
    events.map((e) => [e.type, e.id, e.reason]),
    [
      ["down", "c", "Removed (omega)"],
      ["down", "a", "Stopping (omega)"],
    ],
  );
  assert.throws(
    () => runner.add({ id: "d", address: "127.0.0.1", port: l.port, spec: tcp() }),
    /Health runner stopped: cannot add "d"/,
  );
});

test("misc_dynamic: weight events while up, the weight on the up event, forgotten when down", async (t) => {
  const codeFile = join(dir, "code");
  writeFileSync(codeFile, "0");
  const s = join(dir, "dyn.sh");
  writeFileSync(s, `#!/bin/sh\nexit $(cat ${codeFile})\n`);
  chmodSync(s, 0o755);
  const spec: MiscCheckSpec = {
    ...checkerCommon("MISC_CHECK", { delayLoopMs: 20, warmupMs: 0 }),
    type: "MISC_CHECK",
    path: s,
    timeoutMs: 2000,
    dynamic: true,
  };
  const { runner, events } = recordingRunner(t);
  runner.add({ id: "m", address: "127.0.0.1", port: 80, spec });
  await until("a first result", () => runner.status()[0]?.checks === 1);
  assert.equal(events.length, 0);
  writeFileSync(codeFile, "5");
  await until("the weight event", () => events.length === 1);
  assert.deepEqual([events[0]?.type, events[0]?.weight], ["weight", 3]);
  assert.equal(runner.status()[0]?.weight, 3);
  writeFileSync(codeFile, "1");
  await until("the down event", () => events.length === 2);
  assert.equal(events[1]?.type, "down");
  assert.equal(events[1]?.reason, "Script exited 1");
  assert.equal(runner.status()[0]?.weight, undefined);
  writeFileSync(codeFile, "4");
  await until("the up event", () => events.length === 3);
  assert.deepEqual([events[2]?.type, events[2]?.weight], ["up", 2]);
  writeFileSync(codeFile, "0");
  await until("the weight reset", () => events.length === 4);
  assert.equal(events[3]?.type, "weight");
  assert.equal(events[3]?.weight, undefined);
});

test("a hung server does not delay the checks of others", async (t) => {
  const hung = await silentTcp();
  t.after(() => hung.close());
  const ok = await listenTcp(() => {});
  t.after(() => ok.close());
  const { runner, events, results } = recordingRunner(t);
  runner.add({
    id: "hung",
    address: "127.0.0.1",
    port: hung.port,
    spec: tcp({ send: "PING\r\n", expectRegex: "PONG", connectTimeoutMs: 1000 }),
  });
  runner.add({ id: "ok", address: "127.0.0.1", port: ok.port, spec: tcp({ delayLoopMs: 10 }) });
  await until("the hung server's down event", () => events.length === 1);
  assert.equal(events[0]?.id, "hung");
  assert.match(events[0]?.reason ?? "", /Timed out after 1000 ms/);
  assert.ok((results.get("ok")?.length ?? 0) >= 10, "the healthy server was checked meanwhile");
});

test("maxConcurrent caps attempts in flight; the rest wait their turn", async (t) => {
  const hung = await silentTcp();
  t.after(() => hung.close());
  const ok = await listenTcp(() => {});
  t.after(() => ok.close());
  const { runner, events, results, resultsAtEvent } = recordingRunner(t, { maxConcurrent: 1 });
  runner.add({
    id: "hung",
    address: "127.0.0.1",
    port: hung.port,
    spec: tcp({ send: "x", expectRegex: "y", connectTimeoutMs: 300 }),
  });
  runner.add({ id: "ok", address: "127.0.0.1", port: ok.port, spec: tcp() });
  await until("the hung server's first result", () => events.length === 1);
  assert.equal(resultsAtEvent[0]?.get("ok"), undefined, "the second check waited for the slot");
  await until("the queued check", () => (results.get("ok")?.length ?? 0) >= 1);
  assert.ok(runner.running <= 1);
});

test("ldirectord combined checktype: one negotiate, then N connects, then negotiate again", async (t) => {
  const kinds: string[] = [];
  const l = await listenTcp((s: net.Socket) => {
    let saw = false;
    s.on("data", () => {
      if (!saw) kinds.push("http");
      saw = true;
      s.end("HTTP/1.0 200 OK\r\n\r\nok");
    });
    s.on("close", () => {
      if (!saw) kinds.push("connect");
    });
  });
  t.after(() => l.close());
  const spec: HttpCheckSpec = {
    ...checkerCommon("HTTP_GET", { connectTimeoutMs: 500, delayLoopMs: 10, warmupMs: 0 }),
    type: "HTTP_GET",
    urls: [{ path: "/", statusCodes: [{ from: 200, to: 299 }] }],
    httpProtocol: "1.0",
    verifyCert: false,
    connectChecksBetween: 2,
  };
  const { runner } = recordingRunner(t);
  runner.add({ id: "c", address: "127.0.0.1", port: l.port, spec });
  await until("seven checks", () => kinds.length >= 7);
  assert.deepEqual(kinds.slice(0, 7), ["http", "connect", "connect", "http", "connect", "connect", "http"]);
});

test("update() swaps the spec and keeps the state", async (t) => {
  const l = await listenTcp(() => {});
  t.after(() => l.close());
  const dead = await closedPort();
  const { runner, events } = recordingRunner(t);
  runner.add({ id: "u", address: "127.0.0.1", port: l.port, spec: tcp() });
  await until("a first result", () => (runner.status()[0]?.checks ?? 0) >= 1);
  runner.update({ id: "u", address: "127.0.0.1", port: l.port, spec: tcp({ connectPort: dead, retry: 0 }) });
  assert.equal(runner.state("u"), "up");
  await until("the down event", () => events.length === 1);
  assert.equal(events[0]?.reason, "Connection refused");
  assert.throws(
    () => runner.add({ id: "u", address: "127.0.0.1", port: 1, spec: tcp() }),
    /Health check "u" already exists/,
  );
});

/**
 * A clock and a timer source that agree: time moves only when the test fires the next timer, and
 * then it jumps to that timer's due time. Every delay the runner asks for is thus visible exactly.
 */
function manualTime() {
  const clock = new ManualClock(0);
  const pending: { at: number; fn: () => void; live: boolean }[] = [];
  const timers: TimerSource = {
    setTimeout: (fn, ms) => {
      const h = { at: clock.now() + ms, fn, live: true };
      pending.push(h);
      return h;
    },
    clearTimeout: (h) => {
      (h as { live: boolean }).live = false;
    },
  };
  /** Fire the earliest live timer (advancing the clock to it); false when none is armed. */
  const fireNext = (): boolean => {
    let best = -1;
    for (let i = 0; i < pending.length; i++) {
      const h = pending[i];
      if (h?.live && (best === -1 || h.at < (pending[best]?.at ?? 0))) best = i;
    }
    const h = pending.splice(best, 1)[0];
    if (best === -1 || !h) return false;
    h.live = false;
    clock.set(Math.max(clock.now(), h.at));
    h.fn();
    return true;
  };
  const armed = () => pending.filter((h) => h.live).length;
  return { clock, timers, fireNext, armed };
}

/** A checker (wrapping `inner`) that records the clock at the start of every attempt. */
function startTimes(clock: ManualClock, inner: (spec: CheckerSpec) => Checker) {
  const starts: number[] = [];
  const create = (spec: CheckerSpec): Checker => {
    const c = inner(spec);
    return {
      type: c.type,
      check: (target, signal) => {
        starts.push(clock.now());
        return c.check(target, signal);
      },
    };
  };
  return { starts, create };
}

test("scheduling: warmup draws from [0, warmup], then delay_loop after a pass and delay_before_retry after a failure", async (t) => {
  const { clock, timers, fireNext, armed } = manualTime();
  const file = join(dir, "sched");
  writeFileSync(file, "0");
  const spec: FileCheckSpec = {
    ...checkerCommon("FILE_CHECK", {
      delayLoopMs: 1000,
      delayBeforeRetryMs: 100,
      warmupMs: 400,
      retry: 1,
      connectTimeoutMs: 777,
    }),
    type: "FILE_CHECK",
    file,
    weight: 0,
    reverse: false,
  };
  const events: HealthEvent[] = [];
  const { starts, create } = startTimes(clock, createChecker);
  const runner = new HealthRunner({
    onEvent: (e) => events.push(e),
    clock,
    timers,
    random: () => 0.25,
    jitter: false,
    createChecker: create,
  });
  t.after(() => runner.stop());
  runner.add({ id: "f", address: "127.0.0.1", port: 0, spec });
  /** Fire timers until attempt n starts, then wait for its result. */
  const attempt = async (n: number) => {
    for (let i = 0; i < 10 && starts.length < n; i++) assert.ok(fireNext(), "a timer is armed");
    assert.equal(starts.length, n, `attempt ${n} started`);
    await until(`result ${n}`, () => runner.status()[0]?.checks === n);
  };
  assert.equal(armed(), 1, "one timer for the whole runner");
  await attempt(1);
  assert.equal(starts[0], 100, "warmup 400 × random 0.25");
  writeFileSync(file, "1");
  await attempt(2);
  assert.equal(starts[1], 1100, "delay_loop after a pass");
  await attempt(3);
  assert.equal(starts[2], 1200, "delay_before_retry after the first failure");
  assert.deepEqual(
    events.map((e) => [e.type, e.at]),
    [["down", 1200]],
  );
  await attempt(4);
  assert.equal(starts[3], 2200, "delay_loop once down");
  await attempt(5);
  assert.equal(starts[4], 3200, "a down server is not retried sooner");
  assert.ok(armed() <= 1, "never more than one timer armed");
});

test("timer slack: the timer wakes at most once per timerSlackMs; a deadline runs at most that late", async (t) => {
  // Servers a, b, c first due at 0, 102 and 103 (warmup 200 × 0, 0.51, 0.515), then delay_loop.
  for (const [slack, expected] of [
    [5, [0, 102, 107, 1000, 1102, 1107]],
    [0, [0, 102, 103, 1000, 1102, 1103]],
  ] as const) {
    const { clock, timers, fireNext } = manualTime();
    const instant = (): Checker => ({
      type: "TCP_CHECK",
      check: async () => ({ ok: true, reason: "ok", latencyMs: 0 }),
    });
    const { starts, create } = startTimes(clock, instant);
    const draws = [0, 0.51, 0.515];
    let k = 0;
    const runner = new HealthRunner({
      onEvent: () => {},
      clock,
      timers,
      jitter: false,
      timerSlackMs: slack,
      random: () => draws[k++] ?? 0,
      createChecker: create,
    });
    t.after(() => runner.stop());
    for (const id of ["a", "b", "c"])
      runner.add({ id, address: "127.0.0.1", port: 1, spec: tcp({ warmupMs: 200, delayLoopMs: 1000 }) });
    for (let i = 0; i < 30 && starts.length < 6; i++) {
      assert.ok(fireNext(), "a timer is armed");
      for (let j = 0; j < 3; j++) await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(starts, expected, `timerSlackMs ${slack}`);
    runner.stop();
  }
});

test("time limit: an attempt that never answers is cut off exactly at connect_timeout, and the next one follows delay_before_retry", async (t) => {
  const { clock, timers, fireNext } = manualTime();
  const hang = (): Checker => ({
    type: "TCP_CHECK",
    check: (_target, signal) =>
      new Promise((resolve) => {
        signal.addEventListener("abort", () =>
          resolve({ ok: false, reason: (signal.reason as Error).message, latencyMs: 0 }),
        );
      }),
  });
  const { starts, create } = startTimes(clock, hang);
  const results: [number, string][] = [];
  const events: HealthEvent[] = [];
  const runner = new HealthRunner({
    onEvent: (e) => events.push(e),
    onResult: (_id, r) => results.push([clock.now(), r.reason]),
    clock,
    timers,
    jitter: false,
    createChecker: create,
  });
  t.after(() => runner.stop());
  runner.add({
    id: "h",
    address: "127.0.0.1",
    port: 1,
    spec: tcp({
      connectTimeoutMs: 300,
      delayLoopMs: 1000,
      delayBeforeRetryMs: 50,
      retry: 1,
      warmupMs: 0,
      alpha: false,
    }),
  });
  /** Fire timers (letting the loop turn after each: the cut-off runs one turn late) until result n. */
  const step = async (n: number) => {
    for (let i = 0; i < 10 && results.length < n; i++) {
      assert.ok(fireNext(), "a timer is armed");
      for (let k = 0; k < 3; k++) await new Promise((r) => setImmediate(r));
    }
    assert.equal(results.length, n, `result ${n}`);
  };
  await step(1);
  assert.deepEqual(results[0], [300, "Timed out after 300 ms"]);
  assert.equal(starts[0], 0);
  assert.deepEqual(
    events.map((e) => [e.type, e.at]),
    [["down", 300]],
    "one failure is enough before the first result",
  );
  await step(2);
  assert.equal(starts[1], 1300, "delay_loop after going down");
  assert.deepEqual(results[1], [1600, "Timed out after 300 ms"]);
});

test("detection time: a real server that stops listening is down within delay_loop + jitter + delay_before_retry", async (t) => {
  // keepalived's bound for an up server (retry 1): the next check comes within delay_loop (plus
  // jitter), fails, and the retry delay_before_retry later fails again. Real sockets on loopback,
  // so the slack covers a busy machine; the lower bound (two failures spaced by the retry delay)
  // is exact.
  const l = await listenTcp(() => {});
  const { runner, events, results } = recordingRunner(t, { jitter: true });
  const spec = tcp({ delayLoopMs: 300, delayBeforeRetryMs: 150, retry: 1, connectTimeoutMs: 1000 });
  runner.add({ id: "d", address: "127.0.0.1", port: l.port, spec });
  const key = "d";
  await until("two passes", () => (results.get(key)?.length ?? 0) >= 2);
  const before = results.get(key)?.length ?? 0;
  const closedAt = performance.now();
  await l.close();
  await until("the down event", () => events.length === 1, 5000);
  const detected = performance.now() - closedAt;
  assert.equal(events[0]?.type, "down");
  assert.equal(events[0]?.reason, "Connection refused (2 failures)");
  assert.deepEqual((results.get(key) ?? []).slice(before), [false, false], "down on the second failure, no more");
  const bound = 300 + Math.min(300 / 100, 50) + 150;
  assert.ok(detected >= 150, `not before the retry delay (${detected.toFixed(0)} ms)`);
  assert.ok(detected <= bound + 400, `detected in ${detected.toFixed(0)} ms, bound ${bound} ms + 400 ms slack`);
});

test("a connect the server never answers is cut off at connect_timeout", async (t) => {
  const u = await unansweredTcp();
  if (!u) {
    t.skip("python3 is not available for the never-accepting listener");
    return;
  }
  t.after(() => u.close());
  const { runner, events } = recordingRunner(t);
  runner.add({ id: "x", address: "127.0.0.1", port: u.port, spec: tcp({ connectTimeoutMs: 150 }) });
  await until("the down event", () => events.length === 1);
  assert.equal(events[0]?.reason, "Timed out after 150 ms");
  assert.equal(runner.status()[0]?.inFlight, false);
});

// The same transitions through the native batch prober the daemon uses when the addon is built.
const native = nativeStatus();
const noNative = native.ok ? false : `native addon unavailable: ${native.reason}`;

test(
  "native prober: up, down after retry + 1 refused connects, up again; status shows attempts",
  { skip: noNative },
  async (t) => {
    const prober = new TcpProber();
    t.after(() => prober.close());
    const l = await listenTcp(() => {});
    const { runner, events, results } = recordingRunner(t, { createProber: () => prober });
    runner.add({ id: "p", address: "127.0.0.1", port: l.port, spec: tcp({ retry: 1 }) });
    await until("three good checks", () => (results.get("p")?.length ?? 0) >= 3);
    assert.equal(events.length, 0);
    assert.equal(runner.status()[0]?.lastResult?.reason, "Connected");
    const port = l.port;
    const closedAt = performance.now();
    await l.close();
    await until("the down event", () => events.length === 1);
    const detected = performance.now() - closedAt;
    assert.equal(events[0]?.reason, "Connection refused (2 failures)");
    assert.deepEqual(results.get("p")?.slice(-2), [false, false]);
    // The libuv path's bound: delay_loop 30 + delay_before_retry 10 (+ the 5 ms timer slack), + slack.
    assert.ok(detected >= 10, `not before the retry delay (${detected.toFixed(0)} ms)`);
    assert.ok(detected <= 30 + 10 + 400, `detected in ${detected.toFixed(0)} ms`);
    const again = await listenTcp(() => {}, "127.0.0.1", port);
    t.after(() => again.close());
    await until("the up event", () => events.length === 2);
    assert.equal(events[1]?.type, "up");
    assert.equal(prober.inFlight, runner.running);
  },
);

test(
  "native prober: a connect never answered is cut off at connect_timeout; removal closes the probe",
  { skip: noNative },
  async (t) => {
    const u = await unansweredTcp();
    if (!u) {
      t.skip("python3 is not available for the never-accepting listener");
      return;
    }
    t.after(() => u.close());
    const prober = new TcpProber();
    t.after(() => prober.close());
    const { runner, events } = recordingRunner(t, { createProber: () => prober });
    const started = performance.now();
    runner.add({ id: "x", address: "127.0.0.1", port: u.port, spec: tcp({ connectTimeoutMs: 150 }) });
    await until("the down event", () => events.length === 1);
    assert.ok(performance.now() - started >= 150, "not before the time limit");
    assert.equal(events[0]?.reason, "Timed out after 150 ms");
    assert.equal(runner.status()[0]?.inFlight, false);
    await until("the next attempt in flight", () => prober.inFlight === 1);
    runner.remove("x");
    assert.equal(prober.inFlight, 0, "removal closed the probe");
    assert.equal(runner.running, 0);
  },
);

test("native prober: a scoped IPv6 target falls back on the socket path", { skip: noNative }, async (t) => {
  const prober = new TcpProber();
  t.after(() => prober.close());
  const { runner, results } = recordingRunner(t, { createProber: () => prober });
  const port = await closedPort();
  runner.add({ id: "s", address: "fe80::1%lo", port, spec: tcp({ connectTimeoutMs: 300 }) });
  await until("a result", () => (results.get("s")?.length ?? 0) >= 1);
  assert.equal(prober.inFlight, 0);
  assert.equal(runner.status()[0]?.lastResult?.ok, false);
});

test("a probe this host cannot start (EMFILE) counts no failure; a refused one does", async (t) => {
  /** A prober that fails the first `n` starts with -errno at once, then connects. */
  const fake = (errno: number, n: number) => {
    let calls = 0;
    return {
      get calls() {
        return calls;
      },
      start(_target: unknown, done: (errno: number) => void): number {
        calls++;
        if (calls <= n) return -errno;
        queueMicrotask(() => done(0));
        return calls;
      },
      cancel() {},
    };
  };
  const emfile = fake(24, 4);
  const a = recordingRunner(t, { createProber: () => emfile });
  a.runner.add({ id: "busy", address: "127.0.0.1", port: 9, spec: tcp({ retry: 1 }) });
  await until("a result after the host recovered", () => (a.results.get("busy")?.length ?? 0) >= 1);
  assert.deepEqual(a.events, [], "no down event for the host's own shortage");
  assert.deepEqual(a.results.get("busy"), [true], "no result recorded for the probes never started");
  assert.equal(a.runner.localFailures, 4);
  assert.equal(a.runner.running, 0);
  const refused = fake(111, 4);
  const b = recordingRunner(t, { createProber: () => refused });
  b.runner.add({ id: "rs", address: "127.0.0.1", port: 9, spec: tcp({ retry: 1 }) });
  await until("the down event", () => b.events.length === 1);
  assert.match(b.events[0]?.reason ?? "", /^Connection refused/);
  assert.equal(b.runner.localFailures, 0);
});
