// The FULLNAT local pool: one worker of several allocates only its share of the ports (the fanout
// steering program sends replies to laddr:lport to worker lport % workers), wraps around, skips
// ports in use and says when its share is exhausted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { LocalPool } from "./fullnat.ts";

test("a single pool hands out 1025, 1026, ... and skips ports in use", () => {
  const pool = new LocalPool(["10.0.0.31"]);
  const used = new Set([1026]);
  const got = [0, 1, 2].map(() => {
    const p = pool.pick(4, (_a, port) => used.has(port))!;
    used.add(p.lport);
    return p.lport;
  });
  assert.deepEqual(got, [1025, 1027, 1028]);
});

test("worker 1 of 3 allocates only ports p % 3 === 1 and covers its whole share", () => {
  const pool = new LocalPool(["10.0.0.31"], { index: 1, of: 3 });
  const used = new Set<number>();
  for (;;) {
    const p = pool.pick(4, (_a, port) => used.has(port));
    if (p === undefined) break;
    assert.equal(p.lport % 3, 1, `port ${p.lport}`);
    assert.ok(p.lport >= 1024 && p.lport <= 65535);
    assert.ok(!used.has(p.lport));
    used.add(p.lport);
  }
  let share = 0;
  for (let port = 1024; port <= 65535; port++) if (port % 3 === 1) share++;
  assert.equal(used.size, share);
});

test("the cursor wraps to the start of the share", () => {
  const pool = new LocalPool(["10.0.0.31"], { index: 0, of: 2 });
  const free = new Set([65534, 1024]);
  // Everything but 65534 and 1024 is taken: 65534 first, then the wrap finds 1024.
  const a = pool.pick(4, (_x, port) => !free.has(port))!;
  free.delete(a.lport);
  const b = pool.pick(4, (_x, port) => !free.has(port))!;
  assert.deepEqual([a.lport, b.lport], [65534, 1024]);
});
