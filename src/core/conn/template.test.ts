// Persistence templates (ip_vs_sched_persist, ip_vs_check_template, ip_vs_conn_expire's
// n_control handling): grouping by netmask, template fields, PersistConn, refresh by new
// connections, survival while controlling connections, invalidation when the destination goes
// or (with expire_quiescent_template) is quiesced, port-0 and fwmark services, and the space a
// persistent flow needs in a full table.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { BoundConn, Conn } from "./conn.ts";
import { flow, kit } from "./conn-test-kit.ts";

function ok(c: BoundConn | { error: string }): BoundConn {
  if ("error" in c) throw new Error(`schedule failed: ${c.error}`);
  return c;
}

const P300 = { persistent: true, timeout: 300 };

describe("persistence templates", () => {
  it("pins a client network (netmask /24) to one destination; other networks are scheduled", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }, { addr: "192.168.1.3" }], {
      service: { ...P300, netmask: 24 },
    });
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1000), 0));
    const b = ok(table.schedule(svc, flow("1.2.3.99", 2000), 0));
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1001), 0));
    const d = ok(table.schedule(svc, flow("1.2.4.1", 1000), 0));
    assert.equal(b.dest, a.dest);
    assert.equal(c.dest, a.dest);
    assert.notEqual(d.dest, a.dest);
    assert.equal(a.control, b.control);
    assert.notEqual(d.control, a.control);
    const [d1, d2] = svc.dests;
    assert.ok(d1 && d2);
    assert.deepEqual([d1.persistConns, d1.inactConns, d2.persistConns, d2.inactConns], [1, 3, 1, 1]);
    assert.equal(table.size, 6);
    assert.equal(table.controlled(a.control as Conn), 3);
    assert.equal(svc.stats.conns, 4, "templates are not counted as connections");
  });

  it("IPv6: the netmask is a prefix length", () => {
    const { table, svc } = kit([{ addr: "fd00::2" }, { addr: "fd00::3" }], {
      vip: "fd00::1",
      service: { ...P300, netmask: 64 },
    });
    const a = ok(table.schedule(svc, flow("2001:db8:1:2::7", 1, "fd00::1"), 0));
    const b = ok(table.schedule(svc, flow("2001:db8:1:2:ffff::9", 1, "fd00::1"), 0));
    const c = ok(table.schedule(svc, flow("2001:db8:1:3::7", 1, "fd00::1"), 0));
    assert.equal(a.control?.caddr, "2001:db8:1:2::");
    assert.equal(b.dest, a.dest);
    assert.notEqual(c.dest, a.dest);
  });

  it("the template carries the client network, port 0, the virtual port and the dest port", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 8080 }], { service: { ...P300, netmask: 16 } });
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1000), 1000));
    const t = c.control;
    assert.ok(t);
    assert.equal(t.template, true);
    assert.deepEqual(
      [t.caddr, t.cport, t.vaddr, t.vport, t.daddr, t.dport, t.stateName],
      ["1.2.0.0", 0, "10.0.0.1", 80, "192.168.1.2", 8080, "NONE"],
    );
    assert.equal(t.timeoutMs, 300_000);
    assert.equal(t.expiresAt, 301_000);
    assert.equal(c.dport, 8080);
    assert.equal(table.findTemplate(svc, "1.2.200.1", 80), t);
    assert.equal(table.lookupIn("tcp", "1.2.0.0", 0, "10.0.0.1", 80), undefined, "templates are not packet entries");
  });

  it("each new connection restarts the template's timer; the template outlives it by the timeout", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { service: P300 });
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    const t = a.control as Conn;
    const b = ok(table.schedule(svc, flow("1.2.3.4", 2), 100_000));
    assert.equal(b.control, t);
    assert.equal(t.expiresAt, 400_000);
    // Children expire at 3 s / 103 s; the template stays until 400 s.
    assert.deepEqual(new Set(table.expire(103_000)), new Set([a, b]));
    assert.equal(table.controlled(t), 0);
    assert.equal(table.expire(399_999).length, 0);
    assert.deepEqual(table.expire(400_000), [t]);
    assert.equal(svc.dests[0]?.persistConns, 0);
  });

  it("a template that expires while controlling connections stays, with a 60 s timeout", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { service: { persistent: true, timeout: 10 } });
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    table.setState(c, 1 /* ESTABLISHED */, 0);
    const t = c.control as Conn;
    assert.equal(t.expiresAt, 10_000);
    assert.equal(table.expire(10_000).length, 0);
    assert.equal(t.live, true);
    assert.equal(t.timeoutMs, 60_000);
    assert.equal(t.expiresAt, 70_000);
    // A new connection now re-arms it with that 60 s.
    ok(table.schedule(svc, flow("1.2.3.4", 2), 20_000));
    assert.equal(t.expiresAt, 80_000);
    table.remove(c, 30_000);
    assert.equal(table.controlled(t), 1);
    table.expire(80_000);
    // The second child (3 s NONE timeout) expired at 23 s, so the template goes at 80 s.
    assert.equal(t.live, false);
    assert.equal(table.size, 0);
  });

  it("a template whose destination was removed is invalidated and the client rescheduled", () => {
    const { table, svc, services, key } = kit([{ addr: "192.168.1.2" }, { addr: "192.168.1.3" }], {
      service: P300,
    });
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    const old = a.control as Conn;
    const gone = a.dest;
    services.deleteDest(key, gone.addr, gone.port);
    const b = ok(table.schedule(svc, flow("1.2.3.4", 2), 1000));
    assert.notEqual(b.dest, gone);
    assert.notEqual(b.control, old);
    // The old template is unreachable, shown with ports 65535, and left to expire.
    assert.equal(old.live, true);
    assert.deepEqual([old.vport, old.dport], [65535, 65535]);
    assert.equal(gone.persistConns, 1);
    assert.equal(services.trash().length, 1);
    table.expire(300_000);
    assert.equal(old.live, false);
    assert.equal(gone.persistConns, 0);
    assert.equal(services.trash().length, 0, "freed once nothing refers to it");
  });

  it("a quiesced destination keeps its clients unless expire_quiescent_template is on", () => {
    for (const expireQuiescentTemplate of [false, true]) {
      const { table, svc, services, key } = kit([{ addr: "192.168.1.2" }, { addr: "192.168.1.3" }], {
        service: P300,
        options: { expireQuiescentTemplate },
      });
      const a = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
      const spec = a.dest.spec();
      services.editDest(key, { ...spec, weight: 0 });
      const b = ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
      assert.equal(b.dest === a.dest, !expireQuiescentTemplate, `expireQuiescentTemplate=${expireQuiescentTemplate}`);
    }
  });

  it("port-0 services: template vport 0; connections keep the packet's port", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 0 }], { port: 0, service: P300 });
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1, "10.0.0.1", 443), 0));
    const b = ok(table.schedule(svc, flow("1.2.3.4", 2, "10.0.0.1", 22), 0));
    assert.equal(a.control, b.control);
    assert.deepEqual([a.control?.vport, a.control?.dport], [0, 0]);
    assert.deepEqual([a.vport, a.dport, b.vport, b.dport], [443, 443, 22, 22]);
  });

  it("fwmark services: TCP and UDP flows of a client share one template keyed by the mark", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }, { addr: "192.168.1.3" }], {
      key: { kind: "fwmark", fwmark: 7, family: 4 },
      service: P300,
    });
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1, "10.0.0.9", 80, "tcp"), 0));
    const b = ok(table.schedule(svc, flow("1.2.3.4", 2, "10.0.0.9", 53, "udp"), 0));
    const c = ok(table.schedule(svc, flow("1.2.3.5", 2, "10.0.0.9", 443, "tcp"), 0));
    assert.equal(a.control, b.control);
    assert.notEqual(c.dest, a.dest);
    assert.equal(a.control?.vaddr, "0.0.0.7");
    assert.deepEqual([a.fwmark, b.fwmark], [7, 7]);
    assert.equal(table.lookupIn("udp", "1.2.3.4", 2, "10.0.0.9", 53), b);
  });

  it("a persistent flow needs room for its template too", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { service: P300, limit: 3 });
    ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    // Same client: only the connection is needed.
    ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
    assert.equal(table.size, 3);
    assert.deepEqual(table.schedule(svc, flow("1.2.3.4", 3), 0), { error: "table-full" });
    table.expire(3000);
    assert.equal(table.size, 1);
    // A new client needs two entries: one free slot is not enough.
    const { table: t2, svc: s2 } = kit([{ addr: "192.168.1.2" }], { service: P300, limit: 2 });
    ok(t2.schedule(s2, flow("1.2.3.4", 1), 0));
    assert.deepEqual(t2.schedule(s2, flow("5.6.7.8", 1), 0), { error: "table-full" });
    assert.equal(t2.size, 2);
    assert.equal(t2.dropped, 1);
  });

  it("one-packet UDP through a template refreshes it without holding it", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 53 }], {
      protocol: "udp",
      port: 53,
      service: { ...P300, ops: true },
    });
    const a = ok(table.schedule(svc, flow("1.2.3.4", 1, "10.0.0.1", 53, "udp"), 0));
    const t = a.control as Conn;
    assert.equal(t.live, true);
    assert.equal(table.controlled(t), 0);
    ok(table.schedule(svc, flow("1.2.3.4", 1, "10.0.0.1", 53, "udp"), 50_000));
    assert.equal(t.expiresAt, 350_000);
    assert.equal(table.size, 1);
  });
});
