// IPVS's defence strategy on a stepped clock: the automatic modes turning on and off with the
// table's fill and the heap, drop_packet's rate, drop_entry's sweep sparing established flows,
// secure_tcp's table, conn_reuse_mode, and the sysctls by their kernel names.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCoreError } from "../errors.ts";
import type { BoundConn } from "./conn.ts";
import { flow, kit } from "./conn-test-kit.ts";
import { Defense } from "./defense.ts";
import { parseSysctlAssignment } from "./sysctl.ts";
import { TCP_ACK, TCP_S_ESTABLISHED, TCP_S_SYN_RECV, TCP_S_SYNACK, TCP_S_TIME_WAIT, TCP_SYN } from "./tcp-states.ts";

function ok(r: unknown): BoundConn {
  assert.ok(r !== null && typeof r === "object" && !("error" in r), "scheduled");
  return r as BoundConn;
}

describe("Defense levels (update_defense_level)", () => {
  it("automatic modes read 2 under low memory and 1 after; 0 and 3 stay", () => {
    const d = new Defense();
    d.sysctls.amemthresh = 100;
    d.sysctls.drop_entry = 1;
    d.sysctls.secure_tcp = 1;
    d.sysctls.drop_packet = 1;
    d.update(500);
    assert.deepEqual([d.sysctls.drop_entry, d.sysctls.secure_tcp, d.sysctls.drop_packet], [1, 1, 1]);
    assert.equal(d.dropEntryOn || d.secureTcpOn || d.dropRate !== 0, false);
    d.update(75);
    assert.deepEqual([d.sysctls.drop_entry, d.sysctls.secure_tcp, d.sysctls.drop_packet], [2, 2, 2]);
    assert.equal(d.dropEntryOn && d.secureTcpOn, true);
    assert.equal(d.dropRate, 4, "100 / (100 - 75)");
    d.update(0);
    assert.equal(d.dropRate, 1, "nothing free: every new connection");
    d.update(100);
    assert.deepEqual([d.sysctls.drop_entry, d.sysctls.secure_tcp, d.sysctls.drop_packet], [1, 1, 1]);
    assert.equal(d.dropRate, 0);
    d.sysctls.drop_packet = 3;
    d.sysctls.am_droprate = 5;
    d.sysctls.drop_entry = 0;
    d.update(0);
    assert.equal(d.dropRate, 5);
    assert.equal(d.sysctls.drop_entry, 0);
    assert.equal(d.dropEntryOn, false);
  });

  it("todrop drops exactly one in every rate", () => {
    const d = new Defense();
    d.sysctls.drop_packet = 3;
    d.sysctls.am_droprate = 4;
    d.update(1 << 20);
    const drops = Array.from({ length: 12 }, () => d.todrop());
    assert.equal(drops.filter(Boolean).length, 3);
    assert.deepEqual(drops.slice(0, 4), [false, false, false, true]);
    assert.equal(d.packetsDropped, 3);
  });
});

describe("ConnTable under the defence strategy", () => {
  it("drop_packet=1 refuses a share of new flows only once free entries fall below amemthresh", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { limit: 200 });
    table.setSysctl("amemthresh", 100);
    table.setSysctl("drop_packet", 1);
    for (let i = 0; i < 150; i++) ok(table.schedule(svc, flow("1.2.3.4", 1000 + i), 0));
    assert.equal(table.sysctl("drop_packet"), 1);
    table.expire(1000); // 50 free < 100: on, rate 100 / 50 = 2
    assert.equal(table.sysctl("drop_packet"), 2);
    assert.equal(table.defense.dropRate, 2);
    const r = Array.from({ length: 10 }, (_, i) => table.schedule(svc, flow("5.6.7.8", 1 + i), 1000));
    assert.equal(r.filter((x) => "error" in x && x.error === "defense-drop").length, 5);
    assert.equal(table.defense.packetsDropped, 5);
    // Not re-evaluated before a second has passed.
    table.expire(1500);
    assert.equal(table.defense.dropRate, 2);
  });

  it("drop_entry=1 under a SYN flood removes half-open entries each second, never established ones", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }], { limit: 1000 });
    table.setSysctl("amemthresh", 200);
    table.setSysctl("drop_entry", 1);
    const est: BoundConn[] = [];
    for (let i = 0; i < 50; i++) {
      const c = ok(table.schedule(svc, flow("9.9.9.9", 1000 + i), 0));
      table.tcpPacket(c, "in", TCP_SYN, 0);
      table.tcpPacket(c, "out", TCP_SYN | TCP_ACK, 0);
      table.tcpPacket(c, "in", TCP_ACK, 0);
      assert.equal(c.state, TCP_S_ESTABLISHED);
      est.push(c);
    }
    // The flood: 900 spoofed SYNs, each its own source.
    for (let i = 0; i < 900; i++) {
      const c = ok(table.schedule(svc, flow(`10.${(i >> 8) & 255}.${i & 255}.1`, 5000), 10));
      table.tcpPacket(c, "in", TCP_SYN, 10);
    }
    assert.equal(table.size, 950);
    table.expire(1000);
    assert.equal(table.sysctl("drop_entry"), 2);
    assert.equal(table.defense.entriesDropped, 31, "1000 / 32 a second");
    for (let s = 2; s <= 40; s++) table.expire(s * 1000);
    // SYN_RECV's 60 s timeout has not run out: drop_entry alone made room.
    assert.ok(table.size < 1000 - 200, `size ${table.size}`);
    assert.equal(table.sysctl("drop_entry"), 1, "room again: back to automatic-off");
    for (const c of est) assert.equal(c.live, true, "every established flow survives");
  });

  it("the heap under pressure counts as no memory", () => {
    const { table } = kit([{ addr: "192.168.1.2" }], { limit: 1000 });
    table.setSysctl("amemthresh", 100);
    table.setSysctl("secure_tcp", 1);
    table.heapUsed = 0.95;
    table.expire(0);
    assert.equal(table.sysctl("secure_tcp"), 2);
    assert.equal(table.defense.available, 0);
    table.heapUsed = 0.5;
    table.expire(1000);
    assert.equal(table.sysctl("secure_tcp"), 1);
  });

  it("secure_tcp=3: a client's ACK does not establish a NAT entry until the real server's SYN-ACK", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    table.setSysctl("secure_tcp", 3);
    const spoofed = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    table.tcpPacket(spoofed, "in", TCP_SYN, 0);
    table.tcpPacket(spoofed, "in", TCP_ACK, 0);
    assert.equal(spoofed.state, TCP_S_SYN_RECV, "guessed ACK: still half-open");
    const real = ok(table.schedule(svc, flow("1.2.3.4", 2), 0));
    table.tcpPacket(real, "in", TCP_SYN, 0);
    table.tcpPacket(real, "out", TCP_SYN | TCP_ACK, 0);
    assert.equal(real.state, TCP_S_SYNACK);
    table.tcpPacket(real, "in", TCP_ACK, 0);
    assert.equal(real.state, TCP_S_ESTABLISHED);
    table.setSysctl("secure_tcp", 0);
    const plain = ok(table.schedule(svc, flow("1.2.3.4", 3), 0));
    table.tcpPacket(plain, "in", TCP_SYN, 0);
    table.tcpPacket(plain, "in", TCP_ACK, 0);
    assert.equal(plain.state, TCP_S_ESTABLISHED, "normal table: the client's ACK establishes");
  });

  it("conn_reuse_mode: 0 turns reuse off, bit 2 adds DR's FIN_WAIT", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2" }]);
    assert.equal(table.sysctl("conn_reuse_mode"), 1);
    assert.equal(table.connReuse, true);
    const c = ok(table.schedule(svc, flow("1.2.3.4", 1), 0));
    table.setState(c, TCP_S_TIME_WAIT, 0);
    assert.equal(table.reuseExpected(c), true);
    table.setSysctl("conn_reuse_mode", 0);
    assert.equal(table.connReuse, false);
    table.setSysctl("conn_reuse_mode", 3);
    assert.equal(table.options.reuseFinWait, true);
  });

  it("sysctls by the kernel's names; bad names and values refused with where they came from", () => {
    const { table } = kit([{ addr: "192.168.1.2" }]);
    table.setSysctl("net.ipv4.vs.expire_nodest_conn", "1");
    assert.equal(table.options.expireNodestConn, true);
    table.setSysctl("sloppy-tcp", 1);
    assert.equal(table.sysctls().sloppy_tcp, 1);
    assert.equal(table.sysctls().amemthresh, 1024);
    assert.throws(
      () => table.setSysctl("drop_entry", 4),
      (e: unknown) => isCoreError(e) && /0\.\.3/.test(e.message),
    );
    assert.throws(() => table.setSysctl("am_droprate", 0), /1\.\.2147483647/);
    assert.throws(() => table.setSysctl("nope", 1), /unknown sysctl "nope"/);
    assert.throws(() => parseSysctlAssignment("drop_entry", "--sysctl"), /--sysctl: "drop_entry" is not NAME=VALUE/);
    assert.deepEqual(parseSysctlAssignment("secure_tcp=2", "x"), { name: "secure_tcp", value: 2 });
  });
});
