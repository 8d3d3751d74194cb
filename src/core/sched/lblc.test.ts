import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Dest } from "../dest.ts";
import { flow, harness, holdActive } from "./harness.ts";
import { CHECK_EXPIRE_INTERVAL, DEFAULT_EXPIRATION, type LocalityTable, localityBucket } from "./locality-table.ts";

const MIN = 60_000;

function cache(h: ReturnType<typeof harness>): LocalityTable<{ addr: string; lastuse: number; dest: Dest }> {
  return (h.svc.sched as unknown as { table: LocalityTable<{ addr: string; lastuse: number; dest: Dest }> }).table;
}

const to = (daddr: string) => flow("192.168.1.1", 40000, daddr);

describe("lblc", () => {
  it("keeps a destination address on its server until that server is lblc-overloaded", () => {
    const h = harness("lblc");
    const a = h.add("10.1.0.1", 1);
    const b = h.add("10.1.0.2", 1); // list b a
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
    holdActive(b, 1); // wlc would now pick a, but the cache says b and b is not over (1 > 1 is false)
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
    assert.equal(h.pick(to("203.0.113.2")), "10.1.0.1"); // a new address gets the wlc choice
    holdActive(b, 1); // b: 2 active > weight 1, and a has 0*2 < 1 → overloaded, reschedule
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.1");
    assert.equal(cache(h).get("203.0.113.1")?.dest, a);
  });

  it("lblc-overload needs some server below half its weight", () => {
    const h = harness("lblc");
    const a = h.add("10.1.0.1", 2);
    const b = h.add("10.1.0.2", 2);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
    holdActive(b, 3);
    holdActive(a, 1); // a: 1*2 < 2? no. b: 3*2 < 2? no. Nobody is light: b stays.
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
  });

  it("reschedules when the cached server was removed or quiesced", () => {
    const h = harness("lblc");
    h.add("10.1.0.1", 1);
    const b = h.add("10.1.0.2", 1);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
    h.setWeight(b, 0);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.1");
    h.setWeight(b, 1);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.1"); // cache now says a
    h.del(h.svc.findDest("10.1.0.1", 80)!);
    assert.equal(h.pick(to("203.0.113.1")), "10.1.0.2");
  });

  it("no usable server: none", () => {
    const h = harness("lblc");
    h.add("10.1.0.1", 0);
    assert.equal(h.pick(to("203.0.113.1")), undefined);
    assert.equal(h.svc.lastNoDestination, "LBLC: no destination available");
  });

  it("an idle entry goes at the first full sweep (every 30 runs) after lblc_expiration", () => {
    const h = harness("lblc");
    h.add("10.1.0.1", 1);
    const t0 = h.clock.now(); // service created now: runs at t0 + k min, full sweeps at k = 30, 60, ...
    h.pick(to("203.0.113.1"));
    // Last full sweep before expiry: t0 + 24 h (k = 1440) sees idle == 24 h exactly → removed then.
    h.clock.set(t0 + DEFAULT_EXPIRATION - 1);
    h.pick(to("203.0.113.99"));
    assert.ok(cache(h).get("203.0.113.1") !== undefined);
    h.clock.set(t0 + DEFAULT_EXPIRATION);
    h.pick(to("203.0.113.99"));
    assert.equal(cache(h).get("203.0.113.1"), undefined);
    assert.ok(cache(h).get("203.0.113.99") !== undefined);
  });

  it("use refreshes an entry; the sysctl sets the expiration", () => {
    const h = harness("lblc", { sysctl: { lblcExpiration: 45 * MIN } });
    h.add("10.1.0.1", 1);
    const t0 = h.clock.now();
    h.pick(to("203.0.113.1"));
    h.clock.set(t0 + 20 * MIN);
    h.pick(to("203.0.113.1")); // lastuse = t0 + 20 min
    h.clock.set(t0 + 60 * MIN); // sweeps at 30 (idle 10) and 60 (idle 40 < 45): kept
    h.pick(to("203.0.113.2"));
    assert.ok(cache(h).get("203.0.113.1") !== undefined);
    h.clock.set(t0 + 90 * MIN); // sweep at 90: idle 70 ≥ 45: gone; .2 (idle 30) stays
    h.pick(to("203.0.113.3"));
    assert.equal(cache(h).get("203.0.113.1"), undefined);
    assert.ok(cache(h).get("203.0.113.2") !== undefined);
  });

  it("an overfull table sheds entries idle for 6 minutes, bucket by bucket from the rover", () => {
    const h = harness("lblc");
    h.add("10.1.0.1", 1);
    const t0 = h.clock.now();
    const n = 16384 + 300;
    const addrs: string[] = [];
    for (let i = 0; i < n; i++) addrs.push(`198.${18 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`);
    for (const a of addrs) h.pick(to(a));
    assert.equal(cache(h).size, n);
    h.clock.set(t0 + 5 * MIN); // runs 1..5: nothing idle long enough
    h.pick(to(addrs[0] as string));
    assert.equal(cache(h).size, n);
    h.clock.set(t0 + 6 * MIN); // run 6: goal = 300 * 4 / 3 = 400, from bucket 1 upwards
    h.pick(to(addrs[0] as string)); // (refreshed just before, so it stays)
    const left = new Set([...cache(h).entries()].map((e) => e.addr));
    const removedBuckets = new Set(addrs.filter((a) => !left.has(a)).map(localityBucket));
    const removed = n - left.size;
    assert.ok(removed >= 400 && removed < 460, `removed ${removed}`);
    // The removed entries fill buckets 1, 2, ..., k completely (except the refreshed one).
    const k = Math.max(...removedBuckets);
    for (let b = 1; b <= k; b++) assert.ok(removedBuckets.has(b) || b === localityBucket(addrs[0] as string));
    assert.ok(!removedBuckets.has(0));
    for (const a of addrs) if (localityBucket(a) > k) assert.ok(left.has(a));
    // Back under the limit: the following runs only count.
    h.clock.set(t0 + 29 * MIN);
    h.pick(to(addrs[0] as string));
    assert.equal(cache(h).size, left.size);
    assert.equal(CHECK_EXPIRE_INTERVAL, MIN);
  });

  it("a long idle spell is replayed cheaply and exactly", () => {
    const h = harness("lblc");
    h.add("10.1.0.1", 1);
    const t0 = h.clock.now();
    h.pick(to("203.0.113.1"));
    h.clock.set(t0 + 365 * 24 * 60 * MIN);
    const started = performance.now();
    h.pick(to("203.0.113.2"));
    assert.ok(performance.now() - started < 2000);
    assert.equal(cache(h).get("203.0.113.1"), undefined);
  });
});
