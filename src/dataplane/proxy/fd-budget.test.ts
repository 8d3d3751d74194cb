// The descriptor budget of the socket data plane: limit minus what was open minus the reserve,
// refusals counted, and the default reserve's bounds.
import assert from "node:assert/strict";
import { test } from "node:test";
import { defaultFdReserve, FdBudget, openFdCount, processFdLimit } from "./fd-budget.ts";

test("budget = limit − baseline − reserve; take refuses past it and counts", () => {
  const b = new FdBudget({ processLimit: 256, baseline: 20, reserve: 64 });
  assert.equal(b.limit, 172);
  assert.equal(b.take(170), true);
  assert.equal(b.take(3), false);
  assert.equal(b.refused, 1);
  assert.equal(b.take(2), true);
  assert.equal(b.used, 172);
  b.give(10);
  assert.equal(b.used, 162);
});

test("default reserve: an eighth of the limit within 64..1024; unknown limit: unbounded", () => {
  assert.equal(defaultFdReserve(256), 64);
  assert.equal(defaultFdReserve(4096), 512);
  assert.equal(defaultFdReserve(1 << 20), 1024);
  const b = new FdBudget({ processLimit: undefined });
  assert.equal(b.limit, Number.POSITIVE_INFINITY);
  assert.equal(b.take(1e6), true);
});

test("this process's limit and open descriptors are read from /proc on Linux", () => {
  if (process.platform !== "linux") return;
  const limit = processFdLimit();
  const open = openFdCount();
  assert.ok(limit === undefined || limit > 0);
  assert.ok(open !== undefined && open >= 3);
});

test("a listener (the operator's) may use half of the reserve; traffic may not", () => {
  const b = new FdBudget({ processLimit: 256, baseline: 0, reserve: 64 });
  assert.equal(b.take(192), true);
  assert.equal(b.take(1), false);
  for (let i = 0; i < 32; i++) assert.equal(b.take(1, true), true);
  assert.equal(b.take(1, true), false);
  assert.equal(b.used, 224);
});
