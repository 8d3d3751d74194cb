import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Dest } from "../dest.ts";
import { flow, harness } from "./harness.ts";

const vectors: { addresses: { addr: string; port: number; sh: number; shPort: number }[] } = JSON.parse(
  readFileSync(join(new URL(".", import.meta.url).pathname, "testdata", "kernel-hash-vectors.json"), "utf8"),
);
const v4 = vectors.addresses.filter((a) => !a.addr.includes(":"));

function buckets(h: ReturnType<typeof harness>): readonly (Dest | undefined)[] {
  return (h.svc.sched as unknown as { buckets: readonly (Dest | undefined)[] }).buckets;
}

/** The kernel's fill written out: each destination in list order takes `weight` buckets (at least 1). */
function expectedFill(dests: readonly Dest[]): (Dest | undefined)[] {
  const out: (Dest | undefined)[] = [];
  let p = 0;
  while (out.length < 256 && dests.length > 0) {
    const d = dests[p % dests.length] as Dest;
    for (let k = 0; k < Math.max(1, d.weight) && out.length < 256; k++) out.push(d);
    p++;
  }
  while (out.length < 256) out.push(undefined);
  return out;
}

describe("sh", () => {
  it("fills 256 buckets by weight in list order, refilled on every change", () => {
    const h = harness("sh");
    const a = h.add("10.1.0.1", 2);
    h.add("10.1.0.2", 3);
    h.add("10.1.0.3", 0);
    assert.deepEqual(buckets(h), expectedFill(h.svc.dests));
    assert.deepEqual(
      buckets(h)
        .slice(0, 7)
        .map((d) => d?.addr),
      ["10.1.0.3", "10.1.0.2", "10.1.0.2", "10.1.0.2", "10.1.0.1", "10.1.0.1", "10.1.0.3"],
    );
    h.setWeight(a, 5);
    assert.deepEqual(buckets(h), expectedFill(h.svc.dests));
    h.del(a);
    assert.deepEqual(buckets(h), expectedFill(h.svc.dests));
  });

  it("maps a client to bucket hash_32(fold(saddr), 8) as the C model computes it", () => {
    const h = harness("sh");
    for (let i = 1; i <= 5; i++) h.add(`10.1.0.${i}`, 1); // bucket b → list[b % 5]
    for (const a of v4) assert.equal(h.pick(flow(a.addr, a.port)), h.svc.dests[a.sh % 5]?.addr, a.addr);
  });

  it("sh-port adds the source port to the hash", () => {
    const h = harness("sh", { flags: ["sh-port"] });
    for (let i = 1; i <= 5; i++) h.add(`10.1.0.${i}`, 1);
    for (const a of v4) assert.equal(h.pick(flow(a.addr, a.port)), h.svc.dests[a.shPort % 5]?.addr, a.addr);
  });

  it("weight 0 keeps a bucket per round but is refused; sh-fallback goes on around the table", () => {
    const plain = harness("sh");
    const fb = harness("sh", { flags: ["sh-fallback"] });
    for (const h of [plain, fb]) {
      h.add("10.1.0.1", 1);
      h.add("10.1.0.2", 0); // list: .2(0) .1(1) — buckets alternate
    }
    const onZero = v4.find((a) => a.sh % 2 === 0)!;
    assert.equal(plain.pick(flow(onZero.addr)), undefined);
    assert.equal(plain.svc.lastNoDestination, "SH: no destination available");
    assert.equal(fb.pick(flow(onZero.addr)), "10.1.0.1");
  });

  it("overload (thresholds) keeps the table: with sh-fallback only that server's clients move", () => {
    const h = harness("sh", { flags: ["sh-fallback"] });
    const ds = Array.from({ length: 4 }, (_, i) => h.add(`10.1.0.${i + 1}`, 1));
    const cs = Array.from({ length: 3000 }, (_, i) => `192.168.${i >> 8}.${i & 255}`);
    const before = cs.map((c) => h.pick(flow(c)));
    (ds[2] as Dest).overloaded = true;
    let moved = 0;
    cs.forEach((c, i) => {
      const now = h.pick(flow(c));
      if (before[i] === "10.1.0.3") {
        assert.ok(now !== undefined && now !== "10.1.0.3");
        moved++;
      } else assert.equal(now, before[i]);
    });
    assert.ok(moved > 0);
  });

  it("spreads clients in proportion to bucket shares", () => {
    const h = harness("sh");
    h.add("10.1.0.1", 1);
    h.add("10.1.0.2", 3); // per 4 buckets: 3 for .2, 1 for .1
    const counts = new Map<string, number>();
    for (let i = 0; i < 20000; i++) {
      const a = h.pick(flow(`172.${16 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}`)) ?? "-";
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    assert.ok(Math.abs((counts.get("10.1.0.2") ?? 0) / 20000 - 0.75) < 0.03);
  });

  it("no destinations: none", () => {
    const h = harness("sh", { flags: ["sh-fallback"] });
    assert.equal(h.pick(), undefined);
  });
});
