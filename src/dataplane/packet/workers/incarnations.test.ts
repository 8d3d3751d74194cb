// A service deleted and added again between two table pushes is a new service on the workers too
// (counters from zero), while an unchanged one keeps its object and counters.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../../core/clock.ts";
import { destSpec } from "../../../core/dest.ts";
import { createDefaultRegistry } from "../../../core/sched/all.ts";
import { type ServiceKey, serviceOptions } from "../../../core/service.ts";
import { ServiceTable } from "../../../core/service-table.ts";
import { applyChanges, diffTable, imageOf } from "../../../core/table-image.ts";
import { Incarnations, ReplicaSerials } from "./incarnations.ts";

const key = (port: number): ServiceKey => ({ kind: "vip", protocol: "tcp", addr: "10.0.0.1", port });
const table = () => new ServiceTable(createDefaultRegistry(), { clock: new ManualClock(), random: () => 0 });

test("re-created services start afresh on the replica; unchanged ones keep their counters", () => {
  const primary = table();
  const replica = table();
  const inc = new Incarnations();
  const seen = new ReplicaSerials();
  const push = () => {
    const image = imageOf(primary);
    const serials = inc.serials(primary);
    seen.forgetReplaced(replica, image, serials);
    applyChanges(replica, diffTable(image, replica));
    seen.record(image, serials);
  };
  for (const port of [80, 443]) {
    primary.addService(key(port), serviceOptions(4));
    primary.addDest(key(port), destSpec("10.0.1.1", port));
  }
  push();
  const kept = replica.get(key(443))!;
  const old = replica.get(key(80))!;
  old.stats.conns = 5;
  kept.stats.conns = 7;
  // ipvsadm -D then -A of an equal service, in one change.
  primary.deleteService(key(80));
  primary.addService(key(80), serviceOptions(4));
  primary.addDest(key(80), destSpec("10.0.1.1", 80));
  push();
  assert.notEqual(replica.get(key(80)), old, "a new service object");
  assert.equal(replica.get(key(80))!.stats.conns, 0);
  assert.equal(replica.get(key(80))!.dests.length, 1);
  assert.equal(replica.get(key(443)), kept);
  assert.equal(kept.stats.conns, 7);
  // Without the serials the by-value diff would have kept the old one.
  assert.equal(diffTable(imageOf(primary), replica).length, 0);
});
