import assert from "node:assert/strict";
import { test } from "node:test";
import { announcedVips, decideVips, type ServiceServeView } from "./decide.ts";

const svc = (addr: string | undefined, quorumUp: boolean | undefined, servingDests = 1): ServiceServeView => ({
  addr,
  quorumUp,
  servingDests,
});

test("a VIP is announced when every service on it holds quorum (or, unsupervised, has a serving destination)", () => {
  const cases: { name: string; services: ServiceServeView[]; draining?: boolean; want: string[] }[] = [
    { name: "one healthy service", services: [svc("10.0.0.1", true)], want: ["10.0.0.1"] },
    { name: "quorum lost", services: [svc("10.0.0.1", false)], want: [] },
    { name: "one port lost quorum", services: [svc("10.0.0.1", true), svc("10.0.0.1", false)], want: [] },
    { name: "unsupervised with a destination", services: [svc("10.0.0.1", undefined, 2)], want: ["10.0.0.1"] },
    { name: "unsupervised with none", services: [svc("10.0.0.1", undefined, 0)], want: [] },
    { name: "fwmark only", services: [svc(undefined, true)], want: [] },
    {
      name: "two VIPs, one down",
      services: [svc("10.0.0.2", true), svc("10.0.0.1", false), svc("2001:db8::1", true)],
      want: ["10.0.0.2", "2001:db8::1"],
    },
    { name: "draining withdraws all", services: [svc("10.0.0.1", true)], draining: true, want: [] },
    { name: "no services", services: [], want: [] },
  ];
  for (const c of cases) assert.deepEqual(announcedVips(decideVips(c.services, c.draining ?? false)), c.want, c.name);
});

test("each decision carries its reason", () => {
  const d = decideVips([svc("10.0.0.1", true), svc("10.0.0.1", false), svc("10.0.0.2", undefined, 0)], false);
  assert.deepEqual(
    d.map((x) => [x.vip, x.announce, x.reason]),
    [
      ["10.0.0.1", false, "1 of 2 services lost quorum"],
      ["10.0.0.2", false, "1 of 1 services have no destination with weight above 0"],
    ],
  );
  assert.equal(decideVips([svc("10.0.0.1", true)], true)[0]?.reason, "draining");
});

test("a hold (a sync backup still resyncing) announces nothing and says why; draining says draining", () => {
  const hold = "waiting for the sync backup's bulk resync";
  const d = decideVips([svc("10.0.0.1", true), svc("10.0.0.2", undefined, 1)], false, hold);
  assert.deepEqual(
    d.map((x) => [x.vip, x.announce, x.reason]),
    [
      ["10.0.0.1", false, hold],
      ["10.0.0.2", false, hold],
    ],
  );
  assert.equal(decideVips([svc("10.0.0.1", true)], true, hold)[0]?.reason, "draining");
  assert.deepEqual(announcedVips(decideVips([svc("10.0.0.1", true)], false, undefined)), ["10.0.0.1"]);
});
