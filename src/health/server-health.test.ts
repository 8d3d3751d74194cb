// Per-server health from several checkers: alive only while all are up, weights from misc_dynamic
// and FILE_CHECK offsets combined with the configured weight, only changes emitted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ServerHealth, type ServerHealthEvent } from "./server-health.ts";

test("a server is up only while every checker is up", () => {
  const out: ServerHealthEvent[] = [];
  const h = new ServerHealth((e) => out.push(e));
  h.addServer("rs1", 10, [
    { id: "rs1#tcp", up: true },
    { id: "rs1#http", up: true },
  ]);
  assert.deepEqual(h.state("rs1"), { up: true, weight: 10 });
  h.handle({ type: "down", id: "rs1#http", reason: "HTTP status 500", at: 1 });
  h.handle({ type: "down", id: "rs1#tcp", reason: "Connection refused", at: 2 });
  h.handle({ type: "up", id: "rs1#http", reason: "ok", at: 3 });
  assert.deepEqual(out, [{ type: "down", server: "rs1", reason: "HTTP status 500" }]);
  h.handle({ type: "up", id: "rs1#tcp", reason: "Connected", at: 4 });
  assert.deepEqual(out[1], { type: "up", server: "rs1", reason: "Connected", weight: 10 });
  h.handle({ type: "down", id: "other", reason: "x", at: 5 });
  assert.equal(out.length, 2);
});

test("alpha checkers make the server start down; no checkers means always up", () => {
  const h = new ServerHealth(() => {});
  h.addServer("a", 1, [{ id: "a#1", up: false }]);
  h.addServer("b", 1, []);
  assert.deepEqual(h.state("a"), { up: false, weight: 1 });
  assert.deepEqual(h.state("b"), { up: true, weight: 1 });
  assert.throws(() => h.addServer("a", 1, []), /Real server "a" already registered/);
  assert.throws(() => h.addServer("c", 1, [{ id: "a#1", up: true }]), /Checker "a#1" already belongs to "a"/);
});

test("weights: misc_dynamic sets, FILE_CHECK adds, never below 0, reset when a checker goes down", () => {
  const out: ServerHealthEvent[] = [];
  const h = new ServerHealth((e) => out.push(e));
  h.addServer("rs", 5, [
    { id: "misc", up: true },
    { id: "file", up: true },
  ]);
  h.handle({ type: "weight", id: "misc", reason: "Script exited 22", at: 1, weight: 20 });
  assert.deepEqual(out.at(-1), { type: "weight", server: "rs", reason: "Script exited 22", weight: 20 });
  h.handle({ type: "weight", id: "file", reason: "File reads 3", at: 2, weightOffset: -30 });
  assert.deepEqual(out.at(-1), { type: "weight", server: "rs", reason: "File reads 3", weight: 0 });
  h.handle({ type: "down", id: "misc", reason: "Script exited 1", at: 3 });
  assert.deepEqual(out.at(-1), { type: "down", server: "rs", reason: "Script exited 1" });
  h.handle({ type: "up", id: "misc", reason: "Script exited 0", at: 4 });
  assert.deepEqual(out.at(-1), { type: "up", server: "rs", reason: "Script exited 0", weight: 0 });
  h.handle({ type: "weight", id: "file", reason: "File reads 0", at: 5 });
  assert.deepEqual(out.at(-1), { type: "weight", server: "rs", reason: "File reads 0", weight: 5 });
  h.setConfiguredWeight("rs", 7);
  assert.deepEqual(out.at(-1), { type: "weight", server: "rs", reason: "Configured weight changed", weight: 7 });
  assert.equal(out.length, 6);
  assert.equal(h.removeServer("rs"), true);
  h.handle({ type: "down", id: "misc", reason: "gone", at: 6 });
  assert.equal(out.length, 6);
});
