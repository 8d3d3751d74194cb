import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Dest, destSpec } from "../dest.ts";
import { harness, seededRandom } from "./harness.ts";
import type { SchedService, SchedulerInstance } from "./types.ts";
import { createLiteralWrr, wrr } from "./wrr.ts";

/** Short names: 10.1.0.N → rsN. */
function names(xs: string[]): string[] {
  return xs.map((a) => (a === "-" ? a : `rs${a.split(".")[3]}`));
}

describe("wrr", () => {
  it("A=4, B=3, C=2 in a fresh service: A A B A B C A B C", () => {
    // Built with all destinations present before the scheduler is bound (an -E switching to wrr).
    const h = harness("rr");
    h.add("10.1.0.3", 2);
    h.add("10.1.0.2", 3);
    h.add("10.1.0.1", 4); // list: 1(4) 2(3) 3(2)
    h.table.editService(h.key, { ...h.svc.options, scheduler: "wrr" });
    assert.deepEqual(names(h.picks(18)), [
      ...["rs1", "rs1", "rs2", "rs1", "rs2", "rs3", "rs1", "rs2", "rs3"],
      ...["rs1", "rs1", "rs2", "rs1", "rs2", "rs3", "rs1", "rs2", "rs3"],
    ]);
  });

  it("rs1=3, rs2=2, rs3=1 added one by one (as observed on a kernel)", () => {
    const h = harness("wrr");
    h.add("10.1.0.1", 3);
    h.add("10.1.0.2", 2);
    h.add("10.1.0.3", 1);
    assert.deepEqual(names(h.picks(12)), [
      "rs3",
      "rs2",
      "rs1",
      "rs1",
      "rs2",
      "rs1",
      "rs3",
      "rs2",
      "rs1",
      "rs1",
      "rs2",
      "rs1",
    ]);
  });

  it("the seeds' NAT 2:1 gives 2/3 and 1/3", () => {
    const h = harness("wrr");
    h.add("10.1.0.1", 2);
    h.add("10.1.0.2", 1);
    const got = names(h.picks(300));
    assert.equal(got.filter((x) => x === "rs1").length, 200);
    assert.equal(got.filter((x) => x === "rs2").length, 100);
  });

  it("gcd steps: weights 4 and 2 alternate cw 3, 1", () => {
    const h = harness("rr");
    h.add("10.1.0.2", 2);
    h.add("10.1.0.1", 4);
    h.table.editService(h.key, { ...h.svc.options, scheduler: "wrr" });
    // di = 2, mw = 4 - 1 = 3: pass cw=3 → rs1; cw=1 → rs1, rs2
    assert.deepEqual(names(h.picks(6)), ["rs1", "rs1", "rs2", "rs1", "rs1", "rs2"]);
  });

  it("a weight edit resets the cursor to the head and rounds cw to the new gcd", () => {
    const h = harness("wrr");
    const a = h.add("10.1.0.1", 3);
    h.add("10.1.0.2", 3); // list 2 1, di 3, mw 1
    assert.deepEqual(names(h.picks(3)), ["rs2", "rs1", "rs2"]);
    h.setWeight(a, 6); // di 3, mw 4; cw (1) <= mw → (1/3)*3+1 = 1
    assert.deepEqual(names(h.picks(6)), ["rs2", "rs1", "rs1", "rs2", "rs1", "rs1"]);
  });

  it("weight 0 destinations are never chosen; all zero → none", () => {
    const h = harness("wrr");
    const a = h.add("10.1.0.1", 0);
    assert.deepEqual(h.picks(2), ["-", "-"]);
    assert.equal(h.svc.lastNoDestination, "WRR: no destination available");
    h.add("10.1.0.2", 1);
    assert.deepEqual(names(h.picks(3)), ["rs2", "rs2", "rs2"]);
    h.setWeight(a, 1);
    assert.deepEqual(names(h.picks(4)), ["rs2", "rs1", "rs2", "rs1"]);
  });

  it("all overloaded: the kernel's overloaded message, from the head and from mid-list", () => {
    const h = harness("wrr");
    const a = h.add("10.1.0.1", 2);
    const b = h.add("10.1.0.2", 1);
    a.overloaded = true;
    b.overloaded = true;
    assert.equal(h.pick(), undefined);
    assert.equal(h.svc.lastNoDestination, "WRR: no destination available: all destinations are overloaded");
    a.overloaded = false;
    assert.deepEqual(names(h.picks(2)), ["rs1", "rs1"]);
    a.overloaded = true;
    assert.equal(h.pick(), undefined);
    b.overloaded = false;
    assert.deepEqual(names(h.picks(2)), ["rs2", "rs2"]);
  });

  it("an overloaded destination is passed over while the others keep their rhythm", () => {
    const h = harness("wrr");
    h.add("10.1.0.1", 4);
    const b = h.add("10.1.0.2", 4);
    b.overloaded = true;
    assert.deepEqual(names(h.picks(3)), ["rs1", "rs1", "rs1"]);
    b.overloaded = false;
    assert.deepEqual(names(h.picks(2)), ["rs2", "rs1"]);
  });

  it("IPv6 destinations work the same", () => {
    const h = harness("wrr", { vip: "2001:db8::100" });
    h.table.addDest(h.key, destSpec("2001:db8::1", 80, { weight: 2 }));
    h.table.addDest(h.key, destSpec("2001:db8::2", 80, { weight: 1 }));
    // Added one by one: cw is 1 after the second add, so the first round serves everyone once.
    assert.deepEqual(h.picks(6), [
      "2001:db8::2",
      "2001:db8::1",
      "2001:db8::1",
      "2001:db8::2",
      "2001:db8::1",
      "2001:db8::1",
    ]);
  });
});

describe("wrr pass skipping", () => {
  it("matches the pass-by-pass kernel loop over 30000 random decisions and changes", () => {
    const rand = seededRandom(4242);
    for (let round = 0; round < 60; round++) {
      const dests: Dest[] = [];
      const svc: SchedService = { family: 4, dests, schedFlags: new Set(), reportNoDestination: () => {} };
      const fast = wrr.create(svc, { clock: { now: () => 0 }, random: rand });
      const slow = createLiteralWrr(svc);
      const both = (fn: (s: SchedulerInstance) => void) => {
        fn(fast);
        fn(slow);
      };
      const f = { family: 4, protocol: "tcp", saddr: "1.1.1.1", sport: 1, daddr: "10.0.0.100", dport: 80 } as const;
      for (let step = 0; step < 500; step++) {
        const r = rand() % 100;
        if (r < 6 || dests.length === 0) {
          const d = new Dest(destSpec(`10.5.${round}.${step & 255}`, step, { weight: randomWeight(rand) }));
          dests.unshift(d);
          both((s) => s.addDest?.(d));
        } else if (r < 9 && dests.length > 1) {
          const [d] = dests.splice(rand() % dests.length, 1);
          both((s) => s.delDest?.(d as Dest));
        } else if (r < 14) {
          const d = dests[rand() % dests.length] as Dest;
          d.update({ ...d.spec(), weight: randomWeight(rand) });
          both((s) => s.updDest?.(d));
        } else if (r < 22) {
          const d = dests[rand() % dests.length] as Dest;
          d.overloaded = !d.overloaded;
        } else {
          assert.equal(fast.schedule(f), slow.schedule(f), `round ${round} step ${step}`);
        }
      }
    }
  });

  it("weights 65535 and 1 with the heavy one overloaded: the light one, at once", () => {
    const h = harness("wrr");
    const heavy = h.add("10.1.0.1", 65535);
    h.add("10.1.0.2", 1);
    heavy.overloaded = true;
    const t = performance.now();
    assert.deepEqual(names(h.picks(3)), ["rs2", "rs2", "rs2"]);
    assert.ok(performance.now() - t < 1000);
  });
});

function randomWeight(rand: () => number): number {
  const r = rand() % 10;
  return r === 0 ? 0 : r < 6 ? 1 + (rand() % 6) : r < 9 ? 1 + (rand() % 3000) : 6 * (1 + (rand() % 500));
}
