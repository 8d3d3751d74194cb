// The TCP state machine: the transition table checked cell by cell against the kernel's table
// as printed in ip_vs_proto_tcp.c (transcribed here in the kernel's own sXX notation, so a typo
// in either copy shows up), the flag precedence, and real segment sequences through a ConnTable
// with their effect on active/inactive counts and timeouts, for NAT (both directions) and DR
// (input only).

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCoreError } from "../errors.ts";
import type { Conn } from "./conn.ts";
import { flow, kit } from "./conn-test-kit.ts";
import {
  TCP_ACK,
  TCP_DIR_INPUT,
  TCP_DIR_INPUT_ONLY,
  TCP_DIR_OUTPUT,
  TCP_FIN,
  TCP_RST,
  TCP_STATE_NAMES,
  TCP_SYN,
  tcpFlagIndex,
  tcpNextState,
} from "./tcp-states.ts";

const KERNEL_TABLE = `
INPUT
syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
fin sCL sCW sSS sTW sTW sTW sCL sCW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sSR
OUTPUT
syn sSS sES sSS sSR sSS sSS sSS sSS sSS sLI sSR
fin sTW sFW sSS sTW sFW sTW sCL sTW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sLA sES sES
rst sCL sCL sSS sCL sCL sTW sCL sCL sCL sCL sCL
INPUT_ONLY
syn sSR sES sES sSR sSR sSR sSR sSR sSR sSR sSR
fin sCL sFW sSS sTW sFW sTW sCL sCW sLA sLI sTW
ack sES sES sSS sES sFW sTW sCL sCW sCL sLI sES
rst sCL sCL sCL sSR sCL sCL sCL sCL sLA sLI sCL
`;

const SHORT: Record<string, string> = {
  sNO: "NONE",
  sES: "ESTABLISHED",
  sSS: "SYN_SENT",
  sSR: "SYN_RECV",
  sFW: "FIN_WAIT",
  sTW: "TIME_WAIT",
  sCL: "CLOSE",
  sCW: "CLOSE_WAIT",
  sLA: "LAST_ACK",
  sLI: "LISTEN",
  sSA: "SYNACK",
};
const FLAG: Record<string, number> = { syn: TCP_SYN, fin: TCP_FIN, ack: TCP_ACK, rst: TCP_RST };
const DIR: Record<string, number> = { INPUT: TCP_DIR_INPUT, OUTPUT: TCP_DIR_OUTPUT, INPUT_ONLY: TCP_DIR_INPUT_ONLY };

describe("tcp state table", () => {
  it("matches the kernel's table in every cell of every direction", () => {
    let dir = -1;
    let cells = 0;
    for (const line of KERNEL_TABLE.trim().split("\n")) {
      const words = line.trim().split(/\s+/);
      if (words.length === 1) {
        dir = DIR[words[0] as string] as number;
        continue;
      }
      const flag = FLAG[words[0] as string] as number;
      words.slice(1).forEach((cell, current) => {
        const got = TCP_STATE_NAMES[tcpNextState(dir, current, flag)];
        assert.equal(got, SHORT[cell], `${line.slice(0, 3)} from ${TCP_STATE_NAMES[current]} (dir ${dir})`);
        cells++;
      });
    }
    assert.equal(cells, 3 * 4 * 11);
  });

  it("picks rst over syn over fin over ack, and CLOSE for a segment with none", () => {
    assert.equal(tcpFlagIndex(TCP_RST | TCP_SYN | TCP_FIN | TCP_ACK), 3);
    assert.equal(tcpFlagIndex(TCP_SYN | TCP_FIN | TCP_ACK), 0);
    assert.equal(tcpFlagIndex(TCP_FIN | TCP_ACK), 1);
    assert.equal(tcpFlagIndex(TCP_ACK), 2);
    assert.equal(tcpFlagIndex(0x08 /* PSH alone */), -1);
    assert.equal(TCP_STATE_NAMES[tcpNextState(TCP_DIR_INPUT, 1, 0x08)], "CLOSE");
    // SYN+ACK from the server on a new NAT entry: the syn row, not the ack row.
    assert.equal(TCP_STATE_NAMES[tcpNextState(TCP_DIR_OUTPUT, 3, TCP_SYN | TCP_ACK)], "SYN_RECV");
  });
});

function expectState(c: Conn, name: string, timeoutS: number, now: number) {
  assert.equal(c.stateName, name);
  assert.equal(c.timeoutMs, timeoutS * 1000);
  assert.equal(c.expiresAt, now + timeoutS * 1000);
}

describe("tcp sequences through the table", () => {
  it("NAT: handshake, data, active close by the client; counts follow ESTABLISHED", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const d = svc.dests[0];
    assert.ok(d);
    const c = table.schedule(svc, flow("1.1.1.1", 40000), 0);
    assert.ok(!("error" in c));
    expectState(c, "NONE", 3, 0);
    assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
    table.tcpPacket(c, "in", TCP_SYN, 1);
    expectState(c, "SYN_RECV", 60, 1);
    table.tcpPacket(c, "out", TCP_SYN | TCP_ACK, 2);
    expectState(c, "SYN_RECV", 60, 2);
    table.tcpPacket(c, "in", TCP_ACK, 3);
    expectState(c, "ESTABLISHED", 900, 3);
    assert.deepEqual([d.activeConns, d.inactConns], [1, 0]);
    table.tcpPacket(c, "out", TCP_ACK, 4);
    expectState(c, "ESTABLISHED", 900, 4);
    table.tcpPacket(c, "in", TCP_FIN | TCP_ACK, 5);
    expectState(c, "CLOSE_WAIT", 60, 5);
    assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
    table.tcpPacket(c, "out", TCP_FIN | TCP_ACK, 6);
    expectState(c, "TIME_WAIT", 120, 6);
    table.tcpPacket(c, "in", TCP_ACK, 7);
    expectState(c, "TIME_WAIT", 120, 7);
    assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
    assert.equal(table.expire(7 + 120_000 - 1).length, 0);
    assert.deepEqual(table.expire(7 + 120_000), [c]);
    assert.deepEqual([d.activeConns, d.inactConns], [0, 0]);
    assert.equal(table.size, 0);
  });

  it("NAT: server closes first goes through FIN_WAIT; RST closes", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const c = table.schedule(svc, flow("1.1.1.1", 40001), 0);
    assert.ok(!("error" in c));
    table.tcpPacket(c, "in", TCP_SYN, 0);
    table.tcpPacket(c, "in", TCP_ACK, 0);
    table.tcpPacket(c, "out", TCP_FIN | TCP_ACK, 0);
    expectState(c, "FIN_WAIT", 120, 0);
    table.tcpPacket(c, "in", TCP_RST, 10);
    expectState(c, "CLOSE", 10, 10);
  });

  it("DR: the director sees only the client; 'in' uses the input-only rows", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "droute" }]);
    const d = svc.dests[0];
    assert.ok(d);
    const c = table.schedule(svc, flow("1.1.1.1", 40002), 0);
    assert.ok(!("error" in c));
    table.tcpPacket(c, "in", TCP_SYN, 0);
    expectState(c, "SYN_RECV", 60, 0);
    table.tcpPacket(c, "in", TCP_ACK, 1);
    expectState(c, "ESTABLISHED", 900, 1);
    assert.equal(d.activeConns, 1);
    // Input row would give CLOSE_WAIT; input-only gives FIN_WAIT.
    table.tcpPacket(c, "in", TCP_FIN | TCP_ACK, 2);
    expectState(c, "FIN_WAIT", 120, 2);
    assert.deepEqual([d.activeConns, d.inactConns], [0, 1]);
    table.tcpPacket(c, "in", TCP_ACK, 3);
    expectState(c, "FIN_WAIT", 120, 3);
  });

  it("DR: a reply seen once clears input-only (the kernel's NOOUTPUT flag)", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "droute" }]);
    const c = table.schedule(svc, flow("1.1.1.1", 40003), 0);
    assert.ok(!("error" in c));
    table.tcpPacket(c, "in", TCP_SYN, 0);
    table.tcpPacket(c, "out", TCP_SYN | TCP_ACK, 0);
    table.tcpPacket(c, "in", TCP_ACK, 0);
    table.tcpPacket(c, "in", TCP_FIN | TCP_ACK, 0);
    assert.equal(c.stateName, "CLOSE_WAIT");
  });

  it("in-only rst from SYNACK closes where input would go to SYN_RECV", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const c = table.schedule(svc, flow("1.1.1.1", 40004), 0);
    assert.ok(!("error" in c));
    table.setState(c, 10 /* SYNACK */, 0);
    table.tcpPacket(c, "in-only", TCP_RST, 0);
    assert.equal(c.stateName, "CLOSE");
    table.setState(c, 10, 0);
    table.tcpPacket(c, "in", TCP_RST, 0);
    assert.equal(c.stateName, "SYN_RECV");
  });

  it("TIME_WAIT reuse: a new SYN on the same tuple moves it back to SYN_RECV", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const c = table.schedule(svc, flow("1.1.1.1", 40005), 0);
    assert.ok(!("error" in c));
    table.setState(c, 5 /* TIME_WAIT */, 0);
    table.tcpPacket(c, "in", TCP_SYN, 1);
    expectState(c, "SYN_RECV", 60, 1);
  });

  it("rejects bad arguments without changing the entry", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", fwd: "masq" }]);
    const c = table.schedule(svc, flow("1.1.1.1", 40006), 0);
    assert.ok(!("error" in c));
    for (const call of [
      () => table.tcpPacket(c, "sideways" as "in", TCP_SYN, 0),
      () => table.tcpPacket(c, "in", 256, 0),
      () => table.tcpPacket(c, "in", TCP_SYN, Number.NaN),
      () => table.setState(c, 11, 0),
      () => table.setState(c, -1, 0),
    ]) {
      assert.throws(call, (e) => isCoreError(e) && e.code === "EINVAL");
    }
    assert.equal(c.stateName, "NONE");
    assert.equal(c.expiresAt, 3000);
  });
});
