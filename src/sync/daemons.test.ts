// The daemons' control surface (start/stop/running as ipvsadm sees it) and bulk resync, over a
// memory multicast group standing in for the sockets.
import assert from "node:assert/strict";
import { test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import type { Conn } from "../core/conn/conn.ts";
import { syncedConnOf } from "../core/conn/conn-sync.ts";
import { flow, kit } from "../core/conn/conn-test-kit.ts";
import { DEFAULT_SYNC_SETTINGS } from "../core/conn/sync-policy.ts";
import { TCP_S_ESTABLISHED } from "../core/conn/tcp-states.ts";
import type { CoreError } from "../core/errors.ts";
import { silentLogger } from "../core/log.ts";
import { type SyncDaemonConfig, SyncDaemons, type SyncHost } from "./daemons.ts";
import type { EndpointOptions, OpenEndpoint } from "./endpoint.ts";
import { tableIngest } from "./table-link.ts";

/** A multicast group in memory: every endpoint but the sender gets each datagram. */
function memoryGroup(): OpenEndpoint {
  const members = new Set<EndpointOptions & { id: number }>();
  let ids = 0;
  return async (o) => {
    const me = { ...o, id: ids++ };
    members.add(me);
    return {
      send(msg: Uint8Array) {
        for (const m of members)
          if (m !== me && m.port === o.port) queueMicrotask(() => m.onMessage(Uint8Array.from(msg), `peer${me.id}`));
      },
      close() {
        members.delete(me);
      },
      sendErrors: 0,
    };
  };
}

const quiet = silentLogger;
const resolve = (name: string) => (name === "eth9" ? { name, addr: "10.9.0.1", mtu: 9000 } : undefined);

function daemonsFor(table: ReturnType<typeof kit>["table"], open: OpenEndpoint) {
  const host: SyncHost = {
    setMaster: () => {},
    dump: async () => [...table.entries()].map(syncedConnOf),
    ingest: tableIngest(table),
  };
  return new SyncDaemons({
    host,
    log: quiet,
    now: () => performance.now(),
    settings: DEFAULT_SYNC_SETTINGS,
    resolve,
    open,
    resyncIntervalMs: 20,
  });
}

const spec = (state: "master" | "backup", extra: Partial<SyncDaemonConfig> = {}): SyncDaemonConfig => ({
  state,
  mcastIfn: "eth9",
  syncId: 0,
  syncMaxLen: 0,
  mcastGroup: "",
  mcastPort: 0,
  mcastTtl: 0,
  ...extra,
});

test("start fills in the kernel's defaults; errors are the kernel's", () => {
  const k = kit([{ addr: "10.0.1.2" }]);
  const d = daemonsFor(k.table, memoryGroup());
  d.start(spec("master", { syncId: 3 }));
  d.start(spec("backup"));
  assert.deepEqual(d.running(), [
    {
      state: "master",
      mcastIfn: "eth9",
      syncId: 3,
      syncMaxLen: 1472,
      mcastGroup: "224.0.0.81",
      mcastPort: 8848,
      mcastTtl: 1,
    },
    {
      state: "backup",
      mcastIfn: "eth9",
      syncId: 0,
      syncMaxLen: 8972,
      mcastGroup: "224.0.0.81",
      mcastPort: 8848,
      mcastTtl: 1,
    },
  ]);
  const code = (f: () => void) => {
    try {
      f();
    } catch (e) {
      return (e as CoreError).code;
    }
    return "none";
  };
  assert.equal(
    code(() => d.start(spec("master"))),
    "EEXIST",
  );
  d.stop("master");
  assert.equal(
    code(() => d.stop("master")),
    "ESRCH",
  );
  assert.equal(
    code(() => d.start(spec("master", { mcastIfn: "nope0" }))),
    "ENODEV",
  );
  assert.equal(
    code(() => d.start(spec("master", { mcastGroup: "10.1.1.1" }))),
    "EINVAL",
  );
  d.start(spec("master", { syncMaxLen: 600, mcastGroup: "239.1.2.3", mcastPort: 9000, mcastTtl: 4 }));
  assert.deepEqual(d.running()[0], {
    state: "master",
    mcastIfn: "eth9",
    syncId: 0,
    syncMaxLen: 600,
    mcastGroup: "239.1.2.3",
    mcastPort: 9000,
    mcastTtl: 4,
  });
  d.close();
  assert.deepEqual(d.running(), []);
});

test("a backup that starts asks for the table and gets all of it (bulk resync)", async () => {
  const group = memoryGroup();
  const m = kit([{ addr: "10.0.1.2" }, { addr: "10.0.1.3" }], { service: { persistent: true, timeout: 300 } });
  for (let i = 0; i < 200; i++) {
    const c = m.table.schedule(m.svc, flow(`192.168.${i >> 6}.${i & 63}`, 1024 + i), 0) as Conn;
    m.table.setState(c, TCP_S_ESTABLISHED, 0);
  }
  const b = kit([{ addr: "10.0.1.2" }, { addr: "10.0.1.3" }], { service: { persistent: true, timeout: 300 } });
  const master = daemonsFor(m.table, group);
  const backup = daemonsFor(b.table, group);
  master.start(spec("master"));
  await sleep(5);
  assert.equal(backup.resyncPending(), false, "no backup: nothing pending");
  backup.start(spec("backup"));
  assert.equal(backup.resyncPending(), true, "a backup that just started waits for the table");
  for (let i = 0; i < 100 && !backup.status()[0]?.includes("resync complete"); i++) await sleep(10);
  assert.match(backup.status()[0] ?? "", /resync complete \(400 entries from peer\d/);
  assert.equal(backup.resyncPending(), false, "complete: nothing pending");
  assert.equal(b.table.size, 400);
  const key = (c: Conn) => `${c.caddr}:${c.cport} ${c.daddr}:${c.dport} ${c.stateName} ${c.template}`;
  assert.deepEqual([...b.table.entries()].map(key).sort(), [...m.table.entries()].map(key).sort());
  assert.match(master.status()[0] ?? "", /1 resync requests answered/);
  master.close();
  backup.close();
});

test("with no master answering, the backup gives up after its tries and says so", async () => {
  const b = kit([{ addr: "10.0.1.2" }]);
  const backup = daemonsFor(b.table, memoryGroup());
  backup.start(spec("backup"));
  await sleep(200);
  assert.match(backup.status()[0] ?? "", /resync not answered/);
  assert.equal(backup.resyncPending(), false, "given up: no longer pending");
  backup.close();
});

/**
 * Sockets of several hosts on one multicast group, as the kernel delivers them: every host but the
 * sender's gets each datagram (tvs turns multicast loop off on its sending sockets, as the kernel
 * does for the master's), on the group and port it was sent to.
 */
function hostsOnGroup() {
  const members = new Set<EndpointOptions & { host: string }>();
  return (host: string): OpenEndpoint =>
    async (o) => {
      const me = { ...o, host };
      members.add(me);
      return {
        send(msg: Uint8Array) {
          for (const m of members)
            if (m.host !== host && m.port === o.port && m.group === o.group)
              queueMicrotask(() => m.onMessage(Uint8Array.from(msg), host));
        },
        close() {
          members.delete(me);
        },
        sendErrors: 0,
      };
    };
}

/** A director with a master and a backup daemon, its master's records kept for the test to push. */
function meshDirector(name: string, group: ReturnType<typeof hostsOnGroup>, own: Parameters<typeof kit>[0]) {
  const k = kit(own);
  let emit: ((recs: ReturnType<typeof syncedConnOf>[]) => void) | undefined;
  const host: SyncHost = {
    setMaster: (m) => {
      emit = m?.emit;
    },
    dump: async () => [...k.table.entries()].map(syncedConnOf),
    ingest: tableIngest(k.table),
  };
  const daemons = new SyncDaemons({
    host,
    log: quiet,
    now: () => performance.now(),
    settings: DEFAULT_SYNC_SETTINGS,
    resolve,
    open: group(name),
    resyncIntervalMs: 20,
  });
  return {
    name,
    k,
    daemons,
    /** The forwarding path opens `n` connections from `net` and the master sends them. */
    open(net: string, n: number) {
      const recs = [];
      for (let i = 0; i < n; i++) {
        const c = k.table.schedule(k.svc, flow(`${net}.${i + 1}`, 2000 + i), 0) as Conn;
        k.table.setState(c, TCP_S_ESTABLISHED, 0);
        recs.push(syncedConnOf(c));
      }
      assert.ok(emit, `${name}'s master is running`);
      emit(recs);
    },
  };
}

const clients = (t: ReturnType<typeof kit>["table"]) =>
  [...t.entries()]
    .filter((c) => !c.template)
    .map((c) => `${c.caddr}:${c.cport}>${c.daddr} ${c.stateName}`)
    .sort();

test("three directors each running a master and a backup see each other's connections, never their own echo", async () => {
  const group = hostsOnGroup();
  const dests = [{ addr: "10.0.1.2" }, { addr: "10.0.1.3" }];
  const ds = ["a", "b", "c"].map((n) => meshDirector(n, group, dests));
  for (const [i, d] of ds.entries()) {
    d.daemons.start(spec("master", { syncId: i + 1 }));
    d.daemons.start(spec("backup", { syncId: 0 }));
    assert.deepEqual(
      d.daemons.running().map((r) => `${r.state} ${r.syncId}`),
      [`master ${i + 1}`, "backup 0"],
    );
  }
  await sleep(100); // the sockets open; each backup's resync request is answered (empty tables)
  ds[0]!.open("192.168.10", 5);
  ds[1]!.open("192.168.20", 7);
  ds[2]!.open("192.168.30", 3);
  for (const d of ds) d.daemons.stop("master"); // flushes the masters' messages
  await sleep(10);
  const all = clients(ds[0]!.k.table);
  assert.equal(all.length, 15);
  for (const d of ds) assert.deepEqual(clients(d.k.table), all, `${d.name} lists everyone's connections`);
  // Each backup created exactly the other two directors' entries: nothing of its own came back.
  assert.deepEqual(
    ds.map((d) => {
      const b = d.daemons.stats().backup;
      return [b?.created, b?.updated];
    }),
    [
      [10, 0],
      [8, 0],
      [12, 0],
    ],
  );
  for (const d of ds) d.daemons.close();
});

test("a backup with a syncid takes only that syncid's messages; syncid 0 takes every one", async () => {
  const group = hostsOnGroup();
  const dests = [{ addr: "10.0.1.2" }];
  const [a, b, c] = ["a", "b", "c"].map((n) => meshDirector(n, group, dests)) as [
    ReturnType<typeof meshDirector>,
    ReturnType<typeof meshDirector>,
    ReturnType<typeof meshDirector>,
  ];
  a.daemons.start(spec("master", { syncId: 7 }));
  b.daemons.start(spec("master", { syncId: 8 }));
  b.daemons.start(spec("backup", { syncId: 7 }));
  c.daemons.start(spec("backup", { syncId: 0 }));
  await sleep(100);
  a.open("192.168.10", 4);
  b.open("192.168.20", 2);
  a.daemons.stop("master");
  b.daemons.stop("master");
  await sleep(10);
  assert.equal(clients(b.k.table).length, 2 + 4, "b (backup syncid 7) took a's syncid-7 entries");
  assert.equal(clients(c.k.table).length, 4 + 2, "c (backup syncid 0) took both");
  assert.equal(b.daemons.stats().backup?.dropped.syncid, undefined, "b heard no other master");
  b.daemons.close();
  c.daemons.close();
  a.daemons.close();
});
