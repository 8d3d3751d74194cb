import assert from "node:assert/strict";
import { test } from "node:test";
import { SCTP_CHUNK_INIT, sctpMaySchedule, tcpMaySchedule } from "./sloppy.ts";

const SYN = 0x02;
const ACK = 0x10;
const RST = 0x04;
const FIN = 0x01;

test("which TCP segment without an entry is scheduled, with and without sloppy_tcp", () => {
  const cases: [number, boolean, boolean][] = [
    [SYN, false, true],
    [ACK, false, false],
    [FIN | ACK, false, false],
    [SYN | RST, false, false],
    [SYN, true, true],
    [ACK, true, true],
    [FIN | ACK, true, true],
    [RST, true, false],
    [RST | ACK, true, false],
  ];
  for (const [flags, sloppy, want] of cases)
    assert.equal(tcpMaySchedule(flags, sloppy), want, `flags 0x${flags.toString(16)} sloppy ${sloppy}`);
});

test("SCTP: only INIT starts an entry unless sloppy_sctp", () => {
  assert.equal(sctpMaySchedule(SCTP_CHUNK_INIT, false), true);
  assert.equal(sctpMaySchedule(0 /* DATA */, false), false);
  assert.equal(sctpMaySchedule(0, true), true);
  // An ABORT never starts an entry, sloppy or not (sctp_conn_schedule).
  assert.equal(sctpMaySchedule(6 /* ABORT */, true), false);
  assert.equal(sctpMaySchedule(6, false), false);
});
