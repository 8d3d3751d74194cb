// The state machine stepped one advert at a time with an injected clock (Seesaw ha_test.go's
// pattern): every transition, the v2 and v3 timer formulas, preemption rules, ties, priority 0.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareAddr, type FsmAction, type FsmConfig, VrrpFsm } from "./fsm.ts";

const base: FsmConfig = {
  version: 2,
  priority: 100,
  intervalMs: 1000,
  preempt: true,
  preemptDelayMs: 0,
  initialState: "BACKUP",
  primaryAddr: "10.0.0.2",
};

const sends = (a: FsmAction[]) => a.filter((x) => x.kind === "send").map((x) => (x as { priority: number }).priority);
const moves = (a: FsmAction[]) =>
  a.filter((x) => x.kind === "transition").map((x) => `${(x as { from: string }).from}>${(x as { to: string }).to}`);

test("master_down: v2 = 3 s + (256 - prio)/256 s; v3 = 3 × interval + (256 - prio) × interval / 256", () => {
  const v2 = new VrrpFsm({ ...base, priority: 50 });
  assert.equal(v2.masterDownMs(), 3000 + (206 * 1000) / 256);
  const v3 = new VrrpFsm({ ...base, version: 3, priority: 150, intervalMs: 100 });
  assert.equal(v3.masterDownMs(), 300 + (106 * 100) / 256);
});

test("INIT → BACKUP at start, BACKUP → MASTER when master_down runs out, adverts every interval", () => {
  const f = new VrrpFsm(base);
  assert.equal(f.state, "INIT");
  assert.deepEqual(moves(f.start(0)), ["INIT>BACKUP"]);
  const down = f.masterDownMs();
  assert.equal(f.nextDeadline(), down);
  assert.deepEqual(f.tick(down - 1), []);
  const a = f.tick(down);
  assert.deepEqual(moves(a), ["BACKUP>MASTER"]);
  assert.deepEqual(sends(a), [100]);
  assert.equal(f.masterAddr, "10.0.0.2");
  assert.equal(f.nextDeadline(), down + 1000);
  assert.deepEqual(sends(f.tick(down + 1000)), [100]);
  assert.deepEqual(sends(f.tick(down + 1500)), []);
  assert.deepEqual(sends(f.tick(down + 2000)), [100]);
});

test("state MASTER with priority 255 (owner) is master at once; MASTER below 255 waits as backup", () => {
  const owner = new VrrpFsm({ ...base, priority: 255, initialState: "MASTER" });
  const a = owner.start(0);
  assert.deepEqual(moves(a), ["INIT>MASTER"]);
  assert.deepEqual(sends(a), [255]);
  const m = new VrrpFsm({ ...base, initialState: "MASTER" });
  assert.deepEqual(moves(m.start(0)), ["INIT>BACKUP"]);
  // A master surviving a reload stays master without waiting.
  const r = new VrrpFsm({ ...base, initialState: "MASTER" });
  assert.deepEqual(moves(r.start(0, { reloadMaster: true })), ["INIT>MASTER"]);
});

test("backup: adverts from a live master keep it backup, one advert at a time", () => {
  const f = new VrrpFsm({ ...base, priority: 50 });
  f.start(0);
  let t = 0;
  for (let i = 0; i < 10; i++) {
    t += 1000;
    assert.deepEqual(f.tick(t), []);
    f.receive(t, { priority: 100, src: "10.0.0.1", intervalMs: 1000 });
  }
  assert.equal(f.state, "BACKUP");
  assert.equal(f.masterAddr, "10.0.0.1");
  assert.equal(f.masterPriority, 100);
  // Silence: master_down after the last advert, not before.
  assert.deepEqual(f.tick(t + f.masterDownMs() - 1), []);
  assert.deepEqual(moves(f.tick(t + f.masterDownMs())), ["BACKUP>MASTER"]);
});

test("backup hearing priority 0 takes over after the skew only", () => {
  const f = new VrrpFsm({ ...base, priority: 50 });
  f.start(0);
  f.receive(500, { priority: 100, src: "10.0.0.1", intervalMs: 1000 });
  f.receive(800, { priority: 0, src: "10.0.0.1", intervalMs: 1000 });
  const skew = (206 * 1000) / 256;
  assert.equal(f.nextDeadline(), 800 + skew);
  assert.deepEqual(moves(f.tick(800 + skew)), ["BACKUP>MASTER"]);
});

test("preempt: a higher-priority backup ignores a lower master and takes over at master_down", () => {
  const f = new VrrpFsm({ ...base, priority: 150 });
  f.start(0);
  const down = f.masterDownMs();
  f.receive(500, { priority: 100, src: "10.0.0.1", intervalMs: 1000 });
  f.receive(1500, { priority: 100, src: "10.0.0.1", intervalMs: 1000 });
  assert.deepEqual(moves(f.tick(down)), ["BACKUP>MASTER"]);
});

test("nopreempt: a higher-priority backup stays backup while the master lives", () => {
  const f = new VrrpFsm({ ...base, priority: 150, preempt: false });
  f.start(0);
  for (let t = 500; t < 20_000; t += 1000) {
    assert.deepEqual(f.tick(t), []);
    f.receive(t, { priority: 100, src: "10.0.0.1", intervalMs: 1000 });
  }
  assert.equal(f.state, "BACKUP");
});

test("preempt_delay: lower-priority adverts are accepted until the delay has passed", () => {
  const f = new VrrpFsm({ ...base, priority: 150, preemptDelayMs: 5000 });
  f.start(0);
  let t = 0;
  for (; t < 5000; t += 1000) {
    f.receive(t, { priority: 100, src: "10.0.0.1", intervalMs: 1000 });
    assert.deepEqual(f.tick(t), []);
  }
  // From here the lower master is ignored: the timer set by the last accepted advert runs out.
  const last = t - 1000;
  f.receive(t, { priority: 100, src: "10.0.0.1", intervalMs: 1000 });
  assert.deepEqual(moves(f.tick(last + f.masterDownMs())), ["BACKUP>MASTER"]);
});

test("master: higher priority → BACKUP; lower priority → re-assert at once; priority 0 → advert at once", () => {
  const f = new VrrpFsm({ ...base, priority: 100 });
  f.start(0);
  f.tick(f.masterDownMs());
  assert.equal(f.state, "MASTER");
  const low = f.receive(5000, { priority: 50, src: "10.0.0.9", intervalMs: 1000 });
  assert.deepEqual(sends(low), [100]);
  assert.equal(f.state, "MASTER");
  const zero = f.receive(5100, { priority: 0, src: "10.0.0.9", intervalMs: 1000 });
  assert.deepEqual(sends(zero), [100]);
  const high = f.receive(5200, { priority: 200, src: "10.0.0.1", intervalMs: 1000 });
  assert.deepEqual(moves(high), ["MASTER>BACKUP"]);
  assert.deepEqual(sends(high), []);
  assert.equal(f.masterAddr, "10.0.0.1");
});

test("equal priorities: the greater primary address wins", () => {
  const small = new VrrpFsm({ ...base, primaryAddr: "10.0.0.2" });
  small.start(0);
  small.tick(small.masterDownMs());
  // A peer with the same priority and a greater address: we yield.
  assert.deepEqual(moves(small.receive(4000, { priority: 100, src: "10.0.0.10", intervalMs: 1000 })), [
    "MASTER>BACKUP",
  ]);
  const big = new VrrpFsm({ ...base, primaryAddr: "10.0.0.10" });
  big.start(0);
  big.tick(big.masterDownMs());
  const a = big.receive(4000, { priority: 100, src: "10.0.0.2", intervalMs: 1000 });
  assert.deepEqual(moves(a), []);
  assert.deepEqual(sends(a), [100]);
  assert.ok(compareAddr("10.0.0.10", "10.0.0.2") > 0);
  assert.ok(compareAddr("fe80::10", "fe80::2") > 0);
});

test("v3: a backup adopts the master's interval for its down timer; as master it uses its own", () => {
  const f = new VrrpFsm({ ...base, version: 3, intervalMs: 1000, priority: 100 });
  f.start(0);
  f.receive(100, { priority: 200, src: "10.0.0.1", intervalMs: 100 });
  assert.equal(f.masterIntervalMs, 100);
  assert.equal(f.nextDeadline(), 100 + 300 + (156 * 100) / 256);
  const a = f.tick(100 + f.masterDownMs());
  assert.deepEqual(moves(a), ["BACKUP>MASTER"]);
  assert.equal(f.masterIntervalMs, 1000);
  const now = 100 + 300 + (156 * 100) / 256;
  assert.equal(f.nextDeadline(), now + 1000);
  // v2 never adopts.
  const v2 = new VrrpFsm(base);
  v2.start(0);
  v2.receive(100, { priority: 200, src: "10.0.0.1", intervalMs: 3000 });
  assert.equal(v2.masterIntervalMs, 1000);
});

test("FAULT: a master sends priority 0 and faults; recovery goes to backup (owner: master)", () => {
  const f = new VrrpFsm(base);
  f.start(0);
  f.tick(f.masterDownMs());
  const a = f.fault(5000, "interface eth0 down");
  assert.deepEqual(sends(a), [0]);
  assert.deepEqual(moves(a), ["MASTER>FAULT"]);
  assert.equal(f.nextDeadline(), undefined);
  assert.deepEqual(f.receive(5100, { priority: 200, src: "10.0.0.1", intervalMs: 1000 }), []);
  assert.deepEqual(moves(f.recover(6000, "interface eth0 up")), ["FAULT>BACKUP"]);
  const owner = new VrrpFsm({ ...base, priority: 255, initialState: "MASTER" });
  owner.fault(0, "down before start");
  assert.deepEqual(moves(owner.start(0)), ["INIT>FAULT"]);
  assert.deepEqual(moves(owner.recover(10, "up")), ["FAULT>MASTER"]);
  const b = new VrrpFsm(base);
  b.start(0);
  assert.deepEqual(moves(b.fault(10, "x")), ["BACKUP>FAULT"]);
});

test("stop: a master sends priority 0 and goes to INIT; a backup just goes to INIT; restart works", () => {
  const f = new VrrpFsm(base);
  f.start(0);
  f.tick(f.masterDownMs());
  const a = f.stop(9000);
  assert.deepEqual(sends(a), [0]);
  assert.deepEqual(moves(a), ["MASTER>INIT"]);
  assert.deepEqual(moves(f.start(10_000)), ["INIT>BACKUP"]);
  const s = f.stop(10_001);
  assert.deepEqual(sends(s), []);
  assert.deepEqual(moves(s), ["BACKUP>INIT"]);
});

test("effective priority: a master whose priority drops loses to a peer that preempts", () => {
  const f = new VrrpFsm({ ...base, priority: 150 });
  f.start(0);
  f.tick(f.masterDownMs());
  f.setPriority(5000, 80);
  assert.equal(f.effectivePriority, 80);
  assert.deepEqual(sends(f.tick(f.nextDeadline() as number)), [80]);
  assert.deepEqual(moves(f.receive(6000, { priority: 100, src: "10.0.0.1", intervalMs: 1000 })), ["MASTER>BACKUP"]);
  // Clamped to 1..255.
  f.setPriority(0, -20);
  assert.equal(f.effectivePriority, 1);
});

test("sync-group moves: force MASTER/BACKUP/FAULT", () => {
  const f = new VrrpFsm(base);
  f.start(0);
  assert.deepEqual(moves(f.force(1, "MASTER", "group VG_1 member went master")), ["BACKUP>MASTER"]);
  const b = f.force(2, "BACKUP", "group member went backup");
  assert.deepEqual(moves(b), ["MASTER>BACKUP"]);
  assert.deepEqual(sends(b), [0]);
  assert.deepEqual(moves(f.force(3, "FAULT", "group member faulted")), ["BACKUP>FAULT"]);
  assert.deepEqual(f.force(4, "MASTER", "x"), []);
});
