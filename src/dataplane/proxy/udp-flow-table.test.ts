// The UDP flow table: flows towards different real servers share sockets (slot k of every real
// server on socket k), the cap evicts the oldest unanswered flow first and then the least
// recently active, and sockets close with their last flow.
import assert from "node:assert/strict";
import { test } from "node:test";
import { silentLogger } from "../../core/log.ts";
import { FdBudget } from "./fd-budget.ts";
import { LimitAlarm } from "./limit-alarm.ts";
import { type UdpFlow, UdpFlowTable } from "./udp-flow-table.ts";

function table(limit: number, fdLimit = 100) {
  const evicted: string[] = [];
  const fds = new FdBudget({ processLimit: fdLimit, baseline: 0, reserve: 0 });
  const t = new UdpFlowTable({
    limit,
    fds,
    evict: (f) => evicted.push(`${f.cport}`),
    fullAlarm: new LimitAlarm(silentLogger, "warn", "full"),
    fdAlarm: new LimitAlarm(silentLogger, "error", "fd"),
    onSocketError: () => {},
  });
  const owner = { reply: () => {}, forget: () => {} };
  const open = (cport: number, dport: number) =>
    t.open(owner, { caddr: "127.0.0.1", cport, daddr: "127.0.0.1", dport }, undefined, 60_000) as UdpFlow;
  return { t, fds, evicted, open };
}

test("flows to different real servers share sockets; one real server's flows need one socket each", () => {
  const { t, fds, open } = table(100);
  const a = [open(1, 9001), open(2, 9002), open(3, 9003)];
  assert.equal(t.sockets, 1);
  assert.deepEqual(
    a.map((f) => f.slot),
    [0, 0, 0],
  );
  const b = [open(4, 9001), open(5, 9001)];
  assert.deepEqual(
    b.map((f) => f.slot),
    [1, 2],
  );
  assert.equal(t.sockets, 3);
  assert.equal(fds.used, 3);
  // The lowest free slot is reused; a socket closes with its last flow.
  b[0]?.close();
  assert.equal(t.sockets, 2, "slot 1's socket closed with its only flow");
  assert.equal(open(6, 9001).slot, 1);
  assert.equal(t.sockets, 3);
  for (const f of a) f.close();
  assert.equal(t.sockets, 2, "slot 0's socket closed with its three flows");
  assert.equal(fds.used, 2);
  t.closeAll();
  assert.equal(t.sockets, 0);
  assert.equal(fds.used, 0);
  assert.equal(t.size, 0);
});

test("full: the oldest unanswered flow goes first, then the least recently active", () => {
  const { t, evicted, open } = table(3);
  const f1 = open(1, 9001);
  open(2, 9002);
  open(3, 9003);
  f1.answered();
  open(4, 9004); // evicts 2: the oldest never answered (1 was answered)
  open(5, 9005); // evicts 3
  assert.deepEqual(evicted, ["2", "3"]);
  open(6, 9006); // 1 answered, 4 and 5 not: evicts 4
  assert.deepEqual(evicted, ["2", "3", "4"]);
  assert.equal(t.size, 3);
  assert.equal(t.evicted, 3);
  t.closeAll();
});

test("no descriptor left: the flow is refused and counted, nothing leaks", () => {
  const { t, fds, open } = table(100, 2);
  assert.ok(open(1, 9001));
  assert.ok(open(2, 9001));
  assert.equal(
    t.open(
      { reply: () => {}, forget: () => {} },
      { caddr: "127.0.0.1", cport: 3, daddr: "127.0.0.1", dport: 9001 },
      undefined,
      1000,
    ),
    undefined,
  );
  assert.equal(t.refused, 1);
  assert.equal(fds.refused, 1);
  // A flow towards another real server still fits on an existing socket.
  assert.ok(open(4, 9002));
  assert.equal(t.size, 3);
  t.closeAll();
  assert.equal(fds.used, 0);
});
