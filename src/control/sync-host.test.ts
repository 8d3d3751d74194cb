// Where a backup's records go in tvsd: the daemon's table (one packet thread), the packet workers
// (batched per datagram), or, on the socket plane, the table for templates only.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Conn } from "../core/conn/conn.ts";
import { type SyncedConn, syncedConnOf } from "../core/conn/conn-sync.ts";
import { flow, kit } from "../core/conn/conn-test-kit.ts";
import { TCP_S_ESTABLISHED } from "../core/conn/tcp-states.ts";
import { silentLogger } from "../core/log.ts";
import type { DataPlane } from "./dataplane.ts";
import { syncHost } from "./sync-host.ts";

function records(): { conn: SyncedConn; template: SyncedConn } {
  const m = kit([{ addr: "10.0.1.2" }], { service: { persistent: true, timeout: 300 } });
  const c = m.table.schedule(m.svc, flow("192.168.1.1", 4000), 0) as Conn;
  m.table.setState(c, TCP_S_ESTABLISHED, 0);
  return { conn: syncedConnOf(c), template: syncedConnOf(c.control as Conn) };
}

function host(plane: Partial<DataPlane> | undefined) {
  const b = kit([{ addr: "10.0.1.2" }], { service: { persistent: true, timeout: 300 } });
  return {
    table: b.table,
    h: syncHost({ conns: b.table, plane: () => plane as DataPlane, log: silentLogger, now: () => 0 }),
  };
}

test("one packet thread: records go into the daemon's table", () => {
  const { conn, template } = records();
  const { table, h } = host({ name: "packet" });
  assert.equal(h.ingest(template, 0), "created");
  assert.equal(h.ingest(conn, 0), "created");
  assert.equal(h.ingest(conn, 0), "updated");
  assert.equal(table.size, 2);
});

test("the socket plane keeps templates only", () => {
  const { conn, template } = records();
  const { table, h } = host({ name: "proxy", syncTemplatesOnly: true });
  assert.equal(h.ingest(conn, 0), "ignored");
  assert.equal(h.ingest(template, 0), "created");
  assert.equal(table.size, 1);
  assert.equal([...table.entries()][0]?.template, true);
});

test("packet workers: the records of one datagram go to the plane in one batch", async () => {
  const { conn, template } = records();
  const batches: (readonly SyncedConn[])[] = [];
  const { table, h } = host({
    name: "packet",
    connCount: () => 0,
    ingestSynced: (recs) => {
      batches.push(recs);
      return true;
    },
  });
  assert.equal(h.ingest(template, 0), "passed");
  assert.equal(h.ingest(conn, 0), "passed");
  await Promise.resolve();
  assert.deepEqual(batches, [[template, conn]]);
  assert.equal(table.size, 0, "the daemon's own table is not the live one with workers");
});
