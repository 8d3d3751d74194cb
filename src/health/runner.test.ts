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
import type { Checker, CheckResult } from "./checker.ts";
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

/** A runner whose events and per-id results are recorded; stopped when the test ends. */
function recordingRunner(t: { after(fn: () => void): void }, opts: Partial<HealthRunnerOptions> = {}) {
  const events: HealthEvent[] = [];
  const results = new Map<string, boolean[]>();
  /** For each event, how many results each address:port had when it was emitted. */
  const resultsAtEvent: Map<string, number>[] = [];
  const runner = new HealthRunner({
    jitter: false,
    ...opts,
    onEvent: (e) => {
      events.push(e);
      resultsAtEvent.push(new Map([...results].map(([k, v]) => [k, v.length])));
    },
    createChecker: (spec: CheckerSpec): Checker => {
      const inner = createChecker(spec);
      return {
        type: inner.type,
        check: async (target, signal): Promise<CheckResult> => {
          const r = await inner.check(target, signal);
          const id = `${target.address}:${target.port}`;
          const list = results.get(id) ?? [];
          list.push(r.ok);
          results.set(id, list);
          return r;
        },
      };
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
  const key = `127.0.0.1:${port}`;
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
  assert.equal(resultsAtEvent[0]?.get(`127.0.0.1:${port}`), 1);
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
    () => events.length >= 1 && (results.get(`127.0.0.1:${dead}`)?.length ?? 0) >= 3,
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
  assert.ok((results.get(`127.0.0.1:${ok.port}`)?.length ?? 0) >= 10, "the healthy server was checked meanwhile");
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
  assert.equal(resultsAtEvent[0]?.get(`127.0.0.1:${ok.port}`), undefined, "the second check waited for the slot");
  await until("the queued check", () => (results.get(`127.0.0.1:${ok.port}`)?.length ?? 0) >= 1);
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

test("scheduling: warmup draws from [0, warmup], then delay_loop after a pass and delay_before_retry after a failure", async (t) => {
  // A timer source the test fires by hand, so every delay the runner asks for is visible.
  const pending: { fn: () => void; ms: number; live: boolean }[] = [];
  const timers: TimerSource = {
    setTimeout: (fn, ms) => {
      const h = { fn, ms, live: true };
      pending.push(h);
      return h;
    },
    clearTimeout: (h) => {
      (h as { live: boolean }).live = false;
    },
  };
  /** Fire the next live scheduling timer (not an attempt's 777 ms time limit) and return its delay. */
  const fireNext = (): number => {
    const i = pending.findIndex((h) => h.live && h.ms !== 777);
    const h = pending.splice(i, 1)[0];
    assert.ok(h, "a scheduled timer");
    h.live = false;
    h.fn();
    return h.ms;
  };
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
  const runner = new HealthRunner({ onEvent: (e) => events.push(e), timers, random: () => 0.25, jitter: false });
  t.after(() => runner.stop());
  runner.add({ id: "f", address: "127.0.0.1", port: 0, spec });
  const settled = async (n: number) => until(`check ${n}`, () => runner.status()[0]?.checks === n);
  assert.equal(fireNext(), 100, "warmup 400 × random 0.25");
  await settled(1);
  assert.equal(fireNext(), 1000, "delay_loop after a pass");
  writeFileSync(file, "1");
  await settled(2);
  assert.equal(fireNext(), 100, "delay_before_retry after the first failure");
  await settled(3);
  assert.deepEqual(
    events.map((e) => e.type),
    ["down"],
  );
  assert.equal(fireNext(), 1000, "delay_loop once down");
  await settled(4);
  assert.equal(fireNext(), 1000, "a down server is not retried sooner");
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
