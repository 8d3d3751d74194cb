// Sequence translation alone (seq-adjust.ts), on bare TCP segments: ack and SACK edges down by
// delta from client to server, seq up by delta back, timestamps by tsDelta, window rescaling, all
// modulo 2^32 and with the checksum kept right by incremental update (or left alone for offload).
import assert from "node:assert/strict";
import { test } from "node:test";
import { finish, pseudo4, sumBytes } from "../codec/checksum.ts";
import { adjustInbound, adjustOutbound, type SynproxyConn, windowShifts } from "./seq-adjust.ts";
import { writeTcpPacket } from "./tcp-segment.ts";

const SRC = 0x0a000064;
const DST = 0x0a00000a;

function conn(over: Partial<SynproxyConn> = {}): SynproxyConn {
  return {
    phase: 1,
    cookie: 0,
    clientIsn: 0,
    delta: 0x10000010,
    ts: true,
    tsDelta: 0xfffff000,
    clientTsval: 0,
    ourTsval: 0,
    mss: 1460,
    clientWscale: 7,
    sackOk: true,
    tsOk: true,
    clientWindow: 0,
    shiftIn: 0,
    shiftOut: 0,
    synSentAt: 0,
    ...over,
  };
}

/** An IPv4 packet with a TCP header (TS and one SACK block) and 4 bytes of payload. */
function segment(seq: number, ack: number, window: number, ts: [number, number], sack: [number, number]) {
  const buf = Buffer.alloc(200);
  const end = writeTcpPacket(buf, 0, 4, SRC, DST, {
    sport: 1000,
    dport: 80,
    seq,
    ack,
    flags: 0x10,
    window,
    options: { mss: -1, sackOk: false, ts, wscale: -1 },
  });
  // Append a SACK option (NOP NOP SACK len 10) after the TS option, then redo lengths and checksums.
  const l4 = 20;
  const hl = (buf[l4 + 12]! >>> 4) * 4;
  buf.copyWithin(l4 + hl + 12, l4 + hl, end);
  buf[l4 + hl] = 1;
  buf[l4 + hl + 1] = 1;
  buf[l4 + hl + 2] = 5;
  buf[l4 + hl + 3] = 10;
  buf.writeUInt32BE(sack[0] >>> 0, l4 + hl + 4);
  buf.writeUInt32BE(sack[1] >>> 0, l4 + hl + 8);
  buf[l4 + 12] = ((hl + 12) / 4) << 4;
  buf.write("data", l4 + hl + 12);
  const tcpLen = hl + 12 + 4;
  buf.writeUInt16BE(20 + tcpLen, 2);
  buf.writeUInt16BE(0, l4 + 16);
  buf.writeUInt16BE(finish(sumBytes(buf, l4, tcpLen, pseudo4(buf, 12, 6, tcpLen))), l4 + 16);
  return { buf, l4, hlen: hl + 12, tcpLen };
}

function csumOk(buf: Buffer, l4: number, len: number): boolean {
  return finish(sumBytes(buf, l4, len, pseudo4(buf, 12, 6, len))) === 0;
}

test("client → server: ack, SACK edges and TSecr translated (wrapping), checksum right", () => {
  const sp = conn();
  const s = segment(5, 0x00000008, 1000, [77, 0x00000100], [0x00000009, 0x0fffffff]);
  adjustInbound(s.buf, s.l4, s.hlen, sp, false);
  assert.equal(s.buf.readUInt32BE(s.l4 + 4), 5, "the client's own seq is untouched");
  assert.equal(s.buf.readUInt32BE(s.l4 + 8), (0x00000008 - 0x10000010) >>> 0);
  const o = s.l4 + 20;
  assert.equal(s.buf.readUInt32BE(o + 4), 77, "TSval untouched");
  assert.equal(s.buf.readUInt32BE(o + 8), (0x100 - 0xfffff000) >>> 0, "TSecr in the server's clock");
  assert.equal(s.buf.readUInt32BE(o + 16), (0x9 - 0x10000010) >>> 0);
  assert.equal(s.buf.readUInt32BE(o + 20), (0x0fffffff - 0x10000010) >>> 0);
  assert.equal(s.buf.readUInt16BE(s.l4 + 14), 1000, "same scale: window untouched");
  assert.ok(csumOk(s.buf, s.l4, s.tcpLen));
  assert.equal(s.buf.toString("latin1", s.l4 + s.hlen, s.l4 + s.hlen + 4), "data");
});

test("server → client: seq and TSval translated, SACK (client space) untouched, checksum right", () => {
  const sp = conn();
  const s = segment(0xfffffff0, 1234, 500, [0x2000, 55], [100, 200]);
  adjustOutbound(s.buf, s.l4, s.hlen, sp, false);
  assert.equal(s.buf.readUInt32BE(s.l4 + 4), (0xfffffff0 + 0x10000010) >>> 0);
  assert.equal(s.buf.readUInt32BE(s.l4 + 8), 1234);
  const o = s.l4 + 20;
  assert.equal(s.buf.readUInt32BE(o + 4), (0x2000 + 0xfffff000) >>> 0);
  assert.equal(s.buf.readUInt32BE(o + 8), 55);
  assert.deepEqual([s.buf.readUInt32BE(o + 16), s.buf.readUInt32BE(o + 20)], [100, 200]);
  assert.ok(csumOk(s.buf, s.l4, s.tcpLen));
});

test("inbound then outbound of the same numbers round-trips", () => {
  const sp = conn({ delta: 0xdeadbeef, tsDelta: 12345 });
  const s = segment(1, 0xabcdef01, 1, [1, 2], [3, 4]);
  const before = Buffer.from(s.buf);
  adjustInbound(s.buf, s.l4, s.hlen, sp, false);
  // Undo with the opposite sign, field by field (the test's own arithmetic).
  const o = s.l4 + 20;
  assert.equal((s.buf.readUInt32BE(s.l4 + 8) + 0xdeadbeef) >>> 0, 0xabcdef01);
  assert.equal((s.buf.readUInt32BE(o + 8) + 12345) >>> 0, 2);
  assert.equal((s.buf.readUInt32BE(o + 16) + 0xdeadbeef) >>> 0, 3);
  assert.notDeepEqual(s.buf, before);
});

test("window rescaling: up is clamped, down rounds down; checksum right", () => {
  const up = segment(1, 1, 0x4000, [1, 1], [1, 2]);
  adjustOutbound(up.buf, up.l4, up.hlen, conn({ shiftOut: 3 }), false);
  assert.equal(up.buf.readUInt16BE(up.l4 + 14), 0xffff);
  assert.ok(csumOk(up.buf, up.l4, up.tcpLen));
  const down = segment(1, 1, 1001, [1, 1], [1, 2]);
  adjustOutbound(down.buf, down.l4, down.hlen, conn({ shiftOut: -2 }), false);
  assert.equal(down.buf.readUInt16BE(down.l4 + 14), 250);
  assert.ok(csumOk(down.buf, down.l4, down.tcpLen));
});

test("a checksum left to offload (partial) is not touched", () => {
  const s = segment(1, 100, 1, [1, 1], [1, 2]);
  const c = s.buf.readUInt16BE(s.l4 + 16);
  adjustInbound(s.buf, s.l4, s.hlen, conn(), true);
  assert.equal(s.buf.readUInt16BE(s.l4 + 16), c);
  assert.notEqual(s.buf.readUInt32BE(s.l4 + 8), 100);
});

test("windowShifts: who scales by what", () => {
  // Client 7, server 7 (Linux defaults): nothing to rescale.
  assert.deepEqual(windowShifts(7, 7), { shiftIn: 0, shiftOut: 0 });
  // Server scales by 9 where the client expects 7: its windows shift left by 2.
  assert.deepEqual(windowShifts(6, 9), { shiftIn: 0, shiftOut: 2 });
  // Server scales by 2: its windows shift right by 5.
  assert.deepEqual(windowShifts(7, 2), { shiftIn: 0, shiftOut: -5 });
  // Server refuses scaling: the client's windows (scaled by 7) shift left by 7; the server's by -7.
  assert.deepEqual(windowShifts(7, -1), { shiftIn: 7, shiftOut: -7 });
  // Client without scaling: nobody scales.
  assert.deepEqual(windowShifts(-1, 7), { shiftIn: 0, shiftOut: 0 });
});

/** A segment whose TS and SACK options start at odd offsets: NOP, TS, SACK (one block), NOP NOP NOP. */
function unalignedSegment(ack: number, ts: [number, number], sack: [number, number]) {
  const buf = Buffer.alloc(200);
  const l4 = 20;
  const hlen = 20 + 24;
  buf[0] = 0x45;
  buf[9] = 6;
  buf.writeUInt32BE(SRC, 12);
  buf.writeUInt32BE(DST, 16);
  buf.writeUInt16BE(1000, l4);
  buf.writeUInt16BE(80, l4 + 2);
  buf.writeUInt32BE(7, l4 + 4);
  buf.writeUInt32BE(ack >>> 0, l4 + 8);
  buf[l4 + 12] = (hlen / 4) << 4;
  buf[l4 + 13] = 0x10;
  buf.writeUInt16BE(1000, l4 + 14);
  let o = l4 + 20;
  buf[o++] = 1; // NOP: what follows starts at an odd offset
  buf[o++] = 8;
  buf[o++] = 10;
  buf.writeUInt32BE(ts[0] >>> 0, o);
  buf.writeUInt32BE(ts[1] >>> 0, o + 4);
  o += 8;
  buf[o++] = 5;
  buf[o++] = 10;
  buf.writeUInt32BE(sack[0] >>> 0, o);
  buf.writeUInt32BE(sack[1] >>> 0, o + 4);
  o += 8;
  buf.fill(1, o, l4 + hlen);
  buf.write("odd", l4 + hlen); // an odd payload length too
  const tcpLen = hlen + 3;
  buf.writeUInt16BE(20 + tcpLen, 2);
  buf.writeUInt16BE(finish(sumBytes(buf, l4, tcpLen, pseudo4(buf, 12, 6, tcpLen))), l4 + 16);
  return { buf, l4, hlen, tcpLen };
}

test("options at odd offsets (after a lone NOP): TSecr and SACK edges translated with the checksum right", () => {
  for (const [delta, tsDelta] of [
    [0x10000010, 0xfffff000],
    [0x01020304, 0x00ff00ff],
    [0xdeadbeef, 12345],
  ] as const) {
    const sp = conn({ delta, tsDelta });
    const s = unalignedSegment(0x00000008, [77, 0x00000100], [0x00000009, 0x0fffffff]);
    assert.ok(csumOk(s.buf, s.l4, s.tcpLen), "the segment built is right");
    adjustInbound(s.buf, s.l4, s.hlen, sp, false);
    const o = s.l4 + 21;
    assert.equal(s.buf.readUInt32BE(o + 6), (0x100 - tsDelta) >>> 0, "TSecr in the server's clock");
    assert.equal(s.buf.readUInt32BE(o + 12), (0x9 - delta) >>> 0);
    assert.equal(s.buf.readUInt32BE(o + 16), (0x0fffffff - delta) >>> 0);
    assert.ok(csumOk(s.buf, s.l4, s.tcpLen), `inbound checksum (delta ${delta.toString(16)})`);
    adjustOutbound(s.buf, s.l4, s.hlen, sp, false);
    assert.equal(s.buf.readUInt32BE(o + 2), (77 + tsDelta) >>> 0, "TSval in the client's clock");
    assert.ok(csumOk(s.buf, s.l4, s.tcpLen), `outbound checksum (delta ${delta.toString(16)})`);
  }
});
