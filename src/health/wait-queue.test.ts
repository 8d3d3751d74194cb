// WaitQueue against a plain array kept beside it (seeded random pushes, shifts and removals from
// anywhere): the order, sizes and membership must agree at every step.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 as seeded } from "../core/seeded-random.ts";
import { WaitQueue } from "./wait-queue.ts";

test("pushes, shifts and removals from anywhere keep arrival order (seeded, against an array)", () => {
  for (const seed of [1, 7, 42]) {
    const rnd = seeded(seed);
    const q = new WaitQueue<number>();
    const model: number[] = [];
    for (let step = 0; step < 20_000; step++) {
      const r = rnd();
      const v = Math.floor(rnd() * 300);
      if (r < 0.45) {
        const fresh = !model.includes(v);
        assert.equal(q.push(v), fresh);
        if (fresh) model.push(v);
      } else if (r < 0.75) {
        const i = model.indexOf(v);
        assert.equal(q.delete(v), i !== -1);
        if (i !== -1) model.splice(i, 1);
      } else if (r < 0.995) {
        assert.equal(q.shift(), model.shift());
      } else {
        q.clear();
        model.length = 0;
      }
      assert.equal(q.size, model.length);
      assert.equal(q.has(v), model.includes(v));
    }
    const rest: number[] = [];
    for (let v = q.shift(); v !== undefined; v = q.shift()) rest.push(v);
    assert.deepEqual(rest, model, `seed ${seed}: the remaining members come out in arrival order`);
  }
});

test("removing every member of a 10,000-long queue, from the back, leaves it empty and usable", () => {
  const q = new WaitQueue<object>();
  const members = Array.from({ length: 10_000 }, () => ({}));
  for (const m of members) q.push(m);
  for (let i = members.length - 1; i >= 0; i--) assert.equal(q.delete(members[i] as object), true);
  assert.equal(q.size, 0);
  assert.equal(q.shift(), undefined);
  q.push(members[0] as object);
  assert.equal(q.shift(), members[0]);
});
