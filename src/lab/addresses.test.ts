// The seeds' address plans: seed 001's and seed 000's real-server addresses, and a clear refusal
// of an unknown plan or a real server past the /24.
import assert from "node:assert/strict";
import { test } from "node:test";
import { addressPlan, realServerAddress, SEED000_ADDRESSES, SEED001_ADDRESSES } from "./addresses.ts";

test("seed 001 numbers real servers from .45 on; seed 000 uses .55 and .57, then continues", () => {
  assert.deepEqual(
    [0, 1, 2].map((i) => realServerAddress(SEED001_ADDRESSES, i)),
    ["192.168.122.45", "192.168.122.46", "192.168.122.47"],
  );
  assert.deepEqual(
    [0, 1, 2, 3].map((i) => realServerAddress(SEED000_ADDRESSES, i)),
    ["172.20.120.55", "172.20.120.57", "172.20.120.58", "172.20.120.59"],
  );
  assert.equal(SEED000_ADDRESSES.vip, "172.20.120.53");
  assert.equal(SEED000_ADDRESSES.director, "172.20.120.54");
  assert.equal(SEED000_ADDRESSES.client, "172.20.120.50");
});

test("plans by name; unknown names and exhausted subnets are refused with the value quoted", () => {
  assert.equal(addressPlan("seed000"), SEED000_ADDRESSES);
  assert.throws(() => addressPlan("seed009"), /--addresses "seed009" must be one of seed001, seed000/);
  assert.throws(() => realServerAddress(SEED001_ADDRESSES, 300), /no address left in 192\.168\.122\.0\/24/);
});

test("no plan gives two roles one address", () => {
  for (const p of [SEED001_ADDRESSES, SEED000_ADDRESSES]) {
    const used = [p.client, p.director, p.vip, p.fullnatLocal, ...[0, 1, 2, 3].map((i) => realServerAddress(p, i))];
    assert.equal(new Set(used).size, used.length, p.name);
  }
});
