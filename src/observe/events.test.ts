import assert from "node:assert/strict";
import { test } from "node:test";
import { EventBus } from "./events.ts";

test("events get sequence numbers and times, and reach every listener", () => {
  const bus = new EventBus({ now: () => new Date("2026-01-02T03:04:05Z") });
  const got: string[] = [];
  const off = bus.subscribe((e) => got.push(`${e.seq} ${e.type} ${e.time}`));
  bus.publish({ type: "reload", message: "Reloaded" });
  bus.publish({ type: "dest-down", message: "down", service: "tcp 10.0.0.1:80", dest: "10.0.0.2:80" });
  off();
  bus.publish({ type: "dest-up", message: "up" });
  assert.deepEqual(got, ["1 reload 2026-01-02T03:04:05.000Z", "2 dest-down 2026-01-02T03:04:05.000Z"]);
  assert.equal(bus.lastSeq, 3);
});

test("the ring keeps the newest events and replays those after a sequence number", () => {
  const bus = new EventBus({ capacity: 3 });
  for (let i = 0; i < 5; i++) bus.publish({ type: "reload", message: `r${i}` });
  assert.deepEqual(
    bus.recent().map((e) => e.message),
    ["r2", "r3", "r4"],
  );
  assert.deepEqual(
    bus.recent(4).map((e) => e.seq),
    [5],
  );
});

test("a listener that throws is dropped and the publisher carries on", () => {
  const bus = new EventBus();
  let good = 0;
  bus.subscribe(() => {
    throw new Error("broken");
  });
  bus.subscribe(() => good++);
  bus.publish({ type: "reload", message: "a" });
  bus.publish({ type: "reload", message: "b" });
  assert.equal(good, 2);
  assert.equal(bus.listeners, 1);
});
