// ConnTable: entries found from both directions, accounting, counters, UDP and one-packet
// scheduling, timeouts and ipvsadm --set, the full-table policy, expire_nodest_conn, FULLNAT
// local endpoints, argument validation, and the timer wheel checked against a brute-force
// model over random timeouts.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { destSpec } from "../dest.ts";
import { isCoreError } from "../errors.ts";
import { mulberry32 } from "../seeded-random.ts";
import type { BoundConn, Conn } from "./conn.ts";
import { ConnTable, type SyncedConn, type SyncIngestResult, syncedConnOf } from "./conn-table.ts";
import { flow, kit, testRr } from "./conn-test-kit.ts";
import { TCP_ACK, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_SYN_RECV, TCP_S_TIME_WAIT, TCP_SYN } from "./tcp-states.ts";

function ok(c: BoundConn | { error: string }): BoundConn {
  if ("error" in c) throw new Error(`schedule failed: ${c.error}`);
  return c;
}

function coreErr(code: string) {
  return (e: unknown) => isCoreError(e) && e.code === code;
}

describe("lookups", () => {
  it("NAT entries are found client → VIP and real server → client", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 8080, fwd: "masq" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 5555), 0));
    assert.equal(c.daddr, "192.168.1.2");
    assert.equal(c.dport, 8080);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 5555, "10.0.0.1", 80), c);
    assert.equal(table.lookupIn4("tcp", 0x01020304, 5555, 0x0a000001, 80), c);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 8080, "1.2.3.4", 5555), c);
    assert.equal(table.lookupOut4("tcp", 0xc0a80102, 8080, 0x01020304, 5555), c);
    // Near misses.
    assert.equal(table.lookupIn("udp", "1.2.3.4", 5555, "10.0.0.1", 80), undefined);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 5556, "10.0.0.1", 80), undefined);
    assert.equal(table.lookupIn("tcp", "1.2.3.5", 5555, "10.0.0.1", 80), undefined);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "1.2.3.4", 5555), undefined);
    assert.equal(table.lookupOut("tcp", "1.2.3.4", 5555, "192.168.1.2", 8080), undefined);
  });

  it("DR and TUN entries are found from the client side only", () => {
    const { table, svc } = kit([
      { addr: "192.168.1.2", fwd: "droute" },
      { addr: "192.168.1.3", fwd: "tunnel" },
    ]);
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1000), 0));
    const b = ok(table.schedule(svc, flow("1.2.3.4", 1001), 0));
    assert.deepEqual([a.fwd, b.fwd], ["droute", "tunnel"]);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 1000, "10.0.0.1", 80), a);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 1001, "10.0.0.1", 80), b);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "1.2.3.4", 1000), undefined);
  });

  it("FULLNAT replies are found by laddr:lport, given at schedule or later", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "fullnat" }]);
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1000), 0, { laddr: "192.168.1.1", lport: 30000 }));
    assert.equal(a.laddr, "192.168.1.1");
    assert.equal(a.lport, 30000);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "192.168.1.1", 30000), a);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "1.2.3.4", 1000), undefined);
    const b = ok(table.schedule(svc, flow("1.2.3.4", 1001), 0));
    assert.equal(b.laddr, "");
    assert.throws(() => table.setLocal(b, "192.168.1.1", 30000), coreErr("EEXIST"));
    assert.throws(
      () => table.schedule(svc, flow("1.2.3.5", 1), 0, { laddr: "192.168.1.1", lport: 30000 }),
      coreErr("EEXIST"),
    );
    table.setLocal(b, "192.168.1.1", 30001);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "192.168.1.1", 30001), b);
    table.setLocal(b, "192.168.1.1", 30002);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "192.168.1.1", 30001), undefined);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "192.168.1.1", 30002), b);
    table.remove(a, 0);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "192.168.1.1", 30000), undefined);
  });

  it("IPv6 entries", () => {
    const { table, svc } = kit([{ addr: "fd00::2", fwd: "masq" }], { vip: "fd00::1" });
    const c = ok(table.schedule(svc, flow("2001:db8::7", 4242, "fd00::1"), 0));
    assert.equal(c.family, 6);
    assert.equal(c.caddr, "2001:db8::7");
    assert.equal(table.lookupIn("tcp", "2001:db8::7", 4242, "fd00::1", 80), c);
    assert.equal(table.lookupOut("tcp", "fd00::2", 80, "2001:db8::7", 4242), c);
  });

  it("keeps finding every entry while the table grows and shrinks", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }], { limit: 10_000 });
    const conns: Conn[] = [];
    for (let i = 0; i < 5000; i++) conns.push(ok(table.schedule(svc, flow(`1.2.${i >> 8}.${i & 255}`, 1024 + i), 0)));
    for (let i = 0; i < 5000; i += 2) table.remove(conns[i] as Conn, 0);
    for (let i = 0; i < 5000; i++) {
      const want = i % 2 === 0 ? undefined : conns[i];
      assert.equal(table.lookupIn("tcp", `1.2.${i >> 8}.${i & 255}`, 1024 + i, "10.0.0.1", 80), want);
      assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, `1.2.${i >> 8}.${i & 255}`, 1024 + i), want);
    }
    assert.equal(table.size, 2500);
    assert.equal([...table.entries()].length, 2500);
  });

  it("refuses a second entry for the same flow", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    assert.throws(() => table.schedule(svc, flow("1.2.3.4", 1), 0), coreErr("EEXIST"));
    assert.equal(table.size, 1);
  });
});

describe("counters", () => {
  it("a new entry counts one connection on dest, service and globally; account adds per direction", () => {
    const { table, svc, services } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const d = svc.dests[0];
    assert.ok(d);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
    table.account(c, "in", 3, 180);
    table.account(c, "out", 2, 1500);
    for (const s of [d.stats, svc.stats, services.stats]) {
      assert.deepEqual(s.snapshot(), { conns: 2, inPkts: 3, outPkts: 2, inBytes: 180, outBytes: 1500 });
    }
  });

  it("the packet path's trusted forms change state and counters exactly as the checked ones", () => {
    const a = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const b = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const ca = ok(a.table.schedule(a.svc, flow("1.2.3.4", 1), 0));
    const cb = ok(b.table.schedule(b.svc, flow("1.2.3.4", 1), 0));
    const steps: [Parameters<ConnTable["tcpPacket"]>[1], number, number][] = [
      ["in", TCP_SYN, 1],
      ["out", TCP_SYN | TCP_ACK, 2],
      ["in", TCP_ACK, 3],
    ];
    for (const [dir, flags, now] of steps) {
      a.table.tcpPacket(ca, dir, flags, now);
      a.table.account(ca, dir === "out" ? "out" : "in", 1, 60);
      b.table.tcpPacketTrusted(cb, dir, flags, now);
      b.table.accountTrusted(cb, dir === "out" ? "out" : "in", 1, 60);
      assert.equal(cb.state, ca.state);
    }
    assert.equal(ca.state, TCP_S_ESTABLISHED);
    assert.deepEqual(b.services.stats.snapshot(), a.services.stats.snapshot());
    // The checked form still refuses what the trusted one takes on trust.
    assert.throws(() => a.table.tcpPacket(cb, "in", TCP_ACK, 4), coreErr("EINVAL"));
  });

  it("traffic of a removed destination is not counted (as the kernel's AVAILABLE check)", () => {
    const { table, svc, services, key } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    services.deleteDest(key, "192.168.1.2", 80);
    table.account(c, "in", 1, 100);
    assert.equal(services.stats.inPkts, 0);
  });

  it("rejects bad counts", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    assert.throws(() => table.account(c, "in", -1, 0), coreErr("EINVAL"));
    assert.throws(() => table.account(c, "in", 1, 0.5), coreErr("EINVAL"));
    assert.throws(() => table.account(c, "up" as "in", 1, 1), coreErr("EINVAL"));
    assert.equal(svc.stats.inPkts, 0);
  });
});

describe("active, inactive and overload through real sequences", () => {
  it("sets overload at u_threshold and clears it below 3/4 of it when l_threshold is 0", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", uThreshold: 4 }, { addr: "192.168.1.3" }], {
      service: { scheduler: "first" },
    });
    const d = svc.dests[0];
    assert.ok(d);
    const conns: Conn[] = [];
    for (let i = 0; i < 4; i++) {
      const c = ok(table.schedule(svc, flow("1.2.3.4", 100 + i), 0));
      assert.equal(c.dest, d);
      table.tcpPacket(c, "in", TCP_SYN, 0);
      table.tcpPacket(c, "in", TCP_ACK, 0);
      conns.push(c);
    }
    assert.deepEqual([d.activeConns, d.inactConns, d.overloaded], [4, 0, true]);
    // Overloaded: the next one goes elsewhere.
    assert.equal(ok(table.schedule(svc, flow("1.2.3.4", 200), 0)).daddr, "192.168.1.3");
    // 3 * 4 = 12 is not < 12: still overloaded after one goes; cleared after two.
    table.remove(conns[0] as Conn, 0);
    assert.equal(d.overloaded, true);
    table.remove(conns[1] as Conn, 0);
    assert.deepEqual([d.activeConns, d.overloaded], [2, false]);
    // Leaving ESTABLISHED moves the count, it does not unbind.
    table.setState(conns[2] as Conn, TCP_S_TIME_WAIT, 0);
    assert.deepEqual([d.activeConns, d.inactConns], [1, 1]);
  });

  it("clears overload only below l_threshold when one is set", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", uThreshold: 3, lThreshold: 1 }], {
      service: { scheduler: "first" },
    });
    const d = svc.dests[0];
    assert.ok(d);
    const conns = [1, 2, 3].map((p) => ok(table.schedule(svc, flow("1.2.3.4", p), 0)));
    assert.equal(d.overloaded, true);
    assert.deepEqual(table.schedule(svc, flow("1.2.3.4", 9), 0), { error: "no-destination" });
    table.remove(conns[0] as Conn, 0);
    table.remove(conns[1] as Conn, 0);
    assert.equal(d.overloaded, true);
    table.remove(conns[2] as Conn, 0);
    assert.equal(d.overloaded, false);
  });
});

describe("UDP and one-packet scheduling", () => {
  it("UDP entries are in state UDP with the udp timeout, refreshed by touch", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 53, fwd: "masq" }], { protocol: "udp", port: 53 });
    const d = svc.dests[0];
    assert.ok(d);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 3333, "10.0.0.1", 53, "udp"), 1000));
    assert.equal(c.stateName, "UDP");
    assert.equal(c.expiresAt, 301_000);
    assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
    table.touch(c, 200_000);
    assert.equal(c.expiresAt, 500_000);
    assert.equal(table.expire(499_999).length, 0);
    assert.deepEqual(table.expire(500_000), [c]);
    assert.equal(d.inactConns, 0);
  });

  it("ops: the entry is returned and counted but never stored", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 53 }], {
      protocol: "udp",
      port: 53,
      service: { ops: true },
    });
    const d = svc.dests[0];
    assert.ok(d);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 3333, "10.0.0.1", 53, "udp"), 0));
    assert.equal(c.onePacket, true);
    assert.equal(c.live, false);
    assert.equal(table.size, 0);
    assert.equal(table.lookupIn("udp", "1.2.3.4", 3333, "10.0.0.1", 53), undefined);
    assert.deepEqual([d.inactConns, d.stats.conns], [0, 1]);
    table.account(c, "in", 1, 60);
    assert.equal(d.stats.inPkts, 1);
    // A second packet of the same flow is scheduled again.
    ok(table.schedule(svc, flow("1.2.3.4", 3333, "10.0.0.1", 53, "udp"), 0));
    assert.equal(d.stats.conns, 2);
  });
});

describe("timeouts", () => {
  it("defaults are the kernel's and --set changes tcp, tcpfin, udp with 0 keeping the value", () => {
    const { table } = kit([{ addr: "192.168.1.2" }]);
    assert.deepEqual(table.timeouts(), { tcp: 900, tcpfin: 120, udp: 300 });
    table.setTimeouts({ tcp: 3600, tcpfin: 0, udp: 0 });
    assert.deepEqual(table.timeouts(), { tcp: 3600, tcpfin: 120, udp: 300 });
    table.setTimeouts({ tcp: 0, tcpfin: 30, udp: 60 });
    assert.deepEqual(table.timeouts(), { tcp: 3600, tcpfin: 30, udp: 60 });
    assert.equal(table.stateTimeoutMs("tcp", TCP_S_TIME_WAIT), 120_000);
  });

  it("a new timeout applies from the next transition", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    table.setState(c, TCP_S_ESTABLISHED, 0);
    table.setTimeouts({ tcp: 10, tcpfin: 5, udp: 0 });
    assert.equal(c.expiresAt, 900_000);
    table.tcpPacket(c, "in", TCP_ACK, 100);
    assert.equal(c.expiresAt, 10_100);
    table.setState(c, TCP_S_FIN_WAIT, 200);
    assert.equal(c.expiresAt, 5200);
    assert.deepEqual(table.expire(5200), [c]);
  });

  it("a new udp timeout reaches live UDP entries at their next packet", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 53 }], { protocol: "udp", port: 53 });
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1, "10.0.0.1", 53, "udp"), 0));
    table.setTimeouts({ tcp: 0, tcpfin: 0, udp: 30 });
    assert.equal(c.expiresAt, 300_000);
    table.touch(c, 1000);
    assert.equal(c.expiresAt, 31_000);
  });

  it("rejects negative, fractional and too large values, changing nothing", () => {
    const { table } = kit([{ addr: "192.168.1.2" }]);
    for (const t of [
      { tcp: -1, tcpfin: 0, udp: 0 },
      { tcp: 0, tcpfin: 1.5, udp: 0 },
      { tcp: 100, tcpfin: 0, udp: 2 ** 31 },
    ]) {
      assert.throws(
        () => table.setTimeouts(t),
        (e) => isCoreError(e) && e.op === "set-timeout",
      );
    }
    assert.deepEqual(table.timeouts(), { tcp: 900, tcpfin: 120, udp: 300 });
  });
});

describe("full table", () => {
  it("refuses new flows, counts them, and leaves scheduler and destinations alone", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }, { addr: "192.168.1.3" }], { limit: 2 });
    ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
    const calls = testRr.calls;
    const before = svc.dests.map((d) => d.inactConns);
    assert.deepEqual(table.schedule(svc, flow("1.2.3.4", 3), 0), { error: "table-full" });
    assert.equal(table.dropped, 1);
    assert.equal(testRr.calls, calls);
    assert.deepEqual(
      svc.dests.map((d) => d.inactConns),
      before,
    );
    assert.equal(svc.stats.conns, 2);
    // Room again after expiry.
    table.expire(3000);
    assert.equal(table.size, 0);
    ok(table.schedule(svc, flow("1.2.3.4", 3), 3000));
  });

  it("reclaims TIME_WAIT entries before refusing (issue #11 item 6)", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { limit: 100 });
    const removed: Conn[] = [];
    table.onRemove = (c) => removed.push(c);
    const done: BoundConn[] = [];
    // One finished connection every 300 ms (each in its own timer tick), lingering in TIME_WAIT.
    for (let i = 0; i < 100; i++) {
      const c = ok(table.schedule(svc, flow("1.2.3.4", 1000 + i), i * 300));
      table.setState(c, TCP_S_ESTABLISHED, i * 300);
      table.setState(c, TCP_S_TIME_WAIT, i * 300);
      done.push(c);
    }
    // Nothing is active: the next 100 clients all get in, none is refused.
    for (let i = 0; i < 100; i++) ok(table.schedule(svc, flow("5.6.7.8", 2000 + i), 30_000 + i));
    assert.equal(table.dropped, 0);
    assert.equal(table.reclaimed, 100);
    assert.equal(table.size, 100);
    // The ones that expire first went first, and each went through onRemove.
    assert.deepEqual(removed, done);
  });

  it("never reclaims established connections; half-open ones only after finished ones", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { limit: 3 });
    const est = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    table.setState(est, TCP_S_ESTABLISHED, 0);
    const half = ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
    table.setState(half, TCP_S_SYN_RECV, 0);
    const tw = ok(table.schedule(svc, flow("1.2.3.4", 3), 0));
    table.setState(tw, TCP_S_TIME_WAIT, 0);
    const a = ok(table.schedule(svc, flow("1.2.3.4", 4), 10));
    assert.equal(tw._id, -1, "TIME_WAIT went first");
    assert.notEqual(half._id, -1);
    table.setState(a, TCP_S_ESTABLISHED, 10);
    ok(table.schedule(svc, flow("1.2.3.4", 5), 20));
    assert.equal(half._id, -1, "then the half-open one");
    assert.equal(table.reclaimed, 2);
    const b = table.lookupIn("tcp", "1.2.3.4", 5, "10.0.0.1", 80) as BoundConn;
    table.setState(b, TCP_S_ESTABLISHED, 20);
    // Only established entries are left: refused, and no other walk for a second.
    assert.deepEqual(table.schedule(svc, flow("1.2.3.4", 6), 30), { error: "table-full" });
    table.setState(b, TCP_S_TIME_WAIT, 40);
    assert.deepEqual(table.schedule(svc, flow("1.2.3.4", 7), 500), { error: "table-full" });
    ok(table.schedule(svc, flow("1.2.3.4", 8), 1100));
    assert.equal(table.dropped, 2);
    assert.equal(est._id >= 0, true, "the established connection stayed");
  });

  it("validates the limit", () => {
    const { services } = kit([]);
    assert.throws(() => new ConnTable({ services, limit: 0 }), coreErr("ERANGE"));
    assert.throws(() => new ConnTable({ services, limit: 1.5 }), coreErr("ERANGE"));
  });
});

describe("expire_nodest_conn", () => {
  it("off: entries of a removed destination live on and are still found", () => {
    const { table, svc, services, key } = kit([{ addr: "192.168.1.2" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    services.deleteDest(key, "192.168.1.2", 80);
    assert.equal(services.trash().length, 1);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 1, "10.0.0.1", 80), c);
    assert.equal(c.dest.available, false);
    assert.equal(table.expire(2999).length, 0);
    assert.deepEqual(table.expire(3000), [c]);
    assert.equal(services.trash().length, 0, "the trashed destination is freed");
  });

  it("on: the next lookup removes the entry; expire() sweeps the rest", () => {
    const { table, svc, services, key } = kit([{ addr: "192.168.1.2" }, { addr: "192.168.1.3" }], {
      options: { expireNodestConn: true },
      service: { scheduler: "first" },
    });
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    const b = ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
    assert.equal(a.daddr, "192.168.1.2");
    services.deleteDest(key, "192.168.1.2", 80);
    const removed: Conn[] = [];
    table.onRemove = (c) => removed.push(c);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 1, "10.0.0.1", 80), undefined);
    assert.deepEqual(removed, [a]);
    // The same flow is now scheduled afresh to the remaining destination.
    assert.equal(ok(table.schedule(svc, flow("1.2.3.4", 1), 0)).daddr, "192.168.1.3");
    assert.deepEqual(table.expire(1), [b]);
    assert.equal(services.trash().length, 0);
    assert.equal(table.size, 1);
  });
});

describe("validation", () => {
  it("schedule rejects foreign services and malformed flows without side effects", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    const other = kit([{ addr: "192.168.1.2" }]).svc;
    assert.throws(() => table.schedule(other, flow("1.2.3.4", 1), 0), coreErr("ESRCH"));
    for (const f of [
      flow("1.2.3.4", 70000),
      flow("1.2.3", 1),
      flow("01.2.3.4", 1),
      flow("1.2.3.4", 1, "10.0.0.2"),
      flow("1.2.3.4", 1, "10.0.0.1", 81),
      flow("1.2.3.4", 1, "10.0.0.1", 80, "udp"),
      flow("::1", 1),
    ]) {
      assert.throws(() => table.schedule(svc, f, 0), coreErr("EINVAL"), JSON.stringify(f));
    }
    assert.throws(() => table.schedule(svc, flow("1.2.3.4", 1), Number.POSITIVE_INFINITY), coreErr("EINVAL"));
    assert.throws(() => table.schedule(svc, flow("1.2.3.4", 1), 0, { fwmark: -1 }), coreErr("EINVAL"));
    assert.throws(
      () => table.schedule(svc, flow("1.2.3.4", 1), 0, { laddr: "192.168.1.1", lport: 1 }),
      coreErr("EINVAL"),
      "a local endpoint for a non-FULLNAT destination",
    );
    assert.equal(table.size, 0);
    assert.equal(svc.stats.conns, 0);
    assert.equal(svc.dests[0]?.inactConns, 0);
  });

  it("lookups reject malformed arguments", () => {
    const { table } = kit([{ addr: "192.168.1.2" }]);
    assert.throws(() => table.lookupIn("icmp" as "tcp", "1.2.3.4", 1, "10.0.0.1", 80), coreErr("EINVAL"));
    assert.throws(() => table.lookupIn("tcp", "1.2.3.4", -1, "10.0.0.1", 80), coreErr("EINVAL"));
    assert.throws(() => table.lookupOut("tcp", "", 1, "10.0.0.1", 80), coreErr("EINVAL"));
  });

  it("entries of another table are refused; entries already gone are ignored", () => {
    const k1 = kit([{ addr: "192.168.1.2" }]);
    const k2 = kit([{ addr: "192.168.1.2" }]);
    const c = ok(k1.table.schedule(k1.svc, flow("1.2.3.4", 1), 0));
    assert.throws(() => k2.table.touch(c, 0), coreErr("EINVAL"));
    assert.throws(() => k2.table.remove(c, 0), coreErr("EINVAL"));
    k1.table.remove(c, 0);
    k1.table.remove(c, 0);
    k1.table.touch(c, 5);
    k1.table.tcpPacket(c, "in", TCP_SYN, 5);
    assert.equal(c.live, false);
    assert.equal(c.expiresAt, 3000);
    assert.equal(k1.table.size, 0);
  });
});

function wheelAgainstModel(start: number): void {
  const rnd = mulberry32(12345);
  const { table, svc } = kit([{ addr: "192.168.1.2", port: 53 }], {
    protocol: "udp",
    port: 53,
    limit: 100_000,
  });
  let now = start;
  let port = 1;
  const model = new Map<Conn, number>();
  for (let step = 0; step < 400; step++) {
    // New entries with timeouts from 1 s to 40 minutes (beyond one turn of the wheel).
    table.setTimeouts({ tcp: 0, tcpfin: 0, udp: 1 + Math.floor(rnd() * 2400) });
    for (let i = 0; i < 20; i++) {
      const c = ok(
        table.schedule(svc, flow(`1.1.${(port >> 8) & 255}.${port & 255}`, port, "10.0.0.1", 53, "udp"), now),
      );
      port = (port % 60000) + 1;
      model.set(c, c.expiresAt);
    }
    // Touch the oldest live ones: their expiry moves later while they sit in an earlier slot.
    for (const c of [...model.keys()].slice(0, 10)) {
      table.touch(c, now);
      model.set(c, c.expiresAt);
    }
    const stepMs = rnd() < 0.1 ? Math.floor(rnd() * 3_000_000) : Math.floor(rnd() * 5_000);
    now += stepMs;
    const got = new Set(table.expire(now));
    const want = new Set([...model].filter(([, at]) => at <= now).map(([c]) => c));
    assert.equal(got.size, want.size, `step ${step} at ${now}`);
    for (const c of want) assert.ok(got.has(c), `step ${step}: ${c.caddr}:${c.cport} due at ${model.get(c)}`);
    for (const c of want) model.delete(c);
    assert.equal(table.size, model.size);
  }
}

describe("timer wheel", () => {
  for (const start of [5_000, 1_763_700_000_000]) {
    it(`expires exactly what a brute-force model says (random timeouts, touches, steps; clock at ${start})`, () => {
      wheelAgainstModel(start);
    });
  }

  it("a shorter timeout pulls the expiry earlier", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    table.setState(c, TCP_S_ESTABLISHED, 0);
    table.expire(1000);
    table.setState(c, 6 /* CLOSE */, 2000);
    assert.equal(c.expiresAt, 12_000);
    assert.equal(table.expire(11_999).length, 0);
    assert.deepEqual(table.expire(12_000), [c]);
  });

  it("onRemove may remove or touch other entries during expire", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    const b = ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
    const c = ok(table.schedule(svc, flow("1.2.3.4", 3), 0));
    table.onRemove = (x) => {
      if (x === a && b.live) table.remove(b, 3000);
      if (x !== a && a.live) table.touch(a, 3000);
    };
    const out = table.expire(3000);
    // Whatever the order, every entry is either gone (and reported once) or re-armed for later.
    for (const x of [a, b, c]) assert.equal(x.live, !out.includes(x) && x !== b ? true : x.live);
    assert.equal(new Set(out).size, out.length);
    assert.equal(table.size, [a, b, c].filter((x) => x.live).length);
    for (const x of [a, b, c]) if (x.live) assert.ok(x.expiresAt > 3000);
    table.onRemove = undefined;
    table.expire(10_000);
    assert.equal(table.size, 0);
  });
});

describe("destination revival", () => {
  it("a destination re-added from the trash keeps its entries and counts", () => {
    const { table, svc, services, key } = kit([{ addr: "192.168.1.2" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    services.deleteDest(key, "192.168.1.2", 80);
    const d = services.addDest(key, destSpec("192.168.1.2", 80));
    assert.equal(d, c.dest);
    assert.equal(d.inactConns, 1);
    table.expire(3000);
    assert.equal(d.inactConns, 0);
  });
});

describe("conn_reuse_mode", () => {
  it("a SYN on a finished, unpersisted TCP entry is expected to be a new connection", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "droute" }]);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    const cases: Array<[number, boolean]> = [
      [TCP_S_ESTABLISHED, false],
      [TCP_S_TIME_WAIT, true],
      [6 /* CLOSE */, true],
      [TCP_S_FIN_WAIT, false],
    ];
    for (const [state, want] of cases) {
      table.setState(c, state, 0);
      assert.equal(table.reuseExpected(c), want, `state ${c.stateName}`);
    }
    table.options.reuseFinWait = true;
    assert.equal(table.reuseExpected(c), true, "FIN_WAIT with no replies seen, conn_reuse_mode bit 2");
    table.tcpPacket(c, "out", TCP_ACK, 0);
    table.setState(c, TCP_S_FIN_WAIT, 0);
    assert.equal(table.reuseExpected(c), false, "a reply was seen");
  });

  it("never for an entry under a persistence template", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { service: { persistent: true, timeout: 300 } });
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    table.setState(c, TCP_S_TIME_WAIT, 0);
    assert.equal(table.reuseExpected(c), false);
  });
});

describe("entries from connection sync (ingestSynced)", () => {
  const base: SyncedConn = {
    protocol: "tcp",
    caddr: "1.2.3.4",
    cport: 4000,
    vaddr: "10.0.0.1",
    vport: 80,
    daddr: "192.168.1.2",
    dport: 80,
    fwmark: 0,
    fwd: "masq",
    template: false,
    inactive: false,
    noOutput: false,
    state: TCP_S_ESTABLISHED,
    timeoutS: 0,
  };

  function created(r: SyncIngestResult): Conn {
    if (r.outcome !== "created") throw new Error(`expected a new entry, got ${r.outcome}`);
    return r.conn;
  }

  it("creates an entry bound to the local destination, then updates it in place", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const d = svc.dests[0];
    assert.ok(d);
    const c = created(table.ingestSynced(base, 1000));
    assert.deepEqual([c.stateName, c.expiresAt, d.activeConns, d.inactConns], ["ESTABLISHED", 901_000, 1, 0]);
    assert.equal(c.dest, d);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 4000, "10.0.0.1", 80), c);
    assert.equal(table.lookupOut("tcp", "192.168.1.2", 80, "1.2.3.4", 4000), c);
    assert.equal(svc.stats.conns, 0, "synced entries are not new connections");
    const r = table.ingestSynced({ ...base, inactive: true, state: TCP_S_TIME_WAIT, timeoutS: 30 }, 2000);
    assert.deepEqual(r, { outcome: "updated", conn: c });
    assert.deepEqual([c.stateName, c.expiresAt, d.activeConns, d.inactConns], ["TIME_WAIT", 32_000, 0, 1]);
    assert.equal(table.size, 1);
  });

  it("templates count as PersistConn and pin later flows of the client network", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }, { addr: "192.168.1.3" }], {
      service: { persistent: true, timeout: 300, netmask: 24 },
    });
    const t = created(
      table.ingestSynced({ ...base, caddr: "1.2.3.0", cport: 0, daddr: "192.168.1.3", template: true, state: 0 }, 0),
    );
    assert.equal(t.expiresAt, 180_000);
    assert.equal(svc.dests[1]?.persistConns, 1);
    const c = ok(table.schedule(svc, flow("1.2.3.77", 5), 0));
    assert.equal(c.daddr, "192.168.1.3");
    assert.equal(c.control, t);
  });

  it("a first entry from sync starts the clock: it expires on time, not a wheel turn late", () => {
    const { table } = kit([{ addr: "192.168.1.2" }]);
    const c = created(table.ingestSynced({ ...base, timeoutS: 1 }, 0));
    assert.deepEqual(table.expire(100_000), [c]);
  });

  it("keeps entries for services or real servers not here unbound: listed, never forwarded, bound when they appear", () => {
    const { table, services, key, svc } = kit([{ addr: "192.168.1.2" }]);
    // The service (port 81) and the real server (192.168.1.9) are missing.
    const a = created(table.ingestSynced({ ...base, vport: 81, fwd: "droute", noOutput: true }, 0));
    const b = created(table.ingestSynced({ ...base, cport: 4001, daddr: "192.168.1.9", dport: 8080 }, 0));
    assert.equal(table.size, 2, "kept, and counted against the limit");
    assert.deepEqual(
      [a.dest, a.daddr, a.dport, a.fwd, a.stateName, a.expiresAt],
      [undefined, "192.168.1.2", 80, "droute", "ESTABLISHED", 900_000],
    );
    assert.deepEqual([b.dest, b.daddr, b.dport, b.fwd], [undefined, "192.168.1.9", 8080, "masq"]);
    assert.deepEqual([...table.entries()], [a, b], "listed like any entry");
    // Never handed to a data plane while unbound, from either direction.
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 4000, "10.0.0.1", 81), undefined);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 4001, "10.0.0.1", 80), undefined);
    assert.equal(table.lookupOut("tcp", "192.168.1.9", 8080, "1.2.3.4", 4001), undefined);
    assert.equal(svc.dests[0]?.activeConns, 0);
    // The real server appears (as a DR server): the next lookup binds the entry, which takes its
    // method and is counted on it.
    services.addDest(key, destSpec("192.168.1.9", 8080, { fwd: "droute" }));
    const d9 = svc.findDest("192.168.1.9", 8080);
    assert.ok(d9);
    assert.equal(table.lookupIn("tcp", "1.2.3.4", 4001, "10.0.0.1", 80), b);
    assert.deepEqual([b.dest, b.fwd, d9.activeConns, d9.inactConns], [d9, "droute", 1, 0]);
    // Still-unbound entries expire like any other, and touch no destination.
    assert.deepEqual(new Set(table.expire(900_000)), new Set([a, b]));
    assert.deepEqual([d9.activeConns, table.size], [0, 0]);
  });

  it("a record for an entry still unbound binds it once its service exists", () => {
    const { table, services, key } = kit([{ addr: "192.168.1.2" }]);
    const c = created(table.ingestSynced({ ...base, daddr: "192.168.1.5", state: TCP_S_FIN_WAIT, inactive: true }, 0));
    assert.equal(c.dest, undefined);
    services.addDest(key, destSpec("192.168.1.5", 80, { fwd: "masq" }));
    const r = table.ingestSynced({ ...base, daddr: "192.168.1.5", inactive: false }, 10);
    assert.deepEqual(r, { outcome: "updated", conn: c });
    const d5 = r.outcome === "updated" ? r.conn.dest : undefined;
    assert.ok(d5);
    assert.deepEqual([d5.addr, d5.activeConns, d5.inactConns, c.stateName], ["192.168.1.5", 1, 0, "ESTABLISHED"]);
    assert.equal(table.lookupOut("tcp", "192.168.1.5", 80, "1.2.3.4", 4000), c, "NAT replies find it");
  });

  it("a new flow replaces an unbound entry whose real server is still missing", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    const u = created(table.ingestSynced({ ...base, daddr: "192.168.1.9" }, 0));
    const c = ok(table.schedule(svc, flow("1.2.3.4", 4000), 0));
    assert.equal(u.live, false);
    assert.equal(c.daddr, "192.168.1.2");
    assert.equal(table.size, 1);
  });

  it("refuses records beyond the limit and counts them", () => {
    const { table } = kit([{ addr: "192.168.1.2" }], { limit: 1 });
    created(table.ingestSynced(base, 0));
    assert.deepEqual(table.ingestSynced({ ...base, cport: 4001 }, 0), { outcome: "refused", reason: "table-full" });
    assert.equal(table.dropped, 1);
    assert.equal(table.ingestSynced({ ...base, state: TCP_S_TIME_WAIT }, 0).outcome, "updated", "updates still apply");
  });

  it("refuses malformed records with EINVAL before changing anything", () => {
    const { table } = kit([{ addr: "192.168.1.2" }]);
    const bad: Partial<Record<keyof SyncedConn, unknown>>[] = [
      { state: 99 },
      { caddr: "01.2.3.4" },
      { vaddr: "2001:DB8::1" },
      { cport: 70000 },
      { fwd: "bypass" },
      { timeoutS: -1 },
      { fwmark: 1.5 },
      { template: "yes" },
      { laddr: "10.9.9.9" },
    ];
    for (const over of bad)
      assert.throws(
        () => table.ingestSynced({ ...base, ...over } as SyncedConn, 0),
        coreErr("EINVAL"),
        JSON.stringify(over),
      );
    assert.equal(table.size, 0);
  });

  it("a sync master's record of an entry round-trips into an equal entry on a backup", () => {
    const master = kit([{ addr: "192.168.1.2", fwd: "fullnat" }]);
    const m = ok(master.table.schedule(master.svc, flow("1.2.3.4", 1234), 0, { laddr: "10.9.0.1", lport: 40000 }));
    master.table.tcpPacket(m, "in", TCP_SYN, 0);
    master.table.tcpPacket(m, "out", TCP_SYN | TCP_ACK, 0);
    master.table.tcpPacket(m, "in", TCP_ACK, 0);
    const rec = syncedConnOf(m);
    assert.deepEqual(
      [rec.fwd, rec.state, rec.inactive, rec.timeoutS, rec.laddr, rec.lport],
      ["fullnat", TCP_S_ESTABLISHED, false, 900, "10.9.0.1", 40000],
    );
    const backup = kit([{ addr: "192.168.1.2", fwd: "fullnat" }]);
    const b = created(backup.table.ingestSynced(rec, 5000));
    const view = (c: Conn) => [
      c.protocol,
      c.caddr,
      c.cport,
      c.vaddr,
      c.vport,
      c.daddr,
      c.dport,
      c.fwd,
      c.stateName,
      c.laddr,
      c.lport,
    ];
    assert.deepEqual(view(b), view(m));
    assert.equal(b.expiresAt, 905_000);
    assert.equal(backup.table.lookupOut("tcp", "192.168.1.2", 80, "10.9.0.1", 40000), b, "FULLNAT replies find it");
  });
});
