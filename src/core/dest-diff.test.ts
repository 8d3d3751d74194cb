// The one destination diff (reload and health supervisor): table-driven, have → want → requests.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type DestSpec, destSpec } from "./dest.ts";
import { destId, diffDests } from "./dest-diff.ts";
import type { ServiceKey } from "./service.ts";

const KEY: ServiceKey = { kind: "vip", protocol: "tcp", addr: "10.0.0.1", port: 80 };
const d = (addr: string, port: number, over: Partial<DestSpec> = {}): DestSpec => ({
  ...destSpec(addr, port),
  ...over,
});

/** Requests written short: "del 10.0.0.2:80", "add 10.0.0.3:80 w1", "edit 10.0.0.2:80 w5". */
function short(reqs: ReturnType<typeof diffDests>): string[] {
  return reqs.map((r) => {
    if (r.op === "del-dest") return `del ${r.addr}:${r.port}`;
    if (r.op === "add-dest") return `add ${r.dest.addr}:${r.dest.port} w${r.dest.weight}`;
    if (r.op === "edit-dest") return `edit ${r.dest.addr}:${r.dest.port} w${r.dest.weight}`;
    return r.op;
  });
}

const CASES: { name: string; have: DestSpec[]; want: DestSpec[]; owns?: (x: DestSpec) => boolean; expect: string[] }[] =
  [
    { name: "equal sets: nothing to do", have: [d("10.0.1.1", 80)], want: [d("10.0.1.1", 80)], expect: [] },
    {
      name: "deletions first, then additions and edits in the wanted order",
      have: [d("10.0.1.1", 80), d("10.0.1.2", 80)],
      want: [d("10.0.1.3", 80), d("10.0.1.1", 80, { weight: 5 })],
      expect: ["del 10.0.1.2:80", "add 10.0.1.3:80 w1", "edit 10.0.1.1:80 w5"],
    },
    {
      name: "a different method, threshold or tunnel option is an edit in place",
      have: [d("10.0.1.1", 80), d("10.0.1.2", 80), d("10.0.1.3", 80)],
      want: [
        d("10.0.1.1", 80, { fwd: "tunnel" }),
        d("10.0.1.2", 80, { uThreshold: 10 }),
        d("10.0.1.3", 80, { tun: { type: "gue", port: 6080, nocsum: false, csum: false, remcsum: false } }),
      ],
      expect: ["edit 10.0.1.1:80 w1", "edit 10.0.1.2:80 w1", "edit 10.0.1.3:80 w1"],
    },
    {
      name: "addresses match in canonical form (IPv6 spelled two ways is one destination)",
      have: [d("2001:db8:0:0::1", 80)],
      want: [d("2001:db8::1", 80)],
      expect: [],
    },
    {
      name: "the port is part of the identity",
      have: [d("10.0.1.1", 80)],
      want: [d("10.0.1.1", 8080)],
      expect: ["del 10.0.1.1:80", "add 10.0.1.1:8080 w1"],
    },
    {
      name: "only owned destinations are deleted (the supervisor leaves hand-added ones)",
      have: [d("10.0.1.1", 80), d("10.0.1.9", 80)],
      want: [],
      owns: (x) => x.addr !== "10.0.1.9",
      expect: ["del 10.0.1.1:80"],
    },
  ];

for (const c of CASES) {
  test(`destination diff: ${c.name}`, () => {
    assert.deepEqual(short(diffDests(KEY, c.have, c.want, c.owns)), c.expect);
  });
}

test("destination diff: every request names the service", () => {
  for (const r of diffDests(KEY, [d("10.0.1.1", 80)], [d("10.0.1.2", 80)])) assert.deepEqual("key" in r && r.key, KEY);
});

test("destId: canonical address and port", () => {
  assert.equal(destId("2001:DB8::1", 80), "2001:db8::1|80");
  assert.equal(destId("10.0.0.1", 0), "10.0.0.1|0");
});
