import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Dest, destSpec } from "../dest.ts";
import { flow, harness } from "./harness.ts";
import { foldAddress } from "./kernel-hash.ts";
import { createMaglev, MH_TAB_SIZE, mhHash } from "./mh.ts";
import type { SchedService } from "./types.ts";

const vectors: { mh: Record<string, string>; addresses: { addr: string; port: number; mhOffset: number }[] } =
  JSON.parse(
    readFileSync(join(new URL(".", import.meta.url).pathname, "testdata", "kernel-hash-vectors.json"), "utf8"),
  );

function table(h: ReturnType<typeof harness>): readonly (Dest | undefined)[] {
  return (h.svc.sched as unknown as { table: readonly (Dest | undefined)[] }).table;
}

/** The table as a string of list indexes, as the C model prints it. */
function asIndexes(h: ReturnType<typeof harness>): string {
  return table(h)
    .map((d) => (d === undefined ? "-" : String(h.svc.dests.indexOf(d))))
    .join("");
}

/** Many distinct client addresses. */
function clients(n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(`172.${16 + ((i >> 16) & 15)}.${(i >> 8) & 255}.${i & 255}`);
  return out;
}

describe("mh", () => {
  it("fills the table exactly as the C model of the kernel (IPv4, weights 3 2 1)", () => {
    const h = harness("mh");
    h.add("10.1.0.1", 1);
    h.add("10.1.0.2", 2);
    h.add("10.1.0.3", 3); // list order 3 2 1 as in the model
    assert.equal(table(h).length, 4093);
    assert.equal(asIndexes(h), vectors.mh.v4);
  });

  it("fills the table exactly as the C model (IPv6, port 8080, weights 100 1000 0 7: rshift 4)", () => {
    const h = harness("mh", { vip: "2001:db8::100" });
    for (const [addr, w] of [
      ["2001:db8::1", 100],
      ["2001:db8::2", 1000],
      ["2001:db8::3", 0],
      ["2001:db8::4", 7],
    ] as const)
      h.table.addDest(h.key, destSpec(addr, 8080, { weight: w }));
    assert.equal(asIndexes(h), vectors.mh.v6);
  });

  it("a client's slot is the C model's hsiphash % 4093 (mh-port uses the source port)", () => {
    const h = harness("mh", { flags: ["mh-port"] });
    h.add("10.1.0.1", 1);
    h.add("10.1.0.2", 1);
    const t = table(h);
    for (const a of vectors.addresses.filter((x) => !x.addr.includes(":"))) {
      assert.equal(h.svc.sched.schedule(flow(a.addr, a.port)), t[a.mhOffset], a.addr);
    }
  });

  it("without mh-port the source port does not matter; with it, it does", () => {
    const plain = harness("mh");
    const port = harness("mh", { flags: ["mh-port"] });
    for (const h of [plain, port]) for (let i = 1; i <= 8; i++) h.add(`10.1.0.${i}`, 1);
    const p = new Set<string>();
    const q = new Set<string>();
    for (let sport = 1000; sport < 1100; sport++) {
      p.add(plain.pick(flow("192.168.7.7", sport)) ?? "-");
      q.add(port.pick(flow("192.168.7.7", sport)) ?? "-");
    }
    assert.equal(p.size, 1);
    assert.ok(q.size > 4);
  });

  it("shares slots in proportion to weight and spreads clients accordingly", () => {
    const h = harness("mh");
    const ds = [h.add("10.1.0.1", 1), h.add("10.1.0.2", 2), h.add("10.1.0.3", 5)];
    const slots = ds.map((d) => table(h).filter((x) => x === d).length);
    assert.equal(
      slots.reduce((a, b) => a + b),
      MH_TAB_SIZE,
    );
    const share = [1 / 8, 2 / 8, 5 / 8];
    for (let i = 0; i < 3; i++) assert.ok(Math.abs((slots[i] as number) / MH_TAB_SIZE - (share[i] as number)) < 0.01);
    const counts = new Map<string, number>();
    for (const c of clients(40000)) {
      const a = h.pick(flow(c)) ?? "-";
      counts.set(a, (counts.get(a) ?? 0) + 1);
    }
    for (let i = 0; i < 3; i++) {
      const d = ds[i] as Dest;
      assert.ok(Math.abs((counts.get(d.addr) ?? 0) / 40000 - (share[i] as number)) < 0.02, d.addr);
    }
  });

  it("removing one of N destinations moves its slots and barely disturbs the others", () => {
    const h = harness("mh");
    const ds = Array.from({ length: 10 }, (_, i) => h.add(`10.1.0.${i + 1}`, 1));
    const before = [...table(h)];
    const gone = ds[4] as Dest;
    h.del(gone);
    const after = table(h);
    let moved = 0;
    for (let i = 0; i < MH_TAB_SIZE; i++) {
      if (before[i] === gone) assert.notEqual(after[i], gone);
      else if (after[i] !== before[i]) moved++;
    }
    // Maglev's minimal disruption: a few percent of the others' slots at most.
    assert.ok(moved < MH_TAB_SIZE * 0.05, `moved ${moved}`);
    // Clients that were not on the removed server mostly stay.
    let stayed = 0;
    let total = 0;
    const h2 = harness("mh");
    const ds2 = Array.from({ length: 10 }, (_, i) => h2.add(`10.1.0.${i + 1}`, 1));
    const first = clients(5000).map((c) => h2.pick(flow(c)));
    h2.del(ds2[4] as Dest);
    clients(5000).forEach((c, i) => {
      if (first[i] === "10.1.0.5") return;
      total++;
      if (h2.pick(flow(c)) === first[i]) stayed++;
    });
    assert.ok(stayed / total > 0.95, `${stayed}/${total}`);
  });

  it("quiescing to weight 0 keeps the table (last_weight); only that server is refused", () => {
    for (const fallback of [false, true]) {
      const h = harness("mh", fallback ? { flags: ["mh-fallback"] } : {});
      const ds = Array.from({ length: 4 }, (_, i) => h.add(`10.1.0.${i + 1}`, 3));
      const before = [...table(h)];
      const firstPicks = clients(2000).map((c) => h.pick(flow(c)));
      h.setWeight(ds[1] as Dest, 0);
      assert.equal((ds[1] as Dest).lastWeight, 3);
      assert.deepEqual([...table(h)], before);
      clients(2000).forEach((c, i) => {
        const now = h.pick(flow(c));
        if (firstPicks[i] === "10.1.0.2") {
          if (fallback) assert.ok(now !== undefined && now !== "10.1.0.2");
          else assert.equal(now, undefined);
        } else assert.equal(now, firstPicks[i]);
      });
    }
  });

  it("fallback walks the table from the client's slot; without it an overloaded pick is refused", () => {
    const h = harness("mh", { flags: ["mh-fallback"] });
    const a = h.add("10.1.0.1", 1);
    h.add("10.1.0.2", 1);
    const c = clients(200).find((x) => h.pick(flow(x)) === a.addr)!;
    a.overloaded = true;
    assert.equal(h.pick(flow(c)), "10.1.0.2");
    h.table.editService(h.key, { ...h.svc.options, schedFlags: [] });
    assert.equal(h.pick(flow(c)), undefined);
    assert.equal(h.svc.lastNoDestination, "MH: no destination available");
  });

  it("all last weights 0 (added with weight 0): empty table, nothing chosen", () => {
    const h = harness("mh", { flags: ["mh-fallback"] });
    h.add("10.1.0.1", 0);
    assert.ok(table(h).every((x) => x === undefined));
    assert.equal(h.pick(), undefined);
  });

  it("scaling every weight by a common factor gives the same table (gcd)", () => {
    const a = harness("mh");
    const b = harness("mh");
    [1, 2, 3].forEach((w, i) => {
      a.add(`10.1.0.${i + 1}`, w);
      b.add(`10.1.0.${i + 1}`, w * 7);
    });
    assert.equal(asIndexes(a), asIndexes(b));
  });

  it("more destinations than slots: the kernel keeps the previous table", () => {
    const dests: Dest[] = [];
    const svc: SchedService = { family: 4, dests, schedFlags: new Set(), reportNoDestination: () => {} };
    const m = createMaglev(svc, 251);
    for (let i = 0; i < 251; i++) {
      dests.unshift(new Dest(destSpec(`10.3.${i >> 8}.${i & 255}`, 80)));
      m.addDest?.(dests[0] as Dest);
    }
    const full = [...m.table];
    dests.unshift(new Dest(destSpec("10.9.9.9", 80)));
    m.addDest?.(dests[0] as Dest);
    assert.deepEqual([...m.table], full);
    assert.throws(() => createMaglev(svc, 1000), /Maglev table size "1000"/);
  });

  it("an IPv6 destination of an IPv4 service hashes its first word (svc->af fold)", () => {
    // 2001:db8::1 in an IPv4 service folds to its first word 0x20010db8 = 32.1.13.184, so it lays
    // out exactly like that IPv4 address; folded as IPv6 (XOR of all words) it would not.
    const v6in4 = harness("mh");
    v6in4.add("10.1.0.1", 1);
    v6in4.table.addDest(v6in4.key, destSpec("2001:db8::1", 80, { fwd: "tunnel", weight: 1 }));
    const same = harness("mh");
    same.add("10.1.0.1", 1);
    same.add("32.1.13.184", 1);
    const xor = harness("mh");
    xor.add("10.1.0.1", 1);
    xor.add("32.1.13.185", 1); // 0x20010db9, the full IPv6 fold
    assert.equal(asIndexes(v6in4), asIndexes(same));
    assert.notEqual(asIndexes(v6in4), asIndexes(xor));
    assert.equal(foldAddress("2001:db8::1"), 0x20010db9);
    assert.equal(mhHash(0x20010db8, 80, 0), mhHash(foldAddress("32.1.13.184"), 80, 0));
  });
});
