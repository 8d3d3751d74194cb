// poolDests: which destinations a health-checked service holds, table-driven over alive flags,
// inhibit, quorum state and the sorry server (with and without sorry_server_inhibit).

import assert from "node:assert/strict";
import { test } from "node:test";
import { destSpec } from "../../core/dest.ts";
import { liveWeight, type PoolServer, poolDests } from "./pool.ts";

const srv = (n: number, alive: boolean, inhibit = false, weight = 1): PoolServer => ({
  dest: destSpec(`10.0.0.${n}`, 80, { weight: 9 }),
  alive,
  weight,
  inhibit,
});
const sorry = { dest: destSpec("10.0.0.99", 80, { weight: 1 }), inhibit: false };
const sorryQ = { ...sorry, inhibit: true };

function show(m: Map<string, { addr: string; weight: number }>): string[] {
  return [...m.values()].map((d) => `${d.addr}=${d.weight}`);
}

test("poolDests", () => {
  const cases: [string, PoolServer[], typeof sorry | undefined, boolean, string[]][] = [
    ["alive in with effective weight", [srv(1, true, false, 3), srv(2, false)], undefined, true, ["10.0.0.1=3"]],
    ["dead inhibited at 0", [srv(1, false, true)], undefined, true, ["10.0.0.1=0"]],
    ["quorum lost without sorry: alive stay", [srv(1, true)], undefined, false, ["10.0.0.1=1"]],
    [
      "quorum lost with sorry: only sorry (inhibited at 0)",
      [srv(1, true), srv(2, true, true), srv(3, false)],
      sorry,
      false,
      ["10.0.0.2=0", "10.0.0.99=1"],
    ],
    ["quorum up: sorry absent", [srv(1, true)], sorry, true, ["10.0.0.1=1"]],
    ["quorum up: sorry_server_inhibit at 0", [srv(1, true)], sorryQ, true, ["10.0.0.1=1", "10.0.0.99=0"]],
    ["quorum lost: sorry_server_inhibit at its weight", [srv(1, false)], sorryQ, false, ["10.0.0.99=1"]],
  ];
  for (const [name, servers, s, up, want] of cases) assert.deepEqual(show(poolDests(servers, s, up)), want, name);
});

test("liveWeight sums alive servers only", () => {
  assert.equal(liveWeight([srv(1, true, false, 2), srv(2, false, false, 5), srv(3, true, true, 3)]), 5);
});
