import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { CoreError } from "../errors.ts";
import { ALL_SCHEDULERS, createDefaultRegistry } from "./all.ts";
import { flow, harness } from "./harness.ts";
import { SchedulerRegistry } from "./registry.ts";

describe("scheduler registry", () => {
  it("offers every kernel scheduler once, by the kernel's names", () => {
    assert.deepEqual(ALL_SCHEDULERS.map((s) => s.name).sort(), [
      "dh",
      "fo",
      "lblc",
      "lblcr",
      "lc",
      "mh",
      "nq",
      "ovf",
      "rr",
      "sed",
      "sh",
      "twos",
      "wlc",
      "wrr",
    ]);
    const r = createDefaultRegistry();
    for (const s of ALL_SCHEDULERS) assert.equal(r.get(s.name), s);
    assert.equal(r.get("nope"), undefined);
    assert.notEqual(createDefaultRegistry(), r);
  });

  it("duplicate names throw", () => {
    assert.throws(() => new SchedulerRegistry([...ALL_SCHEDULERS, ALL_SCHEDULERS[0]!]), /Duplicate scheduler "rr"/);
  });

  it("only sh and mh take -b flags, and only their own", () => {
    const flagged = ALL_SCHEDULERS.filter((s) => (s.flags ?? []).length > 0).map((s) => [s.name, s.flags]);
    assert.deepEqual(flagged, [
      ["sh", ["sh-fallback", "sh-port"]],
      ["mh", ["mh-fallback", "mh-port"]],
    ]);
    const h = harness("rr");
    assert.throws(
      () => h.table.editService(h.key, { ...h.svc.options, scheduler: "sh", schedFlags: ["mh-port"] }),
      (e: unknown) =>
        e instanceof CoreError && e.code === "EINVAL" && /"mh-port" does not apply to "sh"/.test(e.message),
    );
    assert.equal(h.svc.options.scheduler, "rr");
  });

  it("every scheduler picks a lone usable destination and reports when there is none", () => {
    for (const s of ALL_SCHEDULERS) {
      const h = harness(s.name);
      assert.equal(h.pick(flow("192.168.1.1")), undefined, s.name);
      assert.equal(h.svc.noDestinationCount, 1, s.name);
      assert.match(h.svc.lastNoDestination, new RegExp(`^${s.name.toUpperCase()}: no destination available`));
      h.add("10.1.0.1", 1);
      assert.equal(h.pick(flow("192.168.1.1")), "10.1.0.1", s.name);
    }
  });

  it("switching schedulers disposes the old instance and builds the new one from the current list", () => {
    const h = harness("sh");
    h.add("10.1.0.1", 1);
    h.add("10.1.0.2", 1);
    const old = h.svc.sched as unknown as { buckets: readonly unknown[] };
    h.table.editService(h.key, { ...h.svc.options, scheduler: "rr" });
    assert.ok(old.buckets.every((b) => b === undefined));
    assert.deepEqual(h.picks(2), ["10.1.0.2", "10.1.0.1"]);
  });
});
