// Summing worker reports into the daemon's table: services and destinations matched by id and
// address, counters and connection counts added, entries the workers no longer report zeroed,
// connection deadlines moved onto the main thread's clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../../core/clock.ts";
import { destSpec } from "../../../core/dest.ts";
import { createDefaultRegistry } from "../../../core/sched/all.ts";
import { type ServiceKey, serviceOptions } from "../../../core/service.ts";
import { ServiceTable } from "../../../core/service-table.ts";
import type { CounterSnapshot } from "../../../core/stats/counters.ts";
import { PlaneCounters } from "../counters.ts";
import { mergeConns, mergeReports } from "./aggregate.ts";
import type { WorkerReport } from "./messages.ts";

const key: ServiceKey = { kind: "vip", protocol: "tcp", addr: "192.168.122.22", port: 80 };
const c = (n: number): CounterSnapshot => ({
  conns: n,
  inPkts: 10 * n,
  outPkts: 5 * n,
  inBytes: 100 * n,
  outBytes: 50 * n,
});

function report(index: number, n: number, rx: number): WorkerReport {
  const plane = new PlaneCounters();
  plane.rx = rx;
  return {
    index,
    global: c(n),
    services: [
      {
        id: "",
        stats: c(n),
        dests: [
          { addr: "192.168.122.45", port: 80, stats: c(n), active: n, inactive: 1, persistent: 0 },
          { addr: "192.168.122.46", port: 80, stats: c(0), active: 0, inactive: 0, persistent: 2 },
        ],
      },
    ],
    connections: n + 1,
    dropped: index,
    plane: plane.snapshot(),
    conns: [
      {
        protocol: "tcp",
        caddr: "192.168.122.70",
        cport: 40000 + index,
        vaddr: "192.168.122.22",
        vport: 80,
        daddr: "192.168.122.45",
        dport: 80,
        template: false,
        fwmark: 0,
        stateName: "ESTABLISHED",
        expiresInMs: 1000 * (index + 1),
      },
    ],
  };
}

test("worker reports add up in the daemon's table", () => {
  const table = new ServiceTable(createDefaultRegistry(), { clock: new ManualClock(), random: () => 0 });
  const svc = table.addService(key, serviceOptions(4));
  table.addDest(key, destSpec("192.168.122.45", 80));
  table.addDest(key, destSpec("192.168.122.46", 80));
  const reports = [report(0, 3, 100), report(1, 4, 50)].map((r) => ({
    ...r,
    services: r.services.map((s) => ({ ...s, id: svc.id })),
  }));
  const agg = mergeReports(table, reports);
  assert.deepEqual(table.stats.snapshot(), c(7));
  assert.deepEqual(svc.stats.snapshot(), c(7));
  const a = svc.findDest("192.168.122.45", 80)!;
  const b = svc.findDest("192.168.122.46", 80)!;
  assert.deepEqual(a.stats.snapshot(), c(7));
  assert.deepEqual([a.activeConns, a.inactConns, a.persistConns], [7, 2, 0]);
  assert.deepEqual([b.activeConns, b.inactConns, b.persistConns], [0, 0, 4]);
  assert.equal(agg.connections, 9);
  assert.equal(agg.dropped, 1);
  assert.equal(agg.plane.rx, 150);
  assert.deepEqual(
    agg.perWorker.map((w) => [w.index, w.rx, w.connections]),
    [
      [0, 100, 4],
      [1, 50, 5],
    ],
  );

  // A later collect in which no worker reports the service (no worker has it any more) zeroes it.
  mergeReports(table, []);
  assert.deepEqual(svc.stats.snapshot(), c(0));
  assert.equal(a.activeConns, 0);

  const conns = mergeConns(reports, 5000);
  assert.deepEqual(
    conns.map((x) => [x.cport, x.expiresAt]),
    [
      [40000, 6000],
      [40001, 7000],
    ],
  );
});
