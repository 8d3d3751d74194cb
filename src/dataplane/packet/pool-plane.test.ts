// PoolPacketPlane over a fake worker pool: a table push the workers fail is logged and fatal
// (onFatal, once), never swallowed, whether it came from an added service (the promise rejects
// too) or a changed or removed one (nobody awaits those); a lost worker takes the same path;
// setVipOwned reaches the pool with the canonical address.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../core/clock.ts";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { destSpec } from "../../core/dest.ts";
import type { LogFields, Logger } from "../../core/log.ts";
import { SchedulerRegistry } from "../../core/sched/registry.ts";
import { rr } from "../../core/sched/rr.ts";
import { serviceOptions } from "../../core/service.ts";
import { ServiceTable } from "../../core/service-table.ts";
import { PoolPacketPlane } from "./pool-plane.ts";
import type { WorkerPoolPort } from "./workers/pool.ts";

class RecordingLog implements Logger {
  readonly errors: { msg: string; fields?: LogFields }[] = [];
  debug(): void {}
  info(): void {}
  warn(): void {}
  error(msg: string, fields?: LogFields): void {
    this.errors.push(fields ? { msg, fields } : { msg });
  }
  child(): Logger {
    return this;
  }
}

/** A pool that records what it is asked and fails table pushes while `failTable` is set. */
function fakePool(state: { failTable: boolean; owned: [string, boolean][]; lost?: (e: Error) => void }) {
  return (_log: Logger, onLost: (err: Error) => void): WorkerPoolPort => {
    state.lost = onLost;
    return {
      size: 2,
      onSynced: undefined,
      start: async () => undefined,
      table: async () => {
        if (state.failTable) throw new Error("A packet worker could not apply the table: boom");
      },
      steer: async () => undefined,
      refresh: () => undefined,
      own: async (addr: string, owned: boolean) => {
        state.owned.push([addr, owned]);
      },
      zero: () => undefined,
      collect: async () => [],
      stop: async () => undefined,
      sync: () => undefined,
      ingest: () => undefined,
      dump: async () => [],
    };
  };
}

function setup() {
  const clock = new ManualClock(0);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 1 });
  const conns = new ConnTable({ services });
  const log = new RecordingLog();
  const fatal: Error[] = [];
  const state: { failTable: boolean; owned: [string, boolean][]; lost?: (e: Error) => void } = {
    failTable: false,
    owned: [],
  };
  const plane = new PoolPacketPlane({
    interface: "mem0",
    services,
    conns,
    clock,
    log,
    workers: 2,
    addr4: "10.0.0.1",
    guard: false,
    onFatal: (e) => fatal.push(e),
    workerPool: fakePool(state),
  });
  const key = { kind: "vip" as const, protocol: "tcp" as const, addr: "10.0.0.10", port: 80 };
  return { services, plane, log, fatal, state, key };
}

test("a failed table push for an added service is logged, fatal and rejects", async () => {
  const { services, plane, log, fatal, state, key } = setup();
  await plane.start();
  assert.equal(fatal.length, 0);
  state.failTable = true;
  const svc = services.addService(key, serviceOptions(4, { scheduler: "rr" }));
  await assert.rejects(plane.serviceAdded(svc), /could not apply the table: boom/);
  assert.equal(fatal.length, 1);
  assert.match(fatal[0]?.message ?? "", /boom/);
  assert.ok(log.errors.some((e) => /could not take the table/.test(e.msg) && /boom/.test(String(e.fields?.err))));
});

test("a failed push after a change or removal nobody awaits is still logged and fatal, once", async () => {
  const { services, plane, log, fatal, state, key } = setup();
  await plane.start();
  const svc = services.addService(key, serviceOptions(4, { scheduler: "rr" }));
  await plane.serviceAdded(svc);
  state.failTable = true;
  services.addDest(key, destSpec("10.0.0.21", 80, { fwd: "droute" }));
  plane.serviceChanged(svc);
  await new Promise((r) => setImmediate(r));
  assert.equal(fatal.length, 1, "a changed service's failed push is fatal");
  services.deleteService(key);
  plane.serviceRemoved(svc);
  await new Promise((r) => setImmediate(r));
  assert.equal(fatal.length, 1, "fatal once");
  assert.equal(log.errors.filter((e) => /could not take the table/.test(e.msg)).length, 2, "each failure logged");
});

test("a lost worker is logged and fatal; setVipOwned reaches the pool with the canonical address", async () => {
  const { plane, log, fatal, state } = setup();
  await plane.start();
  await plane.setVipOwned("2001:DB8::0:1", false);
  assert.deepEqual(state.owned, [["2001:db8::1", false]]);
  state.lost?.(new Error("worker 1 exited with code 1"));
  assert.equal(fatal.length, 1);
  assert.ok(log.errors.some((e) => /packet worker was lost/.test(e.msg)));
});
