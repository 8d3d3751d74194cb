// DeadlineHeap against a plain Map kept beside it: random sets, moves, deletes and pops (seeded),
// every pop must return an item whose deadline is the smallest, and sizes must agree throughout.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 as seeded } from "../core/seeded-random.ts";
import { DeadlineHeap } from "./deadline-heap.ts";

test("pops come out in deadline order; moves and deletes are exact", () => {
  const rnd = seeded(7);
  const heap = new DeadlineHeap();
  const model = new Map<number, number>();
  let now = 0;
  for (let step = 0; step < 50_000; step++) {
    const r = rnd();
    const item = Math.floor(rnd() * 500);
    if (r < 0.45) {
      const t = now + Math.floor(rnd() * 1000);
      heap.set(item, t);
      model.set(item, t);
    } else if (r < 0.6) {
      assert.equal(heap.delete(item), model.delete(item));
    } else {
      now += Math.floor(rnd() * 30);
      const min = Math.min(...model.values());
      const got = heap.popDue(now);
      if (model.size === 0 || min > now) assert.equal(got, -1);
      else {
        assert.equal(model.get(got), min, `item ${got} popped with the smallest deadline`);
        model.delete(got);
      }
    }
    assert.equal(heap.size, model.size);
    assert.equal(heap.has(item), model.has(item));
  }
});

test("peek, grow past the initial capacity, clear", () => {
  const heap = new DeadlineHeap();
  assert.equal(heap.peekTime(), Number.POSITIVE_INFINITY);
  assert.equal(heap.peekItem(), -1);
  for (let i = 0; i < 1000; i++) heap.set(i * 3, 5000 - i);
  assert.equal(heap.size, 1000);
  assert.equal(heap.peekItem(), 999 * 3);
  assert.equal(heap.peekTime(), 4001);
  heap.set(0, 1);
  assert.equal(heap.peekItem(), 0);
  const order: number[] = [];
  for (let it = heap.popDue(4003); it !== -1; it = heap.popDue(4003)) order.push(it);
  assert.deepEqual(order, [0, 999 * 3, 998 * 3, 997 * 3]);
  heap.clear();
  assert.equal(heap.size, 0);
  assert.equal(heap.has(3), false);
  assert.throws(() => heap.set(-1, 0), /Invalid heap item "-1"/);
});
