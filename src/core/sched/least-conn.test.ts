// lc, wlc, sed and nq: held-open connections (bind/unbind/becameActive drive the counts), ties,
// weight 0, threshold overload, 64-bit precision, and a randomized comparison with a reference
// written from the definition (exact rationals) rather than from the kernel's walk.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Dest, destSpec } from "../dest.ts";
import { harness, holdActive, holdInactive, seededRandom } from "./harness.ts";
import { lc, lcWalk } from "./lc.ts";
import { nq, nqWalk } from "./nq.ts";
import { sed, sedWalk } from "./sed.ts";
import type { SchedService, Scheduler } from "./types.ts";
import { wlc, wlcWalk } from "./wlc.ts";

function short(a: string | undefined): string {
  return a === undefined ? "-" : `rs${a.split(".")[3]}`;
}

describe("least-connection family with held connections", () => {
  // Three servers added rs1, rs2, rs3 (list order rs3 rs2 rs1), weights 1, 2, 3.
  // Each row: active / inactive per server, and each scheduler's expected pick.
  const rows: { name: string; act: number[]; inact: number[]; want: Record<string, string> }[] = [
    {
      name: "idle: ties go to the list head, sed to the best weight",
      act: [0, 0, 0],
      inact: [0, 0, 0],
      want: { lc: "rs3", wlc: "rs3", sed: "rs3", nq: "rs3" },
    },
    {
      name: "short connections only (inactive): lc spreads, sed ignores them",
      act: [0, 0, 0],
      inact: [0, 1, 1],
      want: { lc: "rs1", wlc: "rs1", sed: "rs3", nq: "rs3" },
    },
    {
      name: "one active on rs3: nq takes the first idle server",
      act: [0, 0, 1],
      inact: [0, 0, 0],
      want: { lc: "rs2", wlc: "rs2", sed: "rs2", nq: "rs2" },
    },
    {
      // overheads 256, 512, 768 over weights 1, 2, 3: all 256 → head rs3; sed (2/1, 3/2, 4/3) → rs3
      name: "proportional load: wlc ties to the head",
      act: [1, 2, 3],
      inact: [0, 0, 0],
      want: { lc: "rs1", wlc: "rs3", sed: "rs3", nq: "rs3" },
    },
    {
      // overheads 256, 256, 1280: wlc ratios 256, 128, 426 → rs2; sed ratios 2, 1, 2 → rs2
      name: "rs3 busy",
      act: [1, 1, 5],
      inact: [0, 0, 0],
      want: { lc: "rs2", wlc: "rs2", sed: "rs2", nq: "rs2" },
    },
    {
      // inactive weighs 1/256 of an active for lc/wlc: 1 active (256) vs 300 inactive (300)
      name: "active outweighs inactive 256 to 1",
      act: [1, 0, 0],
      inact: [0, 300, 300],
      // wlc: 256/1, 300/2, 300/3 → rs3
      want: { lc: "rs1", wlc: "rs3", sed: "rs3", nq: "rs3" },
    },
  ];
  const scheds = ["lc", "wlc", "sed", "nq"];
  for (const row of rows) {
    for (const s of scheds) {
      it(`${s}: ${row.name}`, () => {
        const h = harness(s);
        const ds = [h.add("10.1.0.1", 1), h.add("10.1.0.2", 2), h.add("10.1.0.3", 3)];
        ds.forEach((d, i) => {
          holdActive(d, row.act[i] as number);
          holdInactive(d, row.inact[i] as number);
        });
        assert.equal(short(h.pick()), row.want[s]);
      });
    }
  }

  it("connections that close free the server again (unbind)", () => {
    const h = harness("wlc");
    const a = h.add("10.1.0.1");
    h.add("10.1.0.2"); // list rs2 rs1
    holdActive(a, 1);
    const b = h.svc.findDest("10.1.0.2", 80)!;
    holdActive(b, 2);
    assert.equal(short(h.pick()), "rs1");
    a.bind("inactive");
    a.becameActive(); // rs1: 2 active
    b.becameInactive();
    b.unbind("inactive"); // rs2: 1 active
    assert.equal(short(h.pick()), "rs2");
  });

  it("sed with short connections keeps choosing the highest weight; nq the list head", () => {
    for (const [s, want] of [
      ["sed", "rs1"],
      ["nq", "rs3"],
    ] as const) {
      const h = harness(s);
      h.add("10.1.0.1", 3);
      h.add("10.1.0.2", 2);
      h.add("10.1.0.3", 1);
      for (let i = 0; i < 10; i++) {
        const pick = h.svc.sched.schedule({
          family: 4,
          protocol: "tcp",
          saddr: "192.168.1.1",
          sport: 1000 + i,
          daddr: "10.0.0.100",
          dport: 80,
        });
        assert.equal(short(pick?.addr), want);
        pick?.bind("inactive"); // they end in TIME_WAIT: counted inactive
      }
    }
  });

  it("lc behaves like rr with short connections", () => {
    const h = harness("lc");
    h.add("10.1.0.1");
    h.add("10.1.0.2");
    h.add("10.1.0.3");
    const got: string[] = [];
    for (let i = 0; i < 6; i++) {
      const d = h.svc.sched.schedule({
        family: 4,
        protocol: "tcp",
        saddr: "1.1.1.1",
        sport: i,
        daddr: "10.0.0.100",
        dport: 80,
      })!;
      got.push(short(d.addr));
      d.bind("inactive");
    }
    assert.deepEqual(got, ["rs3", "rs2", "rs1", "rs3", "rs2", "rs1"]);
  });

  for (const s of scheds) {
    it(`${s}: weight 0 is never chosen, and all weight 0 means none`, () => {
      const h = harness(s);
      const a = h.add("10.1.0.1", 0);
      h.add("10.1.0.2", 1);
      holdActive(h.svc.findDest("10.1.0.2", 80)!, 50);
      assert.equal(short(h.pick()), "rs2");
      h.setWeight(h.svc.findDest("10.1.0.2", 80)!, 0);
      assert.equal(h.pick(), undefined);
      assert.equal(h.svc.lastNoDestination, `${s.toUpperCase()}: no destination available`);
      h.setWeight(a, 5);
      assert.equal(short(h.pick()), "rs1");
    });

    it(`${s}: the upper threshold overloads a server on bind and the lower one releases it`, () => {
      const h = harness(s);
      const a = h.add("10.1.0.1", 100, { uThreshold: 2, lThreshold: 1 });
      const b = h.add("10.1.0.2", 1);
      holdActive(b, 3);
      assert.equal(short(h.pick()), "rs1");
      holdActive(a, 2); // total 2 >= u 2 → overloaded
      assert.equal(a.overloaded, true);
      assert.equal(short(h.pick()), "rs2");
      a.becameInactive();
      a.unbind("inactive"); // total 1, not < l 1: still overloaded
      assert.equal(a.overloaded, true);
      assert.equal(short(h.pick()), "rs2");
      a.becameInactive();
      a.unbind("inactive"); // total 0 < 1: cleared
      assert.equal(a.overloaded, false);
      assert.equal(short(h.pick()), "rs1");
    });
  }

  it("without a lower threshold the flag clears below 3/4 of the upper", () => {
    const h = harness("wlc");
    const a = h.add("10.1.0.1", 1, { uThreshold: 4 });
    holdInactive(a, 4);
    assert.equal(a.overloaded, true);
    a.unbind("inactive"); // 3*4 = 12 < 12? no
    assert.equal(a.overloaded, true);
    a.unbind("inactive"); // 2*4 = 8 < 12: cleared
    assert.equal(a.overloaded, false);
  });

  it("templates do not count towards the threshold", () => {
    const h = harness("wlc");
    const a = h.add("10.1.0.1", 1, { uThreshold: 1 });
    a.bind("template");
    assert.equal(a.overloaded, false);
    a.bind("inactive");
    assert.equal(a.overloaded, true);
  });

  it("an edit raising the upper threshold clears the flag; lowering it does not", () => {
    const h = harness("wlc");
    const a = h.add("10.1.0.1", 1, { uThreshold: 2 });
    holdInactive(a, 2);
    assert.equal(a.overloaded, true);
    h.table.editDest(h.key, { ...a.spec(), uThreshold: 1 });
    assert.equal(a.overloaded, true);
    h.table.editDest(h.key, { ...a.spec(), uThreshold: 5 });
    assert.equal(a.overloaded, false);
  });
});

describe("least-connection arithmetic", () => {
  it("wlc compares in 64 bits: a difference of 1 at 2^62 decides", () => {
    // A: overhead 2147483646, weight 2147483647; B: overhead 2147483645, weight 2147483646.
    // loh*wB = 2147483646^2 exceeds doh*wA = 2147483646^2 - 1 by one: B is (barely) less loaded.
    // In doubles both products round to the same value and A would be kept.
    const a = dest("10.1.0.1", 2147483647, 8388607, 254);
    const b = dest("10.1.0.2", 2147483646, 8388607, 253);
    assert.equal(a.activeConns * 256 + a.inactConns, 2147483646);
    assert.equal(2147483646 * 2147483646, 2147483645 * 2147483647); // what doubles would see
    assert.equal(wlc.create(fakeService([a, b]), env()).schedule(anyFlow)?.addr, "10.1.0.2");
    assert.equal(wlc.create(fakeService([b, a]), env()).schedule(anyFlow)?.addr, "10.1.0.2");
  });

  it("overhead wraps as a C int once active connections pass 2^23", () => {
    // (2^23 << 8) = 2^31 → INT_MIN: the kernel then sees a negative overhead (lowest load).
    const svc = fakeService([dest("10.1.0.1", 1, 0, 5), dest("10.1.0.2", 1, 2 ** 23, 0)]);
    assert.equal(wlc.create(svc, env()).schedule(anyFlow)?.addr, "10.1.0.2");
    // lc compares as unsigned: 2^31 is the largest
    assert.equal(lc.create(svc, env()).schedule(anyFlow)?.addr, "10.1.0.1");
  });

  const refs: { s: Scheduler; oh: (d: Dest) => number; idleFirst?: boolean; unweighted?: boolean }[] = [
    { s: wlc, oh: (d) => d.activeConns * 256 + d.inactConns },
    { s: sed, oh: (d) => d.activeConns + 1 },
    { s: nq, oh: (d) => d.activeConns + 1, idleFirst: true },
    { s: lc, oh: (d) => d.activeConns * 256 + d.inactConns, unweighted: true },
  ];
  for (const r of refs) {
    it(`${r.s.name} matches the exact-rational reference on 3000 random services`, () => {
      const rand = seededRandom(12345);
      for (let round = 0; round < 3000; round++) {
        const n = 1 + (rand() % 12);
        const big = round % 3 === 0;
        const ds: Dest[] = [];
        for (let i = 0; i < n; i++) {
          const w = rand() % 5 === 0 ? 0 : big ? 1 + (rand() % 0x7fffffff) : 1 + (rand() % 4);
          const act = big ? rand() % 30000 : rand() % 4;
          const inact = big ? rand() % 100000 : rand() % 4;
          const d = dest(`10.2.${i >> 8}.${i & 255}`, w, act, inact);
          d.overloaded = rand() % 7 === 0;
          ds.push(d);
        }
        const got = r.s.create(fakeService(ds), env()).schedule(anyFlow);
        assert.equal(got, reference(ds, r.oh, r.idleFirst === true, r.unweighted === true), `round ${round}`);
      }
    });
  }
});

/** Definition: among usable servers (weight > 0, not overloaded), the first with the least oh/w. */
function reference(ds: Dest[], oh: (d: Dest) => number, idleFirst: boolean, unweighted: boolean): Dest | undefined {
  let best: Dest | undefined;
  for (const d of ds) {
    if (d.overloaded || d.weight === 0) continue;
    if (idleFirst && d.activeConns === 0) return d;
    if (best === undefined) {
      best = d;
      continue;
    }
    const wd = unweighted ? 1n : BigInt(d.weight);
    const wb = unweighted ? 1n : BigInt(best.weight);
    if (BigInt(oh(d)) * wb < BigInt(oh(best)) * wd) best = d;
  }
  return best;
}

function dest(addr: string, weight: number, active: number, inactive: number): Dest {
  const d = new Dest(destSpec(addr, 80, { weight }));
  d.activeConns = active;
  d.inactConns = inactive;
  return d;
}

function fakeService(dests: Dest[]): SchedService {
  return { family: 4, dests, schedFlags: new Set(), reportNoDestination: () => {} };
}

function env() {
  return { clock: { now: () => 0 }, random: seededRandom(1) };
}

const anyFlow = { family: 4, protocol: "tcp", saddr: "1.1.1.1", sport: 1, daddr: "10.0.0.100", dport: 80 } as const;

describe("the exact index against the kernel's walk", () => {
  const walks: [string, (ds: readonly Dest[]) => Dest | undefined][] = [
    ["lc", lcWalk],
    ["wlc", wlcWalk],
    ["sed", sedWalk],
    ["nq", nqWalk],
  ];
  for (const [name, walk] of walks) {
    it(`${name}: same choice after each of 20000 random connection, weight, threshold and list events`, () => {
      const rand = seededRandom(name.length * 1000 + 17);
      const h = harness(name);
      let next = 0;
      const addOne = () => {
        next++;
        h.add(`10.4.${next >> 8}.${next & 255}`, rand() % 6, { uThreshold: rand() % 4 === 0 ? 3 + (rand() % 10) : 0 });
      };
      for (let i = 0; i < 40; i++) addOne();
      const f = { family: 4, protocol: "tcp", saddr: "1.1.1.1", sport: 1, daddr: "10.0.0.100", dport: 80 } as const;
      const indexed = () => (h.svc.sched as unknown as { indexed: boolean }).indexed;
      assert.equal(indexed(), true);
      for (let step = 0; step < 20000; step++) {
        // Cross the index threshold both ways: shrink to 20 destinations, later grow to 45.
        if (step === 7000) {
          while (h.svc.dests.length > 20) h.del(h.svc.dests[rand() % h.svc.dests.length] as Dest);
          assert.equal(indexed(), false);
        }
        if (step === 14000) {
          while (h.svc.dests.length < 45) addOne();
          assert.equal(indexed(), true);
        }
        const ds = h.svc.dests;
        const d = ds[rand() % ds.length] as Dest;
        const r = rand() % 100;
        if (r < 25) d.bind("inactive");
        else if (r < 30) d.bind("active");
        else if (r < 50 && d.inactConns > 0) d.becameActive();
        else if (r < 60 && d.activeConns > 0) d.becameInactive();
        else if (r < 75 && d.inactConns > 0) d.unbind("inactive");
        else if (r < 88 && d.activeConns > 0) d.unbind("active");
        else if (r < 93) h.setWeight(d, rand() % 4 === 0 ? 0 : 1 + (rand() % (rand() % 2 ? 5 : 0x7ffffffe)));
        else if (r < 96) {
          const u = rand() % 3 === 0 ? 0 : 1 + (rand() % 12);
          h.table.editDest(h.key, { ...d.spec(), uThreshold: u, lThreshold: u > 0 && rand() % 2 ? rand() % u : 0 });
        } else if (r < 98) addOne();
        else if (ds.length > 5) h.del(d);
        assert.equal(h.svc.sched.schedule(f), walk(h.svc.dests), `step ${step}`);
      }
    });
  }

  it("a destination removed from the service no longer reports to the index", () => {
    const h = harness("wlc");
    const a = h.add("10.1.0.1");
    for (let i = 2; i <= 40; i++) h.add(`10.1.0.${i}`);
    assert.notEqual(a.loadWatcher, undefined);
    a.bind("inactive"); // keeps it in the trash
    h.del(a);
    assert.equal(a.loadWatcher, undefined);
    h.table.editService(h.key, { ...h.svc.options, scheduler: "rr" });
    assert.ok(h.svc.dests.every((d) => d.loadWatcher === undefined));
  });

  it("small services walk and carry no index", () => {
    const h = harness("wlc");
    for (let i = 1; i < 32; i++) h.add(`10.1.0.${i}`);
    assert.ok(h.svc.dests.every((d) => d.loadWatcher === undefined));
    h.add("10.1.0.32");
    assert.ok(h.svc.dests.every((d) => d.loadWatcher !== undefined));
  });
});
