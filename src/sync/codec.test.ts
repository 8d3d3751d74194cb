// Sync codec fixtures. The expected bytes are written out field by field from the kernel's struct
// layouts (struct ip_vs_sync_mesg, ip_vs_sync_v4/v6, ip_vs_sync_conn_options, ip_vs_sync_mesg_v0,
// ip_vs_sync_conn_v0 in net/netfilter/ipvs/ip_vs_sync.c), not produced by the writer under test.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  decodeSyncMessage,
  encodeSyncMessages,
  F_DROUTE,
  F_IN_SEQ,
  F_INACTIVE,
  F_MASQ,
  F_SYNC,
  F_TEMPLATE,
  MAX_CONNS_PER_MESSAGE,
  type SyncConn,
  SyncMessageWriter,
  syncConnSize,
  syncMaxLen,
} from "./codec.ts";

/** Hex with spaces and comments ("# ..." to end of line) to bytes. */
function hex(s: string): Uint8Array {
  const clean = s.replace(/#[^\n]*/g, "").replace(/\s+/g, "");
  return Uint8Array.from(clean.match(/../g) ?? [], (b) => Number.parseInt(b, 16));
}

// One IPv4 TCP connection, ESTABLISHED, direct routing, 900 s left:
// 192.168.1.10:40000 → 10.0.0.100:80 → 10.0.1.2:80.
const V4_RECORD = `
  00 06 0024              # type 0 (IPv4), protocol TCP, version 0 | size 36
  00000003                # flags: IP_VS_CONN_F_DROUTE
  0001 9c40 0050 0050     # state ESTABLISHED, cport 40000, vport 80, dport 80
  00000000 00000384       # fwmark 0, timeout 900 s
  c0a8010a 0a000064 0a000102`;
const V4_CONN: SyncConn = {
  family: 4,
  protocol: 6,
  flags: F_DROUTE,
  state: 1,
  cport: 40000,
  vport: 80,
  dport: 80,
  fwmark: 0,
  timeoutS: 900,
  caddr: "192.168.1.10",
  vaddr: "10.0.0.100",
  daddr: "10.0.1.2",
};

test("a v1 message with one IPv4 record matches the kernel's layout both ways", () => {
  const bytes = hex(`00 07 002c 01 01 0000  ${V4_RECORD}`);
  assert.equal(bytes.length, 44);
  const d = decodeSyncMessage(bytes, 0);
  assert.deepEqual(d, { ok: true, version: 1, syncId: 7, conns: [V4_CONN], skipped: [] });
  assert.deepEqual(encodeSyncMessages(7, 1472, [V4_CONN]), [bytes]);
});

// IPv6 UDP, masquerading, inactive, with SEQ_DATA: 72 + 2 + 24 = 98 bytes, padded to 100 before
// the next record.
const V6_CONN: SyncConn = {
  family: 6,
  protocol: 17,
  flags: F_MASQ | F_INACTIVE | F_IN_SEQ,
  state: 0,
  cport: 5353,
  vport: 53,
  dport: 5300,
  fwmark: 0x10,
  timeoutS: 300,
  caddr: "2001:db8::10",
  vaddr: "2001:db8:0:1::53",
  daddr: "fd00::2",
  seq: {
    in: { initSeq: 0x11223344, delta: 5, previousDelta: 0xfffffffe },
    out: { initSeq: 1, delta: 2, previousDelta: 3 },
  },
};
const V6_RECORD = `
  01 11 0062              # type INET6, protocol UDP, size 98
  00000500                # flags: INACTIVE | IN_SEQ
  0000 14e9 0035 14b4     # state 0, cport 5353, vport 53, dport 5300
  00000010 0000012c       # fwmark 16, timeout 300 s
  20010db8000000000000000000000010
  20010db8000000010000000000000053
  fd000000000000000000000000000002
  01 18                   # SEQ_DATA, 24 bytes
  11223344 00000005 fffffffe
  00000001 00000002 00000003`;

test("IPv6 record with SEQ_DATA, then padding, then an IPv4 record", () => {
  // 8 header + 98 + 2 padding + 36 = 144 = 0x90.
  const bytes = hex(`00 00 0090 02 01 0000 ${V6_RECORD} 0000 ${V4_RECORD}`);
  assert.equal(bytes.length, 144);
  assert.equal(syncConnSize(V6_CONN), 98);
  const d = decodeSyncMessage(bytes, 0);
  assert.ok(d.ok);
  assert.deepEqual(d.conns, [V6_CONN, V4_CONN]);
  assert.deepEqual(encodeSyncMessages(0, 1472, [V6_CONN, V4_CONN]), [bytes]);
});

test("PE_DATA and PE_NAME options (a SIP persistence template)", () => {
  const conn: SyncConn = {
    ...V4_CONN,
    protocol: 17,
    flags: F_TEMPLATE | F_MASQ,
    state: 0,
    cport: 0,
    vport: 5060,
    dport: 5060,
    timeoutS: 360,
    peData: new TextEncoder().encode("call-1@x"),
    peName: "sip",
  };
  // 36 + (2 + 8) + (2 + 3) = 51.
  const bytes = hex(`
    00 00 003b 01 01 0000
    00 11 0033 00001000 0000 0000 13c4 13c4 00000000 00000168
    c0a8010a 0a000064 0a000102
    02 08 63616c6c2d314078   # PE_DATA "call-1@x"
    03 03 736970             # PE_NAME "sip"`);
  assert.equal(bytes.length, 59);
  const d = decodeSyncMessage(bytes, 0);
  assert.ok(d.ok);
  assert.deepEqual(d.conns, [conn]);
  assert.deepEqual(encodeSyncMessages(0, 1472, [conn]), [bytes]);
});

test("tvs's FULLNAT local option is optional to the kernel and read back by tvs", () => {
  const conn: SyncConn = { ...V4_CONN, flags: F_MASQ, local: { addr: "10.0.1.254", port: 61000 } };
  const bytes = hex(`00 00 0034 01 01 0000
    00 06 002c 00000000 0001 9c40 0050 0050 00000000 00000384 c0a8010a 0a000064 0a000102
    74 06 0a0001fe ee48      # type 0x74 = optional bit 0x40 | 0x34, IPv4 + port`);
  assert.deepEqual(encodeSyncMessages(0, 1472, [conn]), [bytes]);
  const d = decodeSyncMessage(bytes, 0);
  assert.ok(d.ok);
  assert.deepEqual(d.conns, [conn]);
  // The kernel's rule: an unknown option with bit 0x40 is skipped, the record kept.
  const other = bytes.slice();
  other[44] = 0x75;
  const d2 = decodeSyncMessage(other, 0);
  assert.ok(d2.ok);
  assert.deepEqual(
    d2.conns,
    [{ ...conn, local: undefined }].map(({ local: _, ...c }) => c),
  );
  const { seq: _seq, ...noSeq } = V6_CONN;
  const six: SyncConn = { ...noSeq, local: { addr: "fd00::fe", port: 1 } };
  const [m] = encodeSyncMessages(0, 1472, [six]);
  assert.deepEqual((decodeSyncMessage(m as Uint8Array, 0) as { conns: SyncConn[] }).conns, [six]);
});

test("an unknown mandatory option skips that record only", () => {
  const bytes = hex(`00 00 0054 02 01 0000
    00 06 0028 00000003 0001 9c40 0050 0050 00000000 00000384 c0a8010a 0a000064 0a000102
    05 02 0000               # option 5, not optional
    ${V4_RECORD}`);
  const d = decodeSyncMessage(bytes, 0);
  assert.ok(d.ok);
  assert.deepEqual(d.skipped, ["mandatory-option"]);
  assert.deepEqual(d.conns, [V4_CONN]);
});

test("malformed records end the message; records before them stand", () => {
  const two = hex(`00 00 0050 02 01 0000 ${V4_RECORD} ${V4_RECORD}`);
  const cases: [string, (b: Uint8Array) => void, string, number][] = [
    ["record version", (b) => (b[46] = 0x10), "record-version", 1],
    ["record type", (b) => (b[44] = 2), "record-type", 1],
    ["size below the fixed part", (b) => (b[47] = 0x20), "record-short", 1],
    ["size past the message", (b) => (b[47] = 0x30), "record-overrun", 1],
    ["count past the records", (b) => (b[4] = 3), "truncated", 2],
  ];
  for (const [name, mutate, rest, kept] of cases) {
    const b = two.slice();
    mutate(b);
    const d = decodeSyncMessage(b, 0);
    assert.ok(d.ok, name);
    assert.equal(d.rest, rest, name);
    assert.deepEqual(d.conns, Array(kept).fill(V4_CONN), name);
  }
  // Options: zero length, past the record, SEQ_DATA of the wrong size or twice.
  const withOpt = (opt: string, size: number) =>
    hex(`00 00 ${(8 + size).toString(16).padStart(4, "0")} 01 01 0000
      00 06 ${size.toString(16).padStart(4, "0")} 00000003 0001 9c40 0050 0050 00000000 00000384
      c0a8010a 0a000064 0a000102 ${opt}`);
  const seq = "01 18 000000000000000000000000000000000000000000000000";
  for (const [opt, size, rest] of [
    ["01 00", 38, "option-length"],
    ["01 05 0000", 40, "option-length"],
    ["02", 37, "option-header"],
    ["01 04 00000000", 42, "option-seq"],
    [`${seq} ${seq}`, 88, "option-seq"],
    ["03 11 0000000000000000000000000000000000", 55, "option-pe-name"],
  ] as const) {
    const d = decodeSyncMessage(withOpt(opt, size), 0);
    assert.ok(d.ok, opt);
    assert.equal(d.rest, rest, opt);
    assert.deepEqual(d.conns, [], opt);
  }
});

test("whole-message drops: short, wrong size, other syncid; syncid 0 takes everything", () => {
  const one = hex(`00 07 002c 01 01 0000 ${V4_RECORD}`);
  assert.deepEqual(decodeSyncMessage(one.subarray(0, 3), 0), { ok: false, drop: "short-header" });
  assert.deepEqual(decodeSyncMessage(one.subarray(0, 43), 0), { ok: false, drop: "bad-size" });
  assert.deepEqual(decodeSyncMessage(one, 8), { ok: false, drop: "syncid", syncId: 7 });
  assert.equal(decodeSyncMessage(one, 7).ok, true);
  assert.equal(decodeSyncMessage(one, 0).ok, true);
});

test("v0 messages: 24-byte IPv4 records, 16-bit flags, sequence options after flagged ones", () => {
  const bytes = hex(`
    02 03 004c                # 2 conns, syncid 3, size 76
    00 06 9c40 0050 0050 c0a8010a 0a000064 0a000102 0003 0001
    00 11 14e9 0035 14b4 c0a8010b 0a000064 0a000103 0500 0000
    11111111 22222222 33333333 44444444 55555555 66666666`);
  assert.equal(bytes.length, 76);
  const d = decodeSyncMessage(bytes, 3);
  assert.ok(d.ok);
  assert.equal(d.version, 0);
  assert.deepEqual(d.conns[0], { ...V4_CONN, flags: F_DROUTE | F_SYNC, timeoutS: 0 });
  const second = d.conns[1] as SyncConn;
  assert.equal(second.protocol, 17);
  assert.equal(second.flags, F_INACTIVE | F_IN_SEQ | F_SYNC);
  assert.equal(second.caddr, "192.168.1.11");
  assert.equal(second.seq?.in.initSeq, 0x11111111);
  // Truncated options end the message.
  const cut = bytes.slice(0, 60);
  new DataView(cut.buffer).setUint16(2, 60);
  const c = decodeSyncMessage(cut, 0);
  assert.ok(c.ok);
  assert.equal(c.rest, "truncated");
  assert.equal(c.conns.length, 1);
  // A v1 header with a non-zero spare is read as v0, as the kernel does.
  const odd = hex(`00 07 002c 01 01 0001 ${V4_RECORD}`);
  const o = decodeSyncMessage(odd, 0);
  assert.ok(o.ok);
  assert.equal(o.version, 0);
  assert.deepEqual(o.conns, []);
});

test("sync_maxlen as start_sync_thread computes it", () => {
  assert.equal(syncMaxLen("master", 9000, 0), 1472);
  assert.equal(syncMaxLen("master", 1280, 0), 1472);
  assert.equal(syncMaxLen("backup", 9000, 0), 8972);
  assert.equal(syncMaxLen("backup", 1280, 0), 1472);
  assert.equal(syncMaxLen("master", 1500, 0, true), 1452);
  assert.equal(syncMaxLen("master", 1500, 100), 100);
  assert.equal(syncMaxLen("backup", 1500, 100), 1024);
  assert.equal(syncMaxLen("master", 1500, 65535), 65507);
  assert.equal(syncMaxLen("backup", 1500, 65535, true), 65487);
});

test("the writer fills up to maxlen and at most 255 records, as the sync buffer does", () => {
  // 8 + 40 × 36 = 1448; a 41st record would need 1484 > 1472.
  const conns = Array.from({ length: 100 }, (_, i) => ({ ...V4_CONN, cport: 1000 + i }));
  const msgs = encodeSyncMessages(0, 1472, conns);
  assert.deepEqual(
    msgs.map((m) => m.length),
    [1448, 1448, 8 + 20 * 36],
  );
  const back = msgs.flatMap((m) => (decodeSyncMessage(m, 0) as { conns: SyncConn[] }).conns);
  assert.deepEqual(back, conns);
  const many = Array.from({ length: 300 }, (_, i) => ({ ...V4_CONN, cport: i }));
  const big = encodeSyncMessages(0, 65507, many);
  assert.deepEqual(
    big.map((m) => m[4]),
    [MAX_CONNS_PER_MESSAGE, 45],
  );
  // A record larger than maxlen still goes, alone.
  const w = new SyncMessageWriter(0, 20);
  assert.equal(w.add(V4_CONN), true);
  assert.equal(w.add(V4_CONN), false);
  assert.equal(w.bytes().length, 44);
});
