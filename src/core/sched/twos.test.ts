import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Dest, destSpec } from "../dest.ts";
import { harness, holdActive, seededRandom } from "./harness.ts";
import { twos } from "./twos.ts";
import type { SchedService } from "./types.ts";

/** A random() value for which get_random_u32_below(ceil) returns r (without rejection). */
function sampleFor(r: number, ceil: number): number {
  return Math.floor(((r + 1) * 2 ** 32 - 1) / ceil);
}

function service(dests: Dest[]): SchedService {
  return { family: 4, dests, schedFlags: new Set(), reportNoDestination: () => {} };
}

function dest(addr: string, weight: number, active = 0): Dest {
  const d = new Dest(destSpec(addr, 80, { weight }));
  d.activeConns = active;
  return d;
}

const anyFlow = { family: 4, protocol: "tcp", saddr: "1.1.1.1", sport: 1, daddr: "10.0.0.100", dport: 80 } as const;

describe("twos", () => {
  // List a(1) b(2) c(3): total 6, draws in [0, 6]. a takes r <= 1, b r in 2..3, c r in 4..6.
  const cases: { r1: number; r2: number; act: [number, number, number]; want: string }[] = [
    { r1: 0, r2: 0, act: [0, 0, 0], want: "a" },
    { r1: 1, r2: 2, act: [0, 0, 0], want: "a" }, // w2*0 > w1*0 is false: first choice
    { r1: 1, r2: 2, act: [1, 0, 0], want: "b" }, // 2*256 > 1*0
    { r1: 6, r2: 2, act: [0, 1, 2], want: "b" }, // c: oh 512 w 3; b: oh 256 w 2 → 2*512 > 3*256
    { r1: 6, r2: 2, act: [0, 2, 3], want: "c" }, // 2*768 > 3*512? 1536 > 1536 no → c
    { r1: 4, r2: 3, act: [0, 0, 0], want: "c" },
  ];
  for (const c of cases) {
    it(`draws ${c.r1}, ${c.r2} with active ${c.act.join("/")} → ${c.want}`, () => {
      const ds = [dest("a", 1, c.act[0]), dest("b", 2, c.act[1]), dest("c", 3, c.act[2])].map((d, i) => {
        Object.defineProperty(d, "addr", { value: "abc"[i] });
        return d;
      });
      const seq = [sampleFor(c.r1, 7), sampleFor(c.r2, 7)];
      let k = 0;
      const inst = twos.create(service(ds), { clock: { now: () => 0 }, random: () => seq[k++] as number });
      assert.equal(inst.schedule(anyFlow)?.addr, c.want);
      assert.equal(k, 2);
    });
  }

  it("skips weight 0 and overloaded servers in the sum and the walk", () => {
    const ds = [dest("10.1.0.1", 0), dest("10.1.0.2", 5), dest("10.1.0.3", 5)];
    (ds[2] as Dest).overloaded = true;
    const inst = twos.create(service(ds), { clock: { now: () => 0 }, random: seededRandom(3) });
    for (let i = 0; i < 50; i++) assert.equal(inst.schedule(anyFlow)?.addr, "10.1.0.2");
  });

  it("none when nothing is usable", () => {
    const h = harness("twos");
    h.add("10.1.0.1", 0);
    assert.equal(h.pick(), undefined);
    assert.equal(h.svc.lastNoDestination, "TWOS: no destination available");
  });

  it("idle servers: picks follow the weights (seeded, 60000 draws)", () => {
    const h = harness("twos", { seed: 2024 });
    h.add("10.1.0.1", 1);
    h.add("10.1.0.2", 2);
    h.add("10.1.0.3", 3); // list rs3 rs2 rs1, total 6, first choice wins (all overheads 0)
    const n = 60000;
    const counts = new Map<string, number>();
    for (const a of h.picks(n)) counts.set(a, (counts.get(a) ?? 0) + 1);
    // P(rs3) = 4/7 (r in 0..3), P(rs2) = 2/7, P(rs1) = 1/7: the +1 of the inclusive range lands on the head.
    const expect: [string, number][] = [
      ["10.1.0.3", 4 / 7],
      ["10.1.0.2", 2 / 7],
      ["10.1.0.1", 1 / 7],
    ];
    for (const [addr, p] of expect) {
      const sigma = Math.sqrt(n * p * (1 - p));
      assert.ok(Math.abs((counts.get(addr) ?? 0) - n * p) < 5 * sigma, `${addr}: ${counts.get(addr)} vs ${n * p}`);
    }
  });

  it("under load, two choices steer new connections away from the busier server", () => {
    const h = harness("twos", { seed: 77 });
    const a = h.add("10.1.0.1", 1);
    const b = h.add("10.1.0.2", 1);
    holdActive(a, 10);
    let toB = 0;
    for (let i = 0; i < 4000; i++) if (h.pick() === b.addr) toB++;
    // b wins unless both draws land on a: P(both a) = (1/3)^2 (a is second in the list: r in 2..2 of 0..2).
    const p = 1 - 1 / 9;
    const sigma = Math.sqrt(4000 * p * (1 - p));
    assert.ok(Math.abs(toB - 4000 * p) < 5 * sigma, `${toB}`);
  });
});
