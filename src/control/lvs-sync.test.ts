// lvs_sync_daemon following a VRRP instance: backup daemon until the instance is MASTER, master
// while it is, backup again when it leaves; syncid from the VRID; a reload that drops it stops the
// daemon; a start that fails refuses the configuration.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ConnTable } from "../core/conn/conn-table.ts";
import { DEFAULT_SYNC_SETTINGS } from "../core/conn/sync-policy.ts";
import { silentLogger } from "../core/log.ts";
import { createDefaultRegistry } from "../core/sched/all.ts";
import { ServiceTable } from "../core/service-table.ts";
import { SyncDaemons } from "../sync/daemons.ts";
import type { VrrpStateChange } from "../vrrp/status.ts";
import { LvsSyncDriver } from "./lvs-sync.ts";

function setup() {
  const services = new ServiceTable(createDefaultRegistry(), { clock: { now: () => 0 }, random: () => 0 });
  const conns = new ConnTable({ services });
  let masterOn = 0;
  const sync = new SyncDaemons({
    host: {
      setMaster: (m) => {
        masterOn += m ? 1 : -1;
      },
      dump: async () => [],
      ingest: (rec, now) => conns.ingestSynced(rec, now).outcome,
    },
    log: silentLogger,
    now: () => 0,
    settings: DEFAULT_SYNC_SETTINGS,
    resolve: (name) => (name === "eth1" ? { name, addr: "10.1.1.1", mtu: 1500 } : undefined),
    open: async () => ({ send() {}, close() {}, sendErrors: 0 }),
  });
  return { sync, driver: new LvsSyncDriver(sync, silentLogger), masterOn: () => masterOn };
}

const change = (to: VrrpStateChange["to"]): VrrpStateChange => ({
  instance: "VI_1",
  syncGroup: null,
  from: "BACKUP",
  to,
  reason: "test",
  at: "",
  vips: [],
});
const spec = { interface: "eth1", instance: "VI_1", origin: { file: "k.conf", line: 2, column: 3 } };
const vrrp = (state: string) => ({ status: () => [{ name: "VI_1", state, vrid: 51 }] });

test("the sync daemon follows the instance: backup, master while MASTER, backup again", () => {
  const { sync, driver, masterOn } = setup();
  driver.apply(spec, vrrp("BACKUP"));
  assert.deepEqual(
    sync.running().map((d) => [d.state, d.mcastIfn, d.syncId]),
    [["backup", "eth1", 51]],
  );
  driver.onState(change("MASTER"));
  assert.deepEqual(
    sync.running().map((d) => d.state),
    ["master"],
  );
  assert.equal(masterOn(), 1, "the planes feed the master");
  driver.onState({ ...change("MASTER"), instance: "VI_2" });
  driver.onState(change("FAULT"));
  assert.deepEqual(
    sync.running().map((d) => d.state),
    ["backup"],
  );
  assert.equal(masterOn(), 0);
  // A reload with other options restarts it; one without lvs_sync_daemon stops it.
  driver.apply({ ...spec, syncId: 9, ttl: 2 }, vrrp("MASTER"));
  assert.deepEqual(
    sync.running().map((d) => [d.state, d.syncId, d.mcastTtl]),
    [["master", 9, 2]],
  );
  driver.apply(undefined, vrrp("MASTER"));
  assert.deepEqual(sync.running(), []);
});

test("a daemon that cannot start refuses the configuration with the reason", () => {
  const { driver, sync } = setup();
  // check() says so before anything changes, and changes nothing.
  driver.apply(spec, vrrp("BACKUP"));
  assert.throws(() => driver.check({ ...spec, interface: "nope0" }), /Unknown mcast interface "nope0"/);
  assert.deepEqual(
    sync.running().map((d) => d.state),
    ["backup"],
  );
  driver.check({ ...spec, ttl: 4 });
  driver.apply(undefined, vrrp("BACKUP"));
  assert.throws(
    () => driver.apply({ ...spec, interface: "nope0" }, vrrp("BACKUP")),
    (e: Error & { code?: string }) =>
      e.code === "ENODEV" && e.message.includes('lvs_sync_daemon: Unknown mcast interface "nope0"'),
  );
});
