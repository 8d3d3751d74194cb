import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { harness, holdActive, holdInactive } from "./harness.ts";

function short(a: string | undefined): string {
  return a === undefined ? "-" : `rs${a.split(".")[3]}`;
}

// Servers rs1..rsN added in order (list order rsN .. rs1). Per row: weights, active, inactive,
// overloaded servers, and the expected choice of fo and ovf.
const rows: {
  name: string;
  weights: number[];
  act?: number[];
  inact?: number[];
  over?: number[];
  fo: string;
  ovf: string;
}[] = [
  { name: "highest weight wins", weights: [1, 5, 3], fo: "rs2", ovf: "rs2" },
  { name: "ties keep the list head (latest added)", weights: [5, 5, 1], fo: "rs2", ovf: "rs2" },
  { name: "overloaded highest is skipped", weights: [1, 5, 3], over: [2], fo: "rs3", ovf: "rs3" },
  { name: "all weight 0: none", weights: [0, 0], fo: "-", ovf: "-" },
  { name: "ovf overflows once active exceeds weight", weights: [1, 2, 3], act: [0, 0, 4], fo: "rs3", ovf: "rs2" },
  { name: "ovf: active equal to weight is still fine", weights: [1, 2, 3], act: [0, 0, 3], fo: "rs3", ovf: "rs3" },
  { name: "ovf ignores inactive connections", weights: [1, 2, 3], inact: [0, 0, 100], fo: "rs3", ovf: "rs3" },
  { name: "ovf: every server full → none", weights: [1, 1], act: [2, 2], fo: "rs2", ovf: "-" },
];

describe("fo and ovf", () => {
  for (const row of rows) {
    for (const s of ["fo", "ovf"] as const) {
      it(`${s}: ${row.name}`, () => {
        const h = harness(s);
        const ds = row.weights.map((w, i) => h.add(`10.1.0.${i + 1}`, w));
        ds.forEach((d, i) => {
          holdActive(d, row.act?.[i] ?? 0);
          holdInactive(d, row.inact?.[i] ?? 0);
        });
        for (const i of row.over ?? []) (ds[i - 1] as (typeof ds)[0]).overloaded = true;
        assert.equal(short(h.pick()), row[s]);
        if (row[s] === "-") assert.equal(h.svc.lastNoDestination, `${s.toUpperCase()}: no destination available`);
      });
    }
  }

  it("fo fails over when the primary is quiesced and back when restored", () => {
    const h = harness("fo");
    const primary = h.add("10.1.0.1", 100);
    h.add("10.1.0.2", 50);
    assert.equal(short(h.pick()), "rs1");
    h.setWeight(primary, 0);
    assert.equal(short(h.pick()), "rs2");
    h.setWeight(primary, 100);
    assert.equal(short(h.pick()), "rs1");
  });
});
