// The master's send decision (ip_vs_sync_conn_needed), stepped one packet at a time on a real
// connection table with an injected clock.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Conn } from "./conn.ts";
import { syncedConnOf } from "./conn-sync.ts";
import { flow, kit } from "./conn-test-kit.ts";
import { DEFAULT_SYNC_SETTINGS, SyncPolicy, type SyncSettings } from "./sync-policy.ts";
import { TCP_S_CLOSE_WAIT, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_SYN_RECV, TCP_S_TIME_WAIT } from "./tcp-states.ts";

const SYN = 0x02;

function newConn(opts: Parameters<typeof kit>[1] = {}) {
  const k = kit([{ addr: "10.0.1.2" }], opts);
  const port = opts.port ?? 80;
  const c = k.table.schedule(k.svc, flow("192.168.1.10", 40000, "10.0.0.1", port, opts.protocol ?? "tcp"), 0) as Conn;
  assert.ok(!("error" in c));
  return { ...k, c };
}

/** Feed `n` packets through the policy; returns for each packet the entries sent (T = template, C = conn). */
function feed(policy: SyncPolicy, c: Conn, n: number, now = 0): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = "";
    policy.inPacket(c, now, (e) => {
      s += e.template ? "T" : "C";
    });
    out.push(s);
  }
  return out;
}

test("an ESTABLISHED TCP entry is sent at packet 3, 53, 103 (threshold 3, period 50)", () => {
  const { table, c } = newConn();
  table.tcpPacket(c, "in", SYN, 0);
  table.setState(c, TCP_S_ESTABLISHED, 0);
  const p = new SyncPolicy();
  const sent = feed(p, c, 110)
    .map((s, i) => (s ? i + 1 : 0))
    .filter(Boolean);
  assert.deepEqual(sent, [3, 53, 103]);
});

test("TCP states outside ESTABLISHED/FIN_WAIT/CLOSE/CLOSE_WAIT/TIME_WAIT are never sent", () => {
  const { table, c } = newConn();
  table.tcpPacket(c, "in", SYN, 0);
  assert.equal(c.state, TCP_S_SYN_RECV);
  assert.deepEqual(feed(new SyncPolicy(), c, 60).filter(Boolean), []);
});

test("a state change is sent at once, except into ESTABLISHED", () => {
  const { table, c } = newConn();
  const p = new SyncPolicy();
  table.setState(c, TCP_S_ESTABLISHED, 0);
  assert.deepEqual(feed(p, c, 5), ["", "", "C", "", ""]);
  table.setState(c, TCP_S_FIN_WAIT, 0);
  assert.deepEqual(feed(p, c, 2), ["C", ""]);
  table.setState(c, TCP_S_CLOSE_WAIT, 0);
  assert.deepEqual(feed(p, c, 1), ["C"]);
  table.setState(c, TCP_S_TIME_WAIT, 0);
  assert.deepEqual(feed(p, c, 1), ["C"]);
});

test("UDP is sent on the packet count alone; period 0 sends once", () => {
  const { c } = newConn({ protocol: "udp", port: 53 });
  const once: SyncSettings = { ...DEFAULT_SYNC_SETTINGS, period: 0 };
  const sent = (s: SyncSettings) =>
    feed(new SyncPolicy(s), c, 120)
      .map((x, i) => (x ? i + 1 : 0))
      .filter(Boolean);
  const udp = newConn({ protocol: "udp", port: 53 });
  assert.deepEqual(sent(DEFAULT_SYNC_SETTINGS), [3, 53, 103]);
  assert.deepEqual(
    feed(new SyncPolicy(once), udp.c, 120)
      .map((x, i) => (x ? i + 1 : 0))
      .filter(Boolean),
    [3],
  );
});

test("a template is sent with its connection, and at every packet of it (period > 0)", () => {
  const { table, c } = newConn({ service: { persistent: true, timeout: 300 } });
  assert.ok(c.control?.template);
  table.setState(c, TCP_S_ESTABLISHED, 0);
  const p = new SyncPolicy();
  assert.deepEqual(feed(p, c, 4), ["T", "T", "CT", "T"]);
  // sync_persist_mode: the connection itself never goes, the template still does.
  const q = new SyncPolicy({ ...DEFAULT_SYNC_SETTINGS, persistMode: true });
  assert.deepEqual(feed(q, c, 4), ["T", "T", "T", "T"]);
});

test("a template keyed by a SIP Call-ID is sent like any template, with its engine name and key", () => {
  const k = kit([{ addr: "10.0.1.2", port: 5060 }], {
    protocol: "udp",
    port: 5060,
    service: { persistent: true, timeout: 300, pe: "sip" },
  });
  const c = k.table.schedule(k.svc, flow("192.168.1.10", 5060, "10.0.0.1", 5060, "udp"), 0, {
    peData: "a84b4c76e66710@pc33.atlanta.example.com",
  }) as Conn;
  assert.ok(!("error" in c) && c.control?.peName === "sip");
  k.table.touch(c, 0);
  assert.deepEqual(feed(new SyncPolicy(), c, 4), ["T", "T", "CT", "T"]);
  const rec = syncedConnOf(c.control);
  assert.equal(rec.peName, "sip");
  assert.equal(rec.peData, "a84b4c76e66710@pc33.atlanta.example.com");
  assert.equal(syncedConnOf(c).peData, undefined, "the connection itself carries no engine data");
});

test("sync_refresh_period holds back resends until the expiry moved far enough, with retries", () => {
  const { table, c } = newConn({ protocol: "udp", port: 53 });
  table.touch(c, 0);
  // period 0, refresh 60 s: first sync at threshold, then only when the reported expiry moved
  // by 60 s (UDP timeout 300 s, so half of it is 150 s: the refresh period wins).
  const p = new SyncPolicy({ ...DEFAULT_SYNC_SETTINGS, period: 0, refreshPeriodS: 60 });
  const at = (now: number) => {
    table.touch(c, now);
    let sent = false;
    p.inPacket(c, now, () => {
      sent = true;
    });
    return sent;
  };
  assert.equal(at(0), true); // endtime 0 vs 300 s: far apart
  assert.equal(at(1000), false);
  assert.equal(at(59_000), false);
  assert.equal(at(61_000), true);
  // With retries: a resend inside the window after period/8 = 7.5 s, once.
  const r = new SyncPolicy({ ...DEFAULT_SYNC_SETTINGS, period: 0, refreshPeriodS: 60, retries: 1 });
  const u = newConn({ protocol: "udp", port: 53 });
  const go = (now: number) => {
    u.table.touch(u.c, now);
    let sent = false;
    r.inPacket(u.c, now, () => {
      sent = true;
    });
    return sent;
  };
  assert.equal(go(0), true);
  assert.equal(go(5000), false);
  assert.equal(go(8000), true);
  assert.equal(go(9000), false);
});

test("an ingested entry counts as synced at the threshold", () => {
  const { table, c } = newConn();
  table.setState(c, TCP_S_ESTABLISHED, 0);
  const p = new SyncPolicy();
  p.ingested(c);
  const sent = feed(p, c, 60)
    .map((s, i) => (s ? i + 1 : 0))
    .filter(Boolean);
  assert.deepEqual(sent, [50]);
});
