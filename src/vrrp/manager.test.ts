// Two (or three) VRRP engines on an in-memory segment, configured from keepalived.conf text through
// the real parser: election, takeover after master_down, priority-0 handover on stop, preemption
// back, sync groups, tracking, reload keeping a master, and the configuration errors prepare() finds.
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfigText } from "../config/load.ts";
import type { VrrpConfig } from "../config/vrrp-spec.ts";
import { silentLogger } from "../core/log.ts";
import type { ScriptRunner } from "./io.ts";
import { VrrpConfigError, VrrpManager } from "./manager.ts";
import { MemoryHost, MemorySegment, MemoryVips } from "./memory-host.ts";
import type { VrrpStateChange } from "./status.ts";

const quiet = silentLogger;

function conf(text: string): { vrrp: VrrpConfig; globals: Record<string, string[]> } {
  const r = loadConfigText("t.conf", text);
  if (!("config" in r)) throw new Error(JSON.stringify(r.diagnostics));
  return { vrrp: r.config.vrrp, globals: r.config.globals };
}

function instance(o: {
  name?: string;
  state?: string;
  prio: number;
  vrid?: number;
  adv?: string;
  extra?: string;
  vip?: string;
  iface?: string;
}): string {
  return `vrrp_instance ${o.name ?? "VI_1"} {
  state ${o.state ?? "BACKUP"}
  interface ${o.iface ?? "eth0"}
  virtual_router_id ${o.vrid ?? 51}
  priority ${o.prio}
  advert_int ${o.adv ?? "0.05"}
  ${o.extra ?? ""}
  virtual_ipaddress {
    ${o.vip ?? "172.16.0.30/24"}
  }
}
`;
}

const V3 = "global_defs {\n  vrrp_version 3\n}\n";

interface Node {
  host: MemoryHost;
  vips: MemoryVips;
  mgr: VrrpManager;
  events: VrrpStateChange[];
  notified: string[][];
}

function node(seg: MemorySegment, name: string, addr: string): Node {
  const host = new MemoryHost(name, seg, {
    eth0: { 4: addr, 6: `fe80::${addr.split(".").pop()}` },
    eth1: { 4: `10.1.0.${addr.split(".").pop()}` },
  });
  const vips = new MemoryVips();
  const notified: string[][] = [];
  const scripts: ScriptRunner = {
    run: async (cmd, args) => {
      notified.push([cmd, ...args]);
      return { code: cmd.includes("fail") ? 1 : 0 };
    },
  };
  const mgr = new VrrpManager({ host, vips, log: quiet, scripts });
  const events: VrrpStateChange[] = [];
  mgr.on("state", (e: VrrpStateChange) => events.push(e));
  return { host, vips, mgr, events, notified };
}

async function start(n: Node, text: string): Promise<void> {
  const c = conf(text);
  await n.mgr.apply(n.mgr.prepare(c.vrrp, c.globals));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, f: () => boolean, ms = 3000): Promise<number> {
  const t0 = performance.now();
  while (!f()) {
    if (performance.now() - t0 > ms) throw new Error(`Timed out waiting for ${what}`);
    await sleep(5);
  }
  return performance.now() - t0;
}

const state = (n: Node, i = "VI_1") => n.mgr.instance(i)?.state;

test("v3 pair: the higher priority wins, the backup never holds the VIP, stop hands over after the skew", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  const b = node(seg, "b", "172.16.0.12");
  t.after(async () => {
    await a.mgr.stop();
    await b.mgr.stop();
  });
  await start(a, V3 + instance({ state: "MASTER", prio: 100, extra: 'notify "/bin/n"' }));
  await start(b, V3 + instance({ prio: 50 }));
  await until("a master", () => state(a) === "MASTER" && a.vips.held.has("172.16.0.30"));
  await sleep(300);
  assert.equal(state(b), "BACKUP");
  assert.equal(b.vips.held.size, 0);
  const sb = b.mgr.status()[0];
  assert.equal(sb?.masterAddress, "172.16.0.11");
  assert.ok((sb?.counters.advert_rcvd ?? 0) > 3);
  assert.ok(a.host.announced.some((x) => x.addrs.includes("172.16.0.30")));
  assert.deepEqual(
    a.notified.find((n) => n[3] === "MASTER"),
    ["/bin/n", "INSTANCE", "VI_1", "MASTER", "100"],
  );
  // A stops: priority 0, so B takes over after its skew, well before master_down.
  const t0 = performance.now();
  await a.mgr.stop();
  assert.equal(a.vips.held.size, 0);
  await until("b master", () => state(b) === "MASTER");
  const took = performance.now() - t0;
  const masterDown = 3 * 50 + (206 * 50) / 256;
  assert.ok(took < masterDown, `takeover ${took.toFixed(0)} ms should be below master_down ${masterDown} ms`);
  assert.ok(b.vips.held.has("172.16.0.30"));
  assert.ok(b.events.some((e) => e.to === "MASTER" && e.vips.includes("172.16.0.30")));
});

test("silence: the backup takes over within master_down; the returning higher priority preempts", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  const b = node(seg, "b", "172.16.0.12");
  t.after(async () => {
    await a.mgr.stop();
    await b.mgr.stop();
  });
  await start(a, V3 + instance({ state: "MASTER", prio: 100 }));
  await start(b, V3 + instance({ prio: 50 }));
  await until("a master", () => state(a) === "MASTER");
  await sleep(100);
  a.host.up = false; // killed: no priority 0
  const took = await until("b master", () => state(b) === "MASTER");
  assert.ok(took < 3 * 50 + 50 + 100, `took ${took}`);
  assert.ok(took > 3 * 50 - 30, `took ${took}, before master_down`);
  // A returns: it is MASTER still (it never heard B), both send; B yields to the higher priority.
  a.host.up = true;
  await until("b backup", () => state(b) === "BACKUP");
  assert.equal(state(a), "MASTER");
  await until("b released", () => !b.vips.held.has("172.16.0.30"));
});

test("nopreempt keeps a lower master; equal priorities elect the greater address", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  const b = node(seg, "b", "172.16.0.12");
  t.after(async () => {
    await a.mgr.stop();
    await b.mgr.stop();
  });
  // Both become master while the segment is cut; joined, the equal priorities compare addresses.
  seg.cut = true;
  await start(a, V3 + instance({ prio: 100 }));
  await start(b, V3 + instance({ prio: 100 }));
  await until("two masters", () => state(a) === "MASTER" && state(b) === "MASTER");
  seg.cut = false;
  await until("a yields", () => state(a) === "BACKUP");
  await sleep(300);
  assert.equal(state(b), "MASTER", "equal priority: 172.16.0.12 > 172.16.0.11");
  assert.equal(state(a), "BACKUP");
  // Now a nopreempt higher-priority node joins: it stays backup.
  const c = node(seg, "c", "172.16.0.13");
  t.after(() => c.mgr.stop());
  await start(c, V3 + instance({ prio: 200, extra: "nopreempt" }));
  await sleep(500);
  assert.equal(state(c), "BACKUP");
  assert.equal(state(b), "MASTER");
});

test("tracking: interface down faults the instance (priority 0 sent), weights move the priority", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  const b = node(seg, "b", "172.16.0.12");
  t.after(async () => {
    await a.mgr.stop();
    await b.mgr.stop();
  });
  await start(a, V3 + instance({ state: "MASTER", prio: 100, extra: "track_interface {\n eth1 weight -60\n}" }));
  await start(b, V3 + instance({ prio: 50 }));
  await until("a master", () => state(a) === "MASTER");
  a.host.down.add("eth1"); // 100 - 60 = 40 < 50: b preempts
  await until("b master", () => state(b) === "MASTER");
  assert.equal(a.mgr.status()[0]?.effectivePriority, 40);
  a.host.down.delete("eth1");
  await until("a master again", () => state(a) === "MASTER");
  a.host.down.add("eth0");
  await until("a fault", () => state(a) === "FAULT");
  assert.ok(a.mgr.status()[0]?.faults[0]?.includes("eth0"));
  await until("b master", () => state(b) === "MASTER");
  assert.equal(a.vips.held.size, 0);
});

test("vrrp_script with weight 0 faults the instance when it fails", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  t.after(() => a.mgr.stop());
  await start(
    a,
    `${V3}vrrp_script chk_fail {\n script /bin/fail\n interval 0.05\n fall 1\n}\n${instance({ state: "MASTER", prio: 100, extra: "track_script {\n chk_fail\n}" })}`,
  );
  await until("fault", () => state(a) === "FAULT");
});

test("sync group members move together", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  const b = node(seg, "b", "172.16.0.12");
  t.after(async () => {
    await a.mgr.stop();
    await b.mgr.stop();
  });
  const group = "vrrp_sync_group VG {\n group {\n  VI_1\n  VI_2\n }\n}\n";
  await start(
    a,
    V3 +
      group +
      instance({ state: "MASTER", prio: 100 }) +
      instance({
        name: "VI_2",
        state: "MASTER",
        prio: 100,
        vrid: 52,
        vip: "172.16.0.31/24",
        extra: "track_interface {\n eth1\n}",
      }),
  );
  await start(
    b,
    V3 + group + instance({ prio: 50 }) + instance({ name: "VI_2", prio: 50, vrid: 52, vip: "172.16.0.31/24" }),
  );
  await until("a masters", () => state(a) === "MASTER" && state(a, "VI_2") === "MASTER");
  // VI_2's tracked link on a goes down: VI_2 faults, VI_1 follows it, b takes both.
  a.host.down.add("eth1");
  await until("b both master", () => state(b) === "MASTER" && state(b, "VI_2") === "MASTER");
  assert.equal(state(a), "FAULT");
  assert.equal(a.vips.held.size, 0);
});

test("reload: an unchanged MASTER stays MASTER, no priority-0 advert; a changed one keeps mastership", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  const b = node(seg, "b", "172.16.0.12");
  t.after(async () => {
    await a.mgr.stop();
    await b.mgr.stop();
  });
  const text = V3 + instance({ state: "MASTER", prio: 100 });
  await start(a, text);
  await start(b, V3 + instance({ prio: 50 }));
  await until("a master", () => state(a) === "MASTER");
  const before = a.mgr.instance("VI_1");
  await start(a, text);
  assert.equal(a.mgr.instance("VI_1"), before, "the same running instance");
  assert.equal(state(a), "MASTER");
  // Changed (a second VIP): a new instance object, still MASTER at once, old VIPs kept.
  await start(a, V3 + instance({ state: "MASTER", prio: 100, vip: "172.16.0.30/24\n172.16.0.40/24" }));
  assert.notEqual(a.mgr.instance("VI_1"), before);
  assert.equal(state(a), "MASTER");
  await until("both vips", () => a.vips.held.has("172.16.0.40"));
  assert.ok(a.vips.held.has("172.16.0.30"));
  assert.equal(a.mgr.instance("VI_1")?.counters.pri_zero_sent, 0);
  // keepalived 2.2.7 drops adverts whose address list differs from its own (addr_list_err), so
  // b, still configured with one VIP, no longer hears a: the operator sees it in the counter.
  await until("addr_list_err on b", () => (b.mgr.status()[0]?.counters.addr_list_err ?? 0) > 0);
});

test("hostile adverts are counted and dropped: TTL, auth, bad checksum; the instance keeps running", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  const b = node(seg, "b", "172.16.0.12");
  t.after(async () => {
    await a.mgr.stop();
    await b.mgr.stop();
  });
  const auth = "authentication {\n auth_type PASS\n auth_pass 1111\n}";
  await start(a, instance({ state: "MASTER", prio: 255, adv: "1", extra: auth }));
  await start(b, instance({ prio: 50, adv: "1", extra: "authentication {\n auth_type PASS\n auth_pass 2222\n}" }));
  // Wait on the counters, not a fixed time: adverts come every second, later on a loaded machine.
  await until("auth_failure on b", () => (b.mgr.status()[0]?.counters.auth_failure ?? 0) >= 1, 6000);
  seg.ttl = 64;
  await until("ip_ttl_err on b", () => (b.mgr.status()[0]?.counters.ip_ttl_err ?? 0) >= 1, 6000);
  // Garbage with our VRID.
  const bogus = Uint8Array.from([0x21, 51, 100, 1, 0, 1, 0, 0, 1, 2]);
  for (const l of seg.listeners)
    if (l.host === b.host)
      l.onRx({ payload: bogus, src: "172.16.0.99", dst: "224.0.0.18", ttl: 255, checksumVerified: false });
  assert.ok((b.mgr.status()[0]?.counters.packet_len_err ?? 0) >= 1);
});

test("prepare refuses what this host cannot run, with the block's position: a missing interface, no source address", () => {
  const seg = new MemorySegment();
  const host = new MemoryHost("a", seg, { eth0: { 4: "172.16.0.11" }, eth2: {} });
  const mgr = new VrrpManager({ host, vips: new MemoryVips(), log: quiet });
  const c = conf(
    V3 +
      instance({ name: "A", prio: 100, iface: "eth9" }) +
      instance({ name: "B", prio: 100, vrid: 60, iface: "eth2", vip: "172.16.0.50/24" }) +
      instance({ name: "C", prio: 100, vrid: 61, vip: "172.16.0.51/24" }),
  );
  assert.throws(
    () => mgr.prepare(c.vrrp, c.globals),
    (e: unknown) => {
      assert.ok(e instanceof VrrpConfigError);
      assert.deepEqual(
        e.problems.map((p) => `${p.origin.line}:${p.origin.column} ${p.message}`),
        [
          '4:1 vrrp_instance A: interface "eth9" does not exist',
          '15:1 vrrp_instance B: interface "eth2" has no IPv4 address to send adverts from',
        ],
      );
      assert.match(e.message, /^t\.conf:4:1: vrrp_instance A/);
      return true;
    },
  );
});

test("gratuitous ARP settings: global_defs vrrp_garp_* and the instance's own; repeat GARPs on becoming master", async (t) => {
  const seg = new MemorySegment();
  const a = node(seg, "a", "172.16.0.11");
  t.after(() => a.mgr.stop());
  const c = conf(
    "global_defs {\n  vrrp_version 3\n  vrrp_garp_master_delay 0\n  vrrp_garp_master_repeat 3\n  vrrp_garp_master_refresh 10\n}\n" +
      instance({ prio: 255, state: "MASTER" }) +
      instance({
        name: "VI_2",
        prio: 100,
        vrid: 52,
        vip: "172.16.0.31/24",
        extra: "garp_master_repeat 2\n garp_master_delay 7",
      }),
  );
  const p = a.mgr.prepare(c.vrrp, c.globals);
  assert.deepEqual(
    p.instances.map((i) => i.garp),
    [
      { delayMs: 0, repeat: 3, refreshMs: 10_000, refreshRepeat: 1 },
      { delayMs: 7000, repeat: 2, refreshMs: 10_000, refreshRepeat: 1 },
    ],
  );
  await a.mgr.apply(p);
  await until("owner master with its VIP", () => state(a) === "MASTER" && a.vips.held.has("172.16.0.30"));
  await sleep(50);
  assert.equal(a.host.announced.filter((x) => x.addrs.includes("172.16.0.30")).length, 3);
});
