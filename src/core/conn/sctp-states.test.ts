// The SCTP state machine: the transition table checked cell by cell against the kernel's
// sctp_states[] as printed in ip_vs_proto_sctp.c (transcribed in the kernel's sXX notation),
// chunk types mapped to events, and an association's life through a ConnTable with its
// active/inactive counts and timeouts.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Conn } from "./conn.ts";
import { flow, kit } from "./conn-test-kit.ts";
import {
  SCTP_EV_ABORT,
  SCTP_EV_COOKIE_ACK,
  SCTP_EV_DATA,
  SCTP_EV_INIT,
  SCTP_STATE_NAMES,
  sctpEvent,
  sctpNextState,
} from "./sctp-states.ts";

const KERNEL_TABLE = `
INPUT
d   sES sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
i   sI1 sIN sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sIN sIN
i_a sCW sCW sCW sCS sCR sCO sCO sCE sES sSS sSR sSA sRJ sCL
c_e sCR sIN sIN sCR sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
c_a sES sI1 sIN sCS sCR sCW sCO sES sES sSS sSR sSA sRJ sCL
s   sSR sI1 sIN sCS sCR sCW sCO sCE sSR sSS sSR sSA sRJ sCL
s_a sCL sIN sIN sCS sCR sCW sCO sCE sES sCL sSR sCL sRJ sCL
s_c sCL sCL sCL sCS sCR sCW sCO sCE sES sSS sSR sCL sRJ sCL
err sCL sI1 sIN sCS sCR sCW sCO sCL sES sSS sSR sSA sRJ sCL
ab  sCL sCL sCL sCL sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL
OUTPUT
d   sES sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
i   sCW sCW sCW sCW sCW sCW sCW sCW sES sCW sCW sCW sCW sCW
i_a sCS sCS sCS sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
c_e sCE sCE sCE sCE sCE sCE sCE sCE sES sSS sSR sSA sRJ sCL
c_a sES sES sES sES sES sES sES sES sES sSS sSR sSA sRJ sCL
s   sSS sSS sSS sSS sSS sSS sSS sSS sSS sSS sSR sSA sRJ sCL
s_a sSA sSA sSA sSA sSA sCW sCO sCE sES sSA sSA sSA sRJ sCL
s_c sCL sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
err sCL sCL sCL sCL sCL sCW sCO sCE sES sSS sSR sSA sRJ sCL
ab  sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL sCL
INPUT_ONLY
d   sES sI1 sIN sCS sCR sES sCO sCE sES sSS sSR sSA sRJ sCL
i   sI1 sIN sIN sIN sIN sIN sCO sCE sES sSS sSR sSA sIN sIN
i_a sCE sCE sCE sCE sCE sCE sCO sCE sES sSS sSR sSA sRJ sCL
c_e sES sES sES sES sES sES sCO sCE sES sSS sSR sSA sRJ sCL
c_a sES sI1 sIN sES sES sCW sES sES sES sSS sSR sSA sRJ sCL
s   sSR sI1 sIN sCS sCR sCW sCO sCE sSR sSS sSR sSA sRJ sCL
s_a sCL sIN sIN sCS sCR sCW sCO sCE sCL sCL sSR sCL sRJ sCL
s_c sCL sCL sCL sCL sCL sCW sCO sCE sES sSS sCL sCL sRJ sCL
err sCL sI1 sIN sCS sCR sCW sCO sCE sES sSS sSR sSA sRJ sCL
ab  sCL sCL sCL sCL sCL sRJ sCL sCL sCL sCL sCL sCL sCL sCL
`;

const SHORT: Record<string, string> = {
  sNO: "NONE",
  sI1: "INIT1",
  sIN: "INIT",
  sCS: "C-SENT",
  sCR: "C-REPLIED",
  sCW: "C-WAIT",
  sCO: "COOKIE",
  sCE: "C-ECHOED",
  sES: "ESTABLISHED",
  sSS: "S-SENT",
  sSR: "S-RECEIVED",
  sSA: "S-ACK-SENT",
  sRJ: "REJECTED",
  sCL: "CLOSED",
};
const EVENTS = ["d", "i", "i_a", "c_e", "c_a", "s", "s_a", "s_c", "err", "ab"];
const DIRS = ["INPUT", "OUTPUT", "INPUT_ONLY"];

describe("sctp state table", () => {
  it("matches the kernel's table in every cell of every direction", () => {
    let dir = -1;
    let cells = 0;
    for (const line of KERNEL_TABLE.trim().split("\n")) {
      const words = line.trim().split(/\s+/);
      if (words.length === 1) {
        dir = DIRS.indexOf(words[0] as string);
        continue;
      }
      const ev = EVENTS.indexOf(words[0] as string);
      assert.ok(ev >= 0 && dir >= 0);
      words.slice(1).forEach((cell, current) => {
        assert.equal(
          SCTP_STATE_NAMES[sctpNextState(dir, current, ev)],
          SHORT[cell],
          `${DIRS[dir]} ${words[0]} from ${SCTP_STATE_NAMES[current]}`,
        );
        cells++;
      });
    }
    assert.equal(cells, 3 * 10 * 14);
  });

  it("maps chunk types to events; a cookie chunk followed by ABORT counts as the ABORT", () => {
    assert.equal(sctpEvent(0), SCTP_EV_DATA);
    assert.equal(sctpEvent(1), SCTP_EV_INIT);
    assert.equal(sctpEvent(3 /* SACK */), SCTP_EV_DATA);
    assert.equal(sctpEvent(6), SCTP_EV_ABORT);
    assert.equal(sctpEvent(11), SCTP_EV_COOKIE_ACK);
    assert.equal(sctpEvent(11, 6), SCTP_EV_ABORT);
    assert.equal(sctpEvent(0, 6), SCTP_EV_DATA);
    assert.equal(sctpEvent(200), SCTP_EV_DATA);
  });
});

describe("sctp association through the table", () => {
  it("NAT: INIT, INIT ACK, COOKIE ECHO, COOKIE ACK, then SHUTDOWN", () => {
    const { table, svc } = kit([{ addr: "192.168.1.2", port: 3868, fwd: "masq" }], { protocol: "sctp", port: 3868 });
    const d = svc.dests[0];
    assert.ok(d);
    const c = table.schedule(svc, flow("1.2.3.4", 5000, "10.0.0.1", 3868, "sctp"), 0) as Conn;
    assert.equal(c.stateName, "NONE");
    const steps: Array<["in" | "out", number, string, number]> = [
      ["in", 1, "INIT1", 4],
      ["out", 2, "C-SENT", 61],
      ["in", 10, "C-REPLIED", 61],
      ["out", 11, "ESTABLISHED", 900],
      ["in", 0, "ESTABLISHED", 900],
      ["in", 7, "S-RECEIVED", 61],
      ["out", 8, "S-ACK-SENT", 61],
      ["in", 14, "CLOSED", 61],
    ];
    let now = 0;
    for (const [dir, chunk, name, timeout] of steps) {
      now += 10;
      table.sctpPacket(c, dir, chunk, now);
      assert.equal(c.stateName, name, `${dir} chunk ${chunk}`);
      assert.equal(c.expiresAt, now + timeout * 1000);
      assert.equal(d.activeConns, name === "ESTABLISHED" ? 1 : 0);
      assert.equal(d.inactConns, name === "ESTABLISHED" ? 0 : 1);
    }
    assert.equal(table.reuseExpected(c), true, "a new INIT on a CLOSED association is rescheduled");
  });
});
