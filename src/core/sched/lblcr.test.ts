import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Dest } from "../dest.ts";
import { flow, harness, holdActive } from "./harness.ts";
import type { LocalityTable } from "./locality-table.ts";

const MIN = 60_000;
type Entry = { addr: string; lastuse: number; set: { members: Dest[]; lastmod: number } };

function cache(h: ReturnType<typeof harness>): LocalityTable<Entry> {
  return (h.svc.sched as unknown as { table: LocalityTable<Entry> }).table;
}

const to = (daddr: string) => flow("192.168.1.1", 40000, daddr);
const members = (h: ReturnType<typeof harness>, daddr: string) =>
  cache(h)
    .get(daddr)
    ?.set.members.map((d) => d.addr);

describe("lblcr", () => {
  it("grows a server set when the member is lblc-overloaded, then uses the least loaded member", () => {
    const h = harness("lblcr");
    h.add("10.1.0.1", 1);
    const b = h.add("10.1.0.2", 1);
    const c = h.add("10.1.0.3", 1); // list c b a
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.3");
    assert.deepEqual(members(h, "203.0.113.1"), ["10.1.0.3"]);
    holdActive(c, 2); // 2 > 1 and a, b are idle: overloaded → wlc over all → b, added at the head
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
    assert.deepEqual(members(h, "203.0.113.1"), ["10.1.0.2", "10.1.0.3"]);
    holdActive(b, 1);
    // members b (256/1) and c (512/1): b is the least; 1 > 1 is false → used
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
    holdActive(b, 2); // b 3 active > 1, a idle → overloaded → wlc: a
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.1");
    assert.deepEqual(members(h, "203.0.113.1"), ["10.1.0.1", "10.1.0.2", "10.1.0.3"]);
  });

  it("after lblcr_expiration without change the most loaded member is dropped", () => {
    const h = harness("lblcr", { sysctl: { lblcrExpiration: 10 * MIN } });
    h.add("10.1.0.1", 1);
    const b = h.add("10.1.0.2", 1);
    const t0 = h.clock.now();
    h.pick(to("203.0.113.1")); // b
    holdActive(b, 2);
    h.pick(to("203.0.113.1")); // b overloaded → a added, lastmod t0
    assert.deepEqual(members(h, "203.0.113.1"), ["10.1.0.1", "10.1.0.2"]);
    h.clock.set(t0 + 5 * MIN);
    h.pick(to("203.0.113.1"));
    assert.equal(members(h, "203.0.113.1")?.length, 2);
    h.clock.set(t0 + 10 * MIN); // now > lastmod + 10 min? equal: not yet
    h.pick(to("203.0.113.1"));
    assert.equal(members(h, "203.0.113.1")?.length, 2);
    h.clock.set(t0 + 10 * MIN + 1);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.1");
    assert.deepEqual(members(h, "203.0.113.1"), ["10.1.0.1"]); // b (most loaded) dropped
    assert.equal(cache(h).get("203.0.113.1")?.set.lastmod, t0 + 10 * MIN + 1);
  });

  it("removed members are skipped; an empty usable set reschedules", () => {
    const h = harness("lblcr");
    h.add("10.1.0.1", 1);
    const b = h.add("10.1.0.2", 1);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
    h.del(b);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.1");
    assert.deepEqual(members(h, "203.0.113.1"), ["10.1.0.1", "10.1.0.2"]);
  });

  it("idle entries expire with the full sweep as lblc's", () => {
    const h = harness("lblcr");
    h.add("10.1.0.1", 1);
    const t0 = h.clock.now();
    h.pick(to("203.0.113.1"));
    h.clock.set(t0 + 24 * 60 * MIN);
    h.pick(to("203.0.113.2"));
    assert.equal(cache(h).get("203.0.113.1"), undefined);
  });

  it("no usable server: none", () => {
    const h = harness("lblcr");
    assert.equal(h.pick(to("203.0.113.1")), undefined);
    assert.equal(h.svc.lastNoDestination, "LBLCR: no destination available");
  });
});
