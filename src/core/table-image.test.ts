// Table images: a replica kept equal to a primary by applying diffTable(imageOf(primary), replica)
// after each change has the same services, options and destination order (so rr/wrr walk the
// same sequence), and keeps its unchanged service and destination objects (connections, counters).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "./clock.ts";
import { destSpec } from "./dest.ts";
import { createDefaultRegistry } from "./sched/all.ts";
import { type ServiceKey, serviceOptions } from "./service.ts";
import { ServiceTable } from "./service-table.ts";
import { applyChanges, diffTable, imageOf } from "./table-image.ts";

const key = (port: number): ServiceKey => ({ kind: "vip", protocol: "tcp", addr: "10.0.0.1", port });

function table(): ServiceTable {
  return new ServiceTable(createDefaultRegistry(), { clock: new ManualClock(), random: () => 0 });
}

function sync(primary: ServiceTable, replica: ServiceTable): number {
  const changes = diffTable(imageOf(primary), replica);
  applyChanges(replica, changes);
  return changes.length;
}

function shape(t: ServiceTable): string[] {
  return t
    .services()
    .map(
      (s) =>
        `${s.id} ${s.options.scheduler} ${s.options.persistent ? s.options.timeout : "-"} ${s.dests.map((d) => `${d.endpoint}:${d.fwd}:${d.weight}`).join(",")}`,
    );
}

test("a replica follows every kind of change and ends equal, destination order included", () => {
  const p = table();
  const r = table();
  p.addService(key(80), serviceOptions(4, { scheduler: "rr" }));
  for (const h of [1, 2, 3]) p.addDest(key(80), destSpec(`10.0.1.${h}`, 80, { fwd: "droute", weight: h }));
  assert.ok(sync(p, r) > 0);
  assert.deepEqual(shape(r), shape(p));
  // The kernel's head insertion: the list is newest first, and the replica agrees.
  assert.deepEqual(
    r.get(key(80))!.dests.map((d) => d.addr),
    ["10.0.1.3", "10.0.1.2", "10.0.1.1"],
  );
  p.addService(key(443), serviceOptions(4, { scheduler: "wlc", persistent: true, timeout: 600 }));
  p.addDest(key(443), destSpec("10.0.1.9", 443, { fwd: "masq", weight: 5 }));
  p.editDest(key(80), destSpec("10.0.1.2", 80, { fwd: "droute", weight: 0 }));
  p.deleteDest(key(80), "10.0.1.1", 80);
  p.addDest(key(80), destSpec("10.0.1.4", 80, { fwd: "droute", weight: 1 }));
  p.editService(key(80), serviceOptions(4, { scheduler: "wrr" }));
  sync(p, r);
  assert.deepEqual(shape(r), shape(p));
  p.deleteService(key(443));
  sync(p, r);
  assert.deepEqual(shape(r), shape(p));
  assert.equal(sync(p, r), 0, "an equal replica needs no change");
});

test("unchanged services and destinations keep their objects and counters", () => {
  const p = table();
  const r = table();
  p.addService(key(80), serviceOptions(4));
  p.addDest(key(80), destSpec("10.0.1.1", 80));
  sync(p, r);
  const svc = r.get(key(80))!;
  const dest = svc.dests[0]!;
  dest.stats.inPkts = 7;
  p.addDest(key(80), destSpec("10.0.1.2", 80));
  sync(p, r);
  assert.equal(r.get(key(80)), svc);
  assert.equal(r.get(key(80))!.findDest("10.0.1.1", 80), dest);
  assert.equal(dest.stats.inPkts, 7);
});
