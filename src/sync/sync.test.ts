// Master → wire → backup on real connection tables: what one director's forwarding decides to
// sync arrives in the other's table with the same addresses, state, method and timeout; the
// backup respects its connection limit and counts what it drops.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Conn } from "../core/conn/conn.ts";
import { flow, kit } from "../core/conn/conn-test-kit.ts";
import { SyncPolicy } from "../core/conn/sync-policy.ts";
import { TCP_S_ESTABLISHED, TCP_S_FIN_WAIT } from "../core/conn/tcp-states.ts";
import { SyncBackup } from "./backup.ts";
import { encodeSyncMessages } from "./codec.ts";
import { SYNC_FLUSH_MS, SyncMaster } from "./master.ts";
import { toWire } from "./records.ts";
import { syncedConnOf, tableIngest } from "./table-link.ts";

const DESTS = [{ addr: "10.0.1.2" }, { addr: "10.0.1.3" }];

function director(opts: Parameters<typeof kit>[1] = {}) {
  return kit(DESTS, opts);
}

function listing(t: ReturnType<typeof kit>["table"]) {
  return [...t.entries()]
    .map(
      (c) =>
        `${c.protocol} ${c.caddr}:${c.cport} ${c.vaddr}:${c.vport} ${c.daddr}:${c.dport} ${c.stateName} ${c.fwd} ${c.timeoutMs}`,
    )
    .sort();
}

test("entries a master syncs appear on the backup as they are on the master", () => {
  const m = director({ service: { persistent: true, timeout: 300 } });
  const b = director({ service: { persistent: true, timeout: 300 } });
  const sent: Uint8Array[] = [];
  const master = new SyncMaster({ syncId: 5, maxLen: 1472, send: (msg) => sent.push(msg) });
  const policy = new SyncPolicy();
  const backup = new SyncBackup({ syncId: 5, ingest: tableIngest(b.table) });
  const conns: Conn[] = [];
  for (let i = 0; i < 30; i++) {
    const c = m.table.schedule(m.svc, flow(`192.168.1.${10 + i}`, 40000 + i), 0) as Conn;
    m.table.setState(c, i % 3 === 0 ? TCP_S_FIN_WAIT : TCP_S_ESTABLISHED, 0);
    conns.push(c);
  }
  for (let k = 0; k < 3; k++) for (const c of conns) policy.inPacket(c, 0, (e) => master.push(syncedConnOf(e), 0));
  // 30 connections + 30 templates, templates at every packet: more than one message's worth.
  assert.ok(sent.length >= 1);
  master.tick(SYNC_FLUSH_MS - 1);
  const before = sent.length;
  master.tick(SYNC_FLUSH_MS);
  assert.equal(sent.length, before + 1, "the partial message goes after 2 s");
  for (const msg of sent) backup.receive(msg, 0);
  assert.deepEqual(listing(b.table), listing(m.table));
  assert.equal(backup.stats.created, 60);
  // The destinations' counts follow: 20 active (ESTABLISHED) and 10 inactive over both dests.
  const act = (t: typeof b) => t.svc.dests.map((d) => [d.activeConns, d.inactConns, d.persistConns]);
  assert.deepEqual(act(b), act(m));
});

test("a backup never holds more entries than its limit; drops are counted", () => {
  const m = director();
  const b = director({ limit: 5 });
  const backup = new SyncBackup({ syncId: 0, ingest: tableIngest(b.table) });
  const recs = [];
  for (let i = 0; i < 10; i++) {
    const c = m.table.schedule(m.svc, flow("192.168.2.1", 1000 + i), 0) as Conn;
    m.table.setState(c, TCP_S_ESTABLISHED, 0);
    recs.push(toWire(syncedConnOf(c)));
  }
  for (const msg of encodeSyncMessages(0, 1472, recs)) backup.receive(msg, 0);
  assert.equal(b.table.size, 5);
  assert.equal(backup.stats.created, 5);
  assert.equal(backup.stats.refused, 5);
  // Garbage, wrong syncid, a bad state: counted, nothing changes.
  const guarded = new SyncBackup({ syncId: 9, ingest: tableIngest(b.table), maxLen: 1024 });
  guarded.receive(new Uint8Array([1, 2, 3]), 0);
  guarded.receive(new Uint8Array(2000), 0);
  guarded.receive(encodeSyncMessages(8, 1472, recs.slice(0, 1))[0] as Uint8Array, 0);
  guarded.receive(
    encodeSyncMessages(9, 1472, [{ ...(recs[0] as ReturnType<typeof toWire>), state: 99 }])[0] as Uint8Array,
    0,
  );
  assert.deepEqual(guarded.stats.dropped, { "short-header": 1, syncid: 1, oversized: 1 });
  assert.deepEqual(guarded.stats.skipped, { state: 1 });
  assert.equal(b.table.size, 5);
});

test("an update moves an entry between active and inactive and takes the new timeout", () => {
  const m = director();
  const b = director();
  const backup = new SyncBackup({ syncId: 0, ingest: tableIngest(b.table) });
  const c = m.table.schedule(m.svc, flow("192.168.3.1", 5555), 0) as Conn;
  m.table.setState(c, TCP_S_ESTABLISHED, 0);
  const send = () => {
    for (const msg of encodeSyncMessages(0, 1472, [toWire(syncedConnOf(c))])) backup.receive(msg, 0);
  };
  send();
  const d = b.svc.dests.find((x) => x.addr === c.daddr);
  assert.equal(d?.activeConns, 1);
  m.table.setState(c, TCP_S_FIN_WAIT, 0);
  send();
  assert.equal(d?.activeConns, 0);
  assert.equal(d?.inactConns, 1);
  assert.deepEqual(listing(b.table), listing(m.table));
  assert.equal(backup.stats.updated, 1);
});
