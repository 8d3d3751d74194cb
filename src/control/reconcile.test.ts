// Reconciling a desired state against a live service table: the fewest operations, in an order
// that applies cleanly, leaving unchanged services and destinations (and their counters) alone.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { DesiredState } from "../config/desired.ts";
import { ManualClock } from "../core/clock.ts";
import { destSpec } from "../core/dest.ts";
import { createDefaultRegistry } from "../core/sched/all.ts";
import { serviceOptions } from "../core/service.ts";
import { ServiceTable } from "../core/service-table.ts";
import type { ExecRequest } from "./api/protocol.ts";
import { Director } from "./executor.ts";
import { reconcile } from "./reconcile.ts";

const key = (port: number) => ({ kind: "vip" as const, protocol: "tcp" as const, addr: "10.0.0.1", port });

function setup(): { table: ServiceTable; director: Director } {
  const registry = createDefaultRegistry();
  const env = { clock: new ManualClock(), random: () => 0 };
  const table = new ServiceTable(registry, env);
  return { table, director: new Director({ registry, env, services: table }) };
}

function desired(...services: [number, string, [number, number][]][]): DesiredState {
  return {
    services: services.map(([port, sched, dests]) => ({
      key: key(port),
      options: serviceOptions(4, { scheduler: sched }),
      dests: dests.map(([rport, w]) => destSpec("10.0.1.1", rport, { fwd: "masq", weight: w })),
    })),
  };
}

function apply(director: Director, reqs: ExecRequest[]): void {
  director.exec({ op: "batch", requests: reqs });
}

test("from empty: add each service, then its destinations in the desired order", () => {
  const { table } = setup();
  const ops = reconcile(
    desired([
      80,
      "rr",
      [
        [1, 1],
        [2, 1],
      ],
    ]),
    table,
  );
  assert.deepEqual(
    ops.map((o) => (o.op === "add-dest" ? `${o.op} ${o.dest.port}` : o.op)),
    ["add-service", "add-dest 1", "add-dest 2"],
  );
});

test("equal states need nothing; changes are edits, stale objects are deleted", () => {
  const { table, director } = setup();
  apply(
    director,
    reconcile(
      desired(
        [
          80,
          "rr",
          [
            [1, 1],
            [2, 1],
          ],
        ],
        [81, "wlc", [[1, 1]]],
      ),
      table,
    ),
  );
  assert.deepEqual(
    reconcile(
      desired(
        [
          80,
          "rr",
          [
            [1, 1],
            [2, 1],
          ],
        ],
        [81, "wlc", [[1, 1]]],
      ),
      table,
    ),
    [],
  );
  const svc80 = table.get(key(80));
  assert.ok(svc80);
  svc80.stats.conns = 42;
  const ops = reconcile(
    desired([
      80,
      "wrr",
      [
        [2, 3],
        [3, 1],
      ],
    ]),
    table,
  );
  assert.deepEqual(
    ops.map((o) => `${o.op}${"key" in o && o.key ? ` ${o.key.kind === "vip" ? o.key.port : ""}` : ""}`),
    ["del-service 81", "edit-service 80", "del-dest 80", "edit-dest 80", "add-dest 80"],
  );
  apply(director, ops);
  assert.equal(table.get(key(80)), svc80, "the service object (and its counters) survives");
  assert.equal(svc80.stats.conns, 42);
  assert.equal(svc80.options.scheduler, "wrr");
  assert.deepEqual(
    svc80.dests.map((d) => [d.port, d.weight]),
    [
      [3, 1],
      [2, 3],
    ],
  );
  assert.equal(table.get(key(81)), undefined);
});

test("adaptDest is applied before comparing (no edit loop for a plane's mapping)", () => {
  const { table, director } = setup();
  const dr: DesiredState = {
    services: [{ key: key(80), options: serviceOptions(4, { scheduler: "rr" }), dests: [destSpec("10.0.1.1", 80)] }],
  };
  const toMasq = { adaptDest: (_k: unknown, d: ReturnType<typeof destSpec>) => ({ ...d, fwd: "masq" as const }) };
  apply(director, reconcile(dr, table, toMasq));
  assert.equal(table.get(key(80))?.dests[0]?.fwd, "masq");
  assert.deepEqual(reconcile(dr, table, toMasq), []);
});

test("a malformed desired key is an error naming the value", () => {
  const { table } = setup();
  const bad: DesiredState = {
    services: [
      { key: { kind: "vip", protocol: "tcp", addr: "10.0.0.300", port: 80 }, options: serviceOptions(4), dests: [] },
    ],
  };
  assert.throws(() => reconcile(bad, table), /Invalid service address "10\.0\.0\.300"/);
});
