// The SYN proxy through the pipeline with fixture frames (NAT and FULLNAT, IPv4 and IPv6): a SYN
// gets a cookie and no entry; the cookie's ACK makes the entry and a SYN to the real server with
// the client's ISN and options; the server's SYN-ACK produces the last ACK to the server and the
// window update to the client; afterwards seq, ack, SACK blocks and timestamps are translated
// both ways with correct checksums; spoofed SYNs and forged ACKs leave the table empty.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TCP_S_ESTABLISHED, TCP_S_SYN_RECV } from "../../../core/conn/tcp-states.ts";
import type { FwdMethod } from "../../../core/dest.ts";
import { finish, pseudo4, pseudo6, sumBytes } from "../codec/checksum.ts";
import {
  CLIENT,
  CLIENT_MAC,
  CLIENT6,
  DIRECTOR_MAC,
  fixtureDirector,
  LOCAL,
  RS1,
  RS1_MAC,
  RS6,
  VIP,
  VIP6,
} from "../fixtures.ts";
import { tcp4Frame, tcp6Frame } from "../frame-builder.ts";

const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const PSH = 0x08;

/** xorshift32: deterministic cookie keys. */
function rng(seed = 12345): () => number {
  let x = seed;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** Options a Linux client sends on a SYN after MSS: SACK_PERM, TS(val, 0), NOP, WS 7. */
function synOptions(tsval: number, wscale = 7): Uint8Array {
  const b = Buffer.alloc(16);
  b[0] = 4;
  b[1] = 2;
  b[2] = 8;
  b[3] = 10;
  b.writeUInt32BE(tsval, 4);
  b.writeUInt32BE(0, 8);
  b[12] = 1;
  b[13] = 3;
  b[14] = 3;
  b[15] = wscale;
  return b;
}

/** NOP NOP TS(val, ecr). */
function tsOption(val: number, ecr: number): Uint8Array {
  const b = Buffer.alloc(12);
  b[0] = 1;
  b[1] = 1;
  b[2] = 8;
  b[3] = 10;
  b.writeUInt32BE(val >>> 0, 4);
  b.writeUInt32BE(ecr >>> 0, 8);
  return b;
}

/** NOP NOP TS, NOP NOP SACK with one block. */
function tsSackOption(val: number, ecr: number, left: number, right: number): Uint8Array {
  const b = Buffer.alloc(24);
  b.set(tsOption(val, ecr), 0);
  b[12] = 1;
  b[13] = 1;
  b[14] = 5;
  b[15] = 10;
  b.writeUInt32BE(left >>> 0, 16);
  b.writeUInt32BE(right >>> 0, 20);
  return b;
}

interface Seg {
  dstMac: string;
  src: string;
  dst: string;
  sport: number;
  dport: number;
  seq: number;
  ack: number;
  flags: number;
  window: number;
  mss: number;
  wscale: number;
  sackOk: boolean;
  ts: [number, number] | undefined;
  sack: [number, number][];
  payload: Buffer;
  csumOk: boolean;
}

const mac = (b: Buffer, o: number) => [...b.subarray(o, o + 6)].map((x) => x.toString(16).padStart(2, "0")).join(":");

function ip6(b: Buffer, o: number): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(o + i).toString(16));
  return g.join(":").replace(/(^|:)0(:0)+(:|$)/, "::");
}

/** Parse an output frame (untagged, IPv4 or IPv6, TCP). */
function parse(f: Buffer): Seg {
  const v6 = f.readUInt16BE(12) === 0x86dd;
  const l3 = 14;
  const l4 = v6 ? l3 + 40 : l3 + (f[l3]! & 15) * 4;
  const end = v6 ? l3 + 40 + f.readUInt16BE(l3 + 4) : l3 + f.readUInt16BE(l3 + 2);
  const hlen = (f[l4 + 12]! >>> 4) * 4;
  const len = end - l4;
  const ph = v6 ? pseudo6(f, l3 + 8, 6, len) : pseudo4(f, l3 + 12, 6, len);
  const s: Seg = {
    dstMac: mac(f, 0),
    src: v6 ? ip6(f, l3 + 8) : [...f.subarray(l3 + 12, l3 + 16)].join("."),
    dst: v6 ? ip6(f, l3 + 24) : [...f.subarray(l3 + 16, l3 + 20)].join("."),
    sport: f.readUInt16BE(l4),
    dport: f.readUInt16BE(l4 + 2),
    seq: f.readUInt32BE(l4 + 4),
    ack: f.readUInt32BE(l4 + 8),
    flags: f[l4 + 13]!,
    window: f.readUInt16BE(l4 + 14),
    mss: -1,
    wscale: -1,
    sackOk: false,
    ts: undefined,
    sack: [],
    payload: f.subarray(l4 + hlen, end),
    csumOk: finish(sumBytes(f, l4, len, ph)) === 0 && (v6 || finish(sumBytes(f, l3, 20)) === 0),
  };
  let o = l4 + 20;
  while (o < l4 + hlen) {
    const k = f[o]!;
    if (k === 0) break;
    if (k === 1) {
      o++;
      continue;
    }
    const n = f[o + 1]!;
    if (k === 2) s.mss = f.readUInt16BE(o + 2);
    if (k === 3) s.wscale = f[o + 2]!;
    if (k === 4) s.sackOk = true;
    if (k === 8) s.ts = [f.readUInt32BE(o + 2), f.readUInt32BE(o + 6)];
    if (k === 5) for (let b = o + 2; b < o + n; b += 8) s.sack.push([f.readUInt32BE(b), f.readUInt32BE(b + 4)]);
    o += n;
  }
  return s;
}

function director(fwd: FwdMethod, family: 4 | 6 = 4) {
  const d = fixtureDirector(
    {
      services: [
        {
          protocol: "tcp",
          vip: family === 4 ? VIP : VIP6,
          port: 80,
          dests: [{ addr: family === 4 ? RS1 : RS6, port: 8080, fwd }],
        },
      ],
      neighbours: { [RS1]: RS1_MAC, [RS6]: RS1_MAC, [CLIENT]: CLIENT_MAC, [CLIENT6]: CLIENT_MAC },
    },
    { random32: rng() },
  );
  d.conns.setSysctl("synproxy", 1);
  return d;
}

type D = ReturnType<typeof director>;

function send(d: D, frame: Buffer): { out: Seg[]; verdict: string; reason: string } {
  d.io.inject(frame);
  d.engine.drain();
  const out = d.io.drain().map((f) => parse(Buffer.from(f)));
  return { out, verdict: d.pipeline.verdicts[0]!, reason: d.pipeline.reasons[0]! };
}

const ISN = 0x10000000;
const SISN = 0xfffffff0; // the server's ISN: the translation wraps around 2^32
const CTS = 5000; // client's TSval
const STS = 900000; // server's TSval

function handshake(d: D, fwd: FwdMethod, family: 4 | 6) {
  const v6 = family === 6;
  const client = v6 ? CLIENT6 : CLIENT;
  const vip = v6 ? VIP6 : VIP;
  const frame = v6 ? tcp6Frame : tcp4Frame;
  const mss = v6 ? 1440 : 1460;
  // 1. SYN → SYN-ACK with a cookie, nothing in the table.
  const r1 = send(
    d,
    frame(DIRECTOR_MAC, CLIENT_MAC, client, vip, {
      sport: 40000,
      dport: 80,
      flags: SYN,
      seq: ISN,
      window: 64240,
      mss,
      options: synOptions(CTS),
    }),
  );
  assert.equal(r1.verdict, "reply");
  assert.equal(r1.out.length, 1);
  const sa = r1.out[0]!;
  assert.equal(sa.dstMac, CLIENT_MAC);
  assert.deepEqual([sa.src, sa.sport, sa.dst, sa.dport], [vip, 80, client, 40000]);
  assert.equal(sa.flags, SYN | ACK);
  assert.equal(sa.ack, ISN + 1);
  assert.equal(sa.window, 0, "zero window until the server answered");
  assert.equal(sa.mss, v6 ? 1440 : 1460);
  assert.equal(sa.wscale, 7);
  assert.ok(sa.sackOk);
  assert.equal(sa.ts?.[1], CTS, "our SYN-ACK echoes the client's TSval");
  assert.ok(sa.csumOk, "SYN-ACK checksums");
  assert.equal(d.conns.size, 0, "no entry for a SYN");
  const cookie = sa.seq;
  const ourTs = sa.ts![0];

  // 2. The client's ACK: entry made, SYN to the real server with the client's ISN and options.
  const r2 = send(
    d,
    frame(DIRECTOR_MAC, CLIENT_MAC, client, vip, {
      sport: 40000,
      dport: 80,
      flags: ACK,
      seq: ISN + 1,
      ack: cookie + 1,
      window: 502,
      options: tsOption(CTS + 1, ourTs),
    }),
  );
  assert.equal(r2.verdict, "forward");
  assert.equal(d.conns.size, 1);
  const conn = v6
    ? d.conns.lookupIn("tcp", CLIENT6, 40000, VIP6, 80)!
    : d.conns.lookupIn("tcp", CLIENT, 40000, VIP, 80)!;
  assert.equal(conn.state, TCP_S_SYN_RECV);
  const syn = r2.out.find((s) => s.flags === SYN)!;
  assert.ok(syn, "a SYN went to the real server");
  assert.equal(syn.dstMac, RS1_MAC);
  assert.equal(syn.dst, v6 ? RS6 : RS1);
  assert.equal(syn.dport, 8080);
  assert.equal(syn.seq, ISN, "the client's ISN");
  assert.equal(syn.mss, mss);
  assert.equal(syn.wscale, 7);
  assert.ok(syn.sackOk);
  assert.deepEqual(syn.ts, [CTS + 1, 0]);
  assert.ok(syn.csumOk, "SYN checksums");
  const fullnat = fwd === "fullnat";
  if (fullnat) assert.equal(syn.src, conn.laddr);
  else assert.equal(syn.src, client);
  const rsSide = { addr: syn.src, port: syn.sport };

  // 3. The server's SYN-ACK: last ACK to the server, window update to the client.
  const r3 = send(
    d,
    frame(DIRECTOR_MAC, RS1_MAC, v6 ? RS6 : RS1, rsSide.addr, {
      sport: 8080,
      dport: rsSide.port,
      flags: SYN | ACK,
      seq: SISN,
      ack: ISN + 1,
      window: 65160,
      mss: 1460,
      options: synOptions(STS, 7),
    }),
  );
  assert.equal(r3.verdict, "forward");
  assert.equal(r3.out.length, 2);
  const lastAck = r3.out.find((s) => s.dstMac === RS1_MAC)!;
  const update = r3.out.find((s) => s.dstMac === CLIENT_MAC)!;
  assert.equal(lastAck.flags, ACK);
  assert.equal(lastAck.seq, ISN + 1);
  assert.equal(lastAck.ack, (SISN + 1) >>> 0);
  assert.equal(lastAck.window, 502, "same scale on both sides: the client's window as it was");
  assert.deepEqual(lastAck.ts, [CTS + 1, STS]);
  assert.ok(lastAck.csumOk, "last ACK checksums");
  assert.deepEqual([update.src, update.sport, update.dst, update.dport], [vip, 80, client, 40000]);
  assert.equal(update.flags, ACK);
  assert.equal(update.seq, (cookie + 1) >>> 0);
  assert.equal(update.ack, ISN + 1);
  assert.equal(update.window, 65160 >> 7);
  assert.deepEqual(update.ts, [ourTs, CTS + 1], "the server's TSval in our clock");
  assert.ok(update.csumOk, "window update checksums");
  assert.equal(conn.state, TCP_S_ESTABLISHED);
  return { cookie, ourTs, rsSide, client, vip, frame, conn };
}

for (const [fwd, family] of [
  ["masq", 4],
  ["fullnat", 4],
  ["masq", 6],
  ["fullnat", 6],
] as const) {
  test(`SYN proxy ${fwd} IPv${family}: cookie handshake, then seq, SACK and timestamps translated both ways`, () => {
    const d = director(fwd, family);
    const h = handshake(d, fwd, family);
    const delta = (h.cookie - SISN) >>> 0;
    // Client data acknowledging 100 server bytes, with a SACK block for server bytes 200..300.
    const r4 = send(
      d,
      h.frame(DIRECTOR_MAC, CLIENT_MAC, h.client, h.vip, {
        sport: 40000,
        dport: 80,
        flags: ACK | PSH,
        seq: ISN + 1,
        ack: h.cookie + 101,
        window: 500,
        options: tsSackOption(CTS + 2, h.ourTs + 7, h.cookie + 201, h.cookie + 301),
        payload: Buffer.from("GET / HTTP/1.0\r\n\r\n"),
      }),
    );
    assert.equal(r4.verdict, "forward");
    const toRs = r4.out[0]!;
    assert.equal(toRs.dstMac, RS1_MAC);
    assert.equal(toRs.ack, (SISN + 101) >>> 0, "ack in the server's space");
    assert.deepEqual(toRs.sack, [[(SISN + 201) >>> 0, (SISN + 301) >>> 0]], "SACK block in the server's space");
    assert.deepEqual(toRs.ts, [CTS + 2, (STS + 7) >>> 0], "TSecr in the server's clock");
    assert.equal(toRs.payload.toString(), "GET / HTTP/1.0\r\n\r\n");
    assert.ok(toRs.csumOk, "client data checksums");
    // Server data back.
    const r5 = send(
      d,
      h.frame(DIRECTOR_MAC, RS1_MAC, family === 4 ? RS1 : RS6, h.rsSide.addr, {
        sport: 8080,
        dport: h.rsSide.port,
        flags: ACK | PSH,
        seq: (SISN + 1) >>> 0,
        ack: ISN + 19,
        window: 509,
        options: tsOption(STS + 10, CTS + 2),
        payload: Buffer.from("HTTP/1.0 200 OK\r\n\r\n"),
      }),
    );
    const toClient = r5.out[0]!;
    assert.equal(toClient.dstMac, CLIENT_MAC);
    assert.equal(toClient.src, h.vip);
    assert.equal(toClient.seq, (SISN + 1 + delta) >>> 0);
    assert.equal(toClient.seq, (h.cookie + 1) >>> 0);
    assert.equal(toClient.ack, ISN + 19);
    assert.deepEqual(toClient.ts, [(h.ourTs + 10) >>> 0, CTS + 2]);
    assert.equal(toClient.window, 509);
    assert.ok(toClient.csumOk, "server data checksums");
    assert.equal(d.pipeline.counters.synCookiesSent, 1);
    assert.equal(d.pipeline.counters.synCookiesValid, 1);
  });
}

test("SYN proxy: a spoofed SYN flood makes no entries; forged ACKs make none either", () => {
  const d = director("masq");
  for (let i = 0; i < 500; i++) {
    const src = `10.9.${i >> 8}.${i & 255}`;
    const r = send(
      d,
      tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, src, VIP, { sport: 1024 + i, dport: 80, flags: SYN, seq: i }),
    );
    assert.equal(r.verdict, "reply");
  }
  assert.equal(d.conns.size, 0);
  for (let i = 0; i < 500; i++) {
    const r = send(
      d,
      tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
        sport: 2000 + i,
        dport: 80,
        flags: ACK,
        seq: 1,
        ack: i * 7919,
      }),
    );
    assert.equal(r.verdict, "drop");
    assert.equal(r.reason, "noConn");
  }
  assert.equal(d.conns.size, 0);
  assert.equal(d.pipeline.counters.synCookiesBad, 500);
});

test("SYN proxy: the server's RST reaches the client at the sequence number it expects", () => {
  const d = director("masq");
  const sa = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 41000, dport: 80, flags: SYN, seq: ISN }),
  ).out[0]!;
  send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
      sport: 41000,
      dport: 80,
      flags: ACK,
      seq: ISN + 1,
      ack: sa.seq + 1,
    }),
  );
  const r = send(
    d,
    tcp4Frame(DIRECTOR_MAC, RS1_MAC, RS1, CLIENT, {
      sport: 8080,
      dport: 41000,
      flags: RST | ACK,
      seq: 0,
      ack: ISN + 1,
    }),
  );
  assert.equal(r.out.length, 1);
  assert.equal(r.out[0]!.flags, RST | ACK);
  assert.equal(r.out[0]!.seq, (sa.seq + 1) >>> 0);
  assert.ok(r.out[0]!.csumOk);
});

test("SYN proxy: client segments wait while the server has not answered; a late retransmission resends the SYN", () => {
  const d = director("masq");
  const sa = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 42000, dport: 80, flags: SYN, seq: ISN }),
  ).out[0]!;
  const ack = () =>
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
      sport: 42000,
      dport: 80,
      flags: ACK,
      seq: ISN + 1,
      ack: sa.seq + 1,
    });
  assert.equal(send(d, ack()).out[0]!.flags, SYN);
  const early = send(d, ack());
  assert.deepEqual([early.verdict, early.reason, early.out.length], ["drop", "synproxy", 0]);
  d.clock.advance(1500);
  const late = send(d, ack());
  assert.equal(late.out[0]!.flags, SYN, "SYN sent again");
  assert.equal(late.out[0]!.seq, ISN);
});

test("SYN proxy off, or a service with a DR real server: the SYN is scheduled as before", () => {
  const off = director("masq");
  off.conns.setSysctl("synproxy", 0);
  const r = send(
    off,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 43000, dport: 80, flags: SYN, seq: 1 }),
  );
  assert.equal(r.out[0]!.dstMac, RS1_MAC);
  assert.equal(off.conns.size, 1);
  const dr = fixtureDirector(
    {
      services: [{ protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 80, fwd: "droute" }] }],
      neighbours: { [RS1]: RS1_MAC },
    },
    { random32: rng() },
  );
  dr.conns.setSysctl("synproxy", 1);
  dr.io.inject(tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 43001, dport: 80, flags: SYN, seq: 1 }));
  dr.engine.drain();
  assert.equal(dr.conns.size, 1, "DR: scheduled on the SYN");
});

test("SYN proxy: a cookie stays valid after synproxy is turned off (ACKs in flight complete)", () => {
  const d = director("fullnat");
  const sa = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 44000, dport: 80, flags: SYN, seq: ISN }),
  ).out[0]!;
  d.conns.setSysctl("synproxy", 0);
  const r = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
      sport: 44000,
      dport: 80,
      flags: ACK,
      seq: ISN + 1,
      ack: sa.seq + 1,
    }),
  );
  assert.equal(r.out[0]!.flags, SYN);
  assert.equal(r.out[0]!.src, LOCAL);
});

test("SYN proxy: the handshake's ACK lost, the client's zero-window probe (seq = ISN) opens the connection", () => {
  const d = director("masq");
  const sa = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 45000, dport: 80, flags: SYN, seq: ISN }),
  ).out[0]!;
  const r = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
      sport: 45000,
      dport: 80,
      flags: ACK,
      seq: ISN,
      ack: sa.seq + 1,
    }),
  );
  assert.equal(r.out[0]!.flags, SYN);
  assert.equal(r.out[0]!.seq, ISN, "the client's real ISN");
  assert.equal(d.conns.size, 1);
});

test("SYN proxy: a client without options (no MSS, scaling, SACK or timestamps) gets none and an MSS of 536 towards the server", () => {
  const d = director("masq");
  const sa = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 46000, dport: 80, flags: SYN, seq: ISN }),
  ).out[0]!;
  assert.deepEqual([sa.mss, sa.wscale, sa.sackOk, sa.ts], [1460, -1, false, undefined]);
  const syn = send(
    d,
    tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
      sport: 46000,
      dport: 80,
      flags: ACK,
      seq: ISN + 1,
      ack: sa.seq + 1,
      window: 29200,
    }),
  ).out[0]!;
  assert.deepEqual(
    [syn.flags, syn.mss, syn.wscale, syn.sackOk, syn.ts, syn.window],
    [SYN, 536, -1, false, undefined, 29200],
  );
  const r = send(
    d,
    tcp4Frame(DIRECTOR_MAC, RS1_MAC, RS1, CLIENT, {
      sport: 8080,
      dport: 46000,
      flags: SYN | ACK,
      seq: 777,
      ack: ISN + 1,
      window: 28960,
      mss: 1460,
    }),
  );
  const update = r.out.find((s) => s.dstMac === CLIENT_MAC)!;
  assert.equal(update.window, 28960, "no scaling on either side");
  assert.equal(update.ts, undefined);
  const lastAck = r.out.find((s) => s.dstMac === RS1_MAC)!;
  assert.equal(lastAck.window, 29200);
  assert.ok(update.csumOk && lastAck.csumOk);
});
