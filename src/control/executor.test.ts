// Tests for the Director: requests applied to the service table, atomic batches, timeouts,
// sync-daemon requests without sync, and the snapshot it reads back.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../core/clock.ts";
import { destSpec } from "../core/dest.ts";
import { CoreError } from "../core/errors.ts";
import { BatchError } from "../core/request.ts";
import { SchedulerRegistry } from "../core/sched/registry.ts";
import type { Scheduler } from "../core/sched/types.ts";
import { type ServiceKey, serviceOptions } from "../core/service.ts";
import type { ExecRequest } from "./api/protocol.ts";
import { Director, errorBody } from "./executor.ts";

/** Round robin over the kernel's list, enough to see that scheduler state is the live one. */
const rr: Scheduler = {
  name: "rr",
  create(svc) {
    let i = -1;
    return {
      schedule() {
        if (svc.dests.length === 0) return undefined;
        i = (i + 1) % svc.dests.length;
        return svc.dests[i];
      },
    };
  },
};
const wlc: Scheduler = { name: "wlc", create: (svc) => ({ schedule: () => svc.dests[0] }) };

function director(): Director {
  return new Director({
    registry: new SchedulerRegistry([rr, wlc]),
    env: { clock: new ManualClock(0), random: () => 0 },
  });
}

const VIP: ServiceKey = { kind: "vip", protocol: "tcp", addr: "10.0.0.1", port: 80 };
const VIP2: ServiceKey = { kind: "vip", protocol: "udp", addr: "10.0.0.1", port: 53 };
const add = (key: ServiceKey, scheduler = "rr"): ExecRequest => ({
  op: "add-service",
  key,
  options: serviceOptions(4, { scheduler }),
});
const dest = (key: ServiceKey, addr: string, weight = 1): ExecRequest => ({
  op: "add-dest",
  key,
  dest: destSpec(addr, 80, { fwd: "masq", weight }),
});

test("exec applies requests; dests are listed newest first in the snapshot", () => {
  const d = director();
  d.exec(add(VIP));
  d.exec(dest(VIP, "192.168.0.1"));
  d.exec(dest(VIP, "192.168.0.2"));
  const snap = d.snapshot();
  assert.equal(snap.version, "1.2.1");
  assert.equal(snap.connTableSize, 4096);
  assert.deepEqual(
    snap.services[0]?.dests.map((x) => x.spec.addr),
    ["192.168.0.2", "192.168.0.1"],
  );
});

test("a failing batch changes nothing and names the failing index", () => {
  const d = director();
  d.exec(add(VIP));
  d.exec(dest(VIP, "192.168.0.1"));
  const svc = d.services.get(VIP);
  assert.ok(svc);
  svc.stats.conns = 42;
  const before = JSON.stringify(d.snapshot());
  assert.throws(
    () =>
      d.exec({
        op: "batch",
        requests: [add(VIP2), dest(VIP, "192.168.0.2"), dest(VIP, "192.168.0.1"), { op: "flush" }],
      }),
    (e) => {
      assert.ok(e instanceof BatchError);
      assert.equal(e.index, 2);
      assert.equal(e.code, "EEXIST");
      assert.deepEqual(errorBody(e).error.index, 2);
      return true;
    },
  );
  assert.equal(JSON.stringify(d.snapshot()), before);
  assert.equal(d.services.get(VIP), svc, "the live service object (and its scheduler state) is untouched");
});

test("a good batch applies everything in order, sees its own earlier requests", () => {
  const d = director();
  d.exec(add(VIP));
  d.exec({
    op: "batch",
    requests: [{ op: "flush" }, add(VIP), dest(VIP, "192.168.0.1"), dest(VIP, "192.168.0.2", 3), add(VIP2, "wlc")],
  });
  const snap = d.snapshot();
  assert.equal(snap.services.length, 2);
  assert.deepEqual(
    snap.services[0]?.dests.map((x) => `${x.spec.addr}/${x.spec.weight}`),
    ["192.168.0.2/3", "192.168.0.1/1"],
  );
});

test("the shadow table reproduces the kernel list order, so validation matches the live table", () => {
  const d = director();
  d.exec(add(VIP));
  for (const a of ["192.168.0.1", "192.168.0.2", "192.168.0.3"]) d.exec(dest(VIP, a));
  d.exec({ op: "batch", requests: [{ op: "del-dest", key: VIP, addr: "192.168.0.2", port: 80 }] });
  assert.deepEqual(
    d.snapshot().services[0]?.dests.map((x) => x.spec.addr),
    ["192.168.0.3", "192.168.0.1"],
  );
});

test("set-timeout without a connection table: 0 keeps the current value", () => {
  const d = director();
  d.exec({ op: "set-timeout", timeouts: { tcp: 3600, tcpfin: 0, udp: 60 } });
  assert.deepEqual(d.snapshot().timeouts, { tcp: 3600, tcpfin: 120, udp: 60 });
  assert.throws(
    () => d.exec({ op: "set-timeout", timeouts: { tcp: -1, tcpfin: 0, udp: 0 } }),
    /Invalid tcp timeout "-1"/,
  );
});

test("sync daemon requests answer EOPNOTSUPP until sync is attached", () => {
  const d = director();
  assert.throws(
    () =>
      d.exec({
        op: "start-daemon",
        daemon: {
          state: "master",
          mcastIfn: "eth0",
          syncId: 0,
          syncMaxLen: 0,
          mcastGroup: "",
          mcastPort: 0,
          mcastTtl: 0,
        },
      }),
    (e) => errorBody(e).error.code === "EOPNOTSUPP" && errorBody(e).error.op === "start-daemon",
  );
});

test("snapshot of one service, by key or by id; ESRCH when missing", () => {
  const d = director();
  d.exec(add(VIP));
  d.exec(add(VIP2));
  assert.equal(d.snapshot({ service: VIP2 }).services.length, 1);
  assert.deepEqual(d.snapshot({ service: "tcp 10.0.0.1:80" }).services[0]?.key, VIP);
  assert.throws(
    () => d.snapshot({ service: { ...VIP, port: 81 } }),
    (e) => errorBody(e).error.code === "ESRCH",
  );
});

test("a batch whose timeouts the connection table refuses leaves the service table alone", () => {
  const d = new Director({
    registry: new SchedulerRegistry([rr, wlc]),
    env: { clock: new ManualClock(0), random: () => 0 },
    conns: {
      entries: () => [],
      timeouts: () => ({ tcp: 900, tcpfin: 120, udp: 300 }),
      setTimeouts: (t) => {
        if (t.tcp > 1000) throw new CoreError("EINVAL", "set-timeout", `Invalid tcp timeout "${t.tcp}"`);
      },
    },
  });
  assert.throws(
    () =>
      d.exec({ op: "batch", requests: [add(VIP), { op: "set-timeout", timeouts: { tcp: 5000, tcpfin: 0, udp: 0 } }] }),
    (e) => e instanceof BatchError && e.index === 1,
  );
  assert.equal(d.snapshot().services.length, 0);
});
