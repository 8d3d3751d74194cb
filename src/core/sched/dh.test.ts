import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { flow, harness } from "./harness.ts";

const vectors: { addresses: { addr: string; dh: number }[] } = JSON.parse(
  readFileSync(join(new URL(".", import.meta.url).pathname, "testdata", "kernel-hash-vectors.json"), "utf8"),
);

describe("dh", () => {
  it("maps the packet's destination address to bucket hash_32(fold(daddr), 8), bucket i → list[i % n]", () => {
    const h = harness("dh");
    for (let i = 1; i <= 3; i++) h.add(`10.1.0.${i}`, 7); // weights are ignored
    for (const a of vectors.addresses.filter((x) => !x.addr.includes(":"))) {
      assert.equal(h.pick(flow("192.168.1.1", 1000, a.addr)), h.svc.dests[a.dh % 3]?.addr, a.addr);
    }
  });

  it("the same for IPv6 (XOR fold)", () => {
    const h = harness("dh", { vip: "2001:db8::100" });
    h.add("2001:db8::a", 1);
    h.add("2001:db8::b", 1);
    for (const a of vectors.addresses.filter((x) => x.addr.includes(":")))
      assert.equal(h.pick(flow("2001:db8::1", 1000, a.addr)), h.svc.dests[a.dh % 2]?.addr, a.addr);
  });

  it("the source address does not matter", () => {
    const h = harness("dh");
    for (let i = 1; i <= 4; i++) h.add(`10.1.0.${i}`);
    const picks = new Set<string | undefined>();
    for (let i = 0; i < 50; i++) picks.add(h.pick(flow(`192.168.1.${i}`, 1000 + i, "203.0.113.9")));
    assert.equal(picks.size, 1);
  });

  it("no fallback: weight 0 or overloaded → none", () => {
    const h = harness("dh");
    const a = h.add("10.1.0.1");
    assert.equal(h.pick(flow("1.1.1.1", 1, "203.0.113.9")), "10.1.0.1");
    h.setWeight(a, 0);
    assert.equal(h.pick(flow("1.1.1.1", 1, "203.0.113.9")), undefined);
    h.setWeight(a, 1);
    a.overloaded = true;
    assert.equal(h.pick(flow("1.1.1.1", 1, "203.0.113.9")), undefined);
    assert.equal(h.svc.lastNoDestination, "DH: no destination available");
  });
});
