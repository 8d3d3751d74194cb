// Bounded, seeded fuzzing of the SYN proxy (sysctl synproxy=1) through the pipeline: handshakes
// whose SYNs, cookie ACKs and server SYN-ACKs carry random TCP option soups (unknown kinds,
// zero, one and overlong lengths, window scales past 14, SACK blocks anywhere in sequence
// space, truncated timestamps), followed by segments both ways with random flags, SACK blocks
// and options, and forged ACKs with wrong cookies. Asserts that nothing throws inside the
// pipeline, that every frame gets one verdict, and that every TCP segment sent out (from frames
// whose own checksums were right) carries valid IP and TCP checksums and a header that fits.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 as rng } from "../../src/core/seeded-random.ts";
import { finish, pseudo4, pseudo6, sumBytes } from "../../src/dataplane/packet/codec/checksum.ts";
import { DROP_REASONS } from "../../src/dataplane/packet/counters.ts";
import {
  CLIENT,
  CLIENT_MAC,
  CLIENT6,
  DIRECTOR_MAC,
  fixtureDirector,
  RS1,
  RS1_MAC,
  RS6,
  VIP,
  VIP6,
} from "../../src/dataplane/packet/fixtures.ts";
import { tcp4Frame, tcp6Frame } from "../../src/dataplane/packet/frame-builder.ts";

const SYN = 0x02;
const RST = 0x04;
const ACK = 0x10;
const HANDSHAKES = 400;

/** A random option list (a multiple of 4 bytes, at most 40): known kinds with odd lengths and values. */
function optionSoup(r: () => number, around: number): Uint8Array {
  const words = Math.floor(r() * 11);
  const b = new Uint8Array(words * 4);
  let o = 0;
  while (o < b.length) {
    const pick = Math.floor(r() * 9);
    const room = b.length - o;
    if (pick === 0)
      b[o++] = 1; // NOP
    else if (pick === 1 && room >= 4) {
      b.set([2, 4, Math.floor(r() * 256), Math.floor(r() * 256)], o);
      o += 4;
    } else if (pick === 2 && room >= 3) {
      b.set([3, 3, Math.floor(r() * 256)], o);
      o += 3;
    } else if (pick === 3 && room >= 2) {
      b.set([4, 2], o);
      o += 2;
    } else if (pick === 4 && room >= 10) {
      b[o] = 8;
      b[o + 1] = 10;
      new DataView(b.buffer).setUint32(o + 2, Math.floor(r() * 2 ** 32));
      new DataView(b.buffer).setUint32(o + 6, r() < 0.5 ? 0 : Math.floor(r() * 2 ** 32));
      o += 10;
    } else if (pick === 5 && room >= 10) {
      const blocks = Math.min(4, Math.floor((room - 2) / 8), 1 + Math.floor(r() * 4));
      b[o] = 5;
      b[o + 1] = 2 + 8 * blocks;
      for (let k = 0; k < blocks; k++) {
        const edge = r() < 0.5 ? around + Math.floor(r() * 200000) - 100000 : Math.floor(r() * 2 ** 32);
        new DataView(b.buffer).setUint32(o + 2 + 8 * k, edge >>> 0);
        new DataView(b.buffer).setUint32(o + 6 + 8 * k, (edge + Math.floor(r() * 3000)) >>> 0);
      }
      o += 2 + 8 * blocks;
    } else if (pick === 6) {
      // A kind with a length that runs past the list, or is 0 or 1.
      b[o] = Math.floor(r() * 256);
      if (o + 1 < b.length) b[o + 1] = [0, 1, 255, Math.floor(r() * 40)][Math.floor(r() * 4)]!;
      o += 2;
    } else if (pick === 7)
      b[o++] = 0; // EOL, then garbage
    else b[o++] = Math.floor(r() * 256);
  }
  return b;
}

function ipv6Text(b: Buffer, at: number): string {
  const g: string[] = [];
  for (let k = 0; k < 16; k += 2) g.push(b.readUInt16BE(at + k).toString(16));
  return g.join(":");
}

function tcpChecksumOk(f: Uint8Array): boolean {
  const b = Buffer.from(f);
  const type = b.readUInt16BE(12);
  if (type === 0x0800) {
    const hl = (b[14]! & 15) * 4;
    if (b[23] !== 6) return true;
    const end = 14 + b.readUInt16BE(16);
    const l4 = 14 + hl;
    if (end - l4 < 20 || (b[l4 + 12]! >>> 4) * 4 > end - l4) return false;
    return finish(sumBytes(b, 14, hl)) === 0 && finish(sumBytes(b, l4, end - l4, pseudo4(b, 26, 6, end - l4))) === 0;
  }
  if (type === 0x86dd) {
    if (b[20] !== 6) return true;
    const end = 54 + b.readUInt16BE(18);
    if (end - 54 < 20 || (b[54 + 12]! >>> 4) * 4 > end - 54) return false;
    return finish(sumBytes(b, 54, end - 54, pseudo6(b, 22, 6, end - 54))) === 0;
  }
  return true;
}

for (const [fwd, family] of [
  ["masq", 4],
  ["fullnat", 4],
  ["masq", 6],
  ["fullnat", 6],
] as const) {
  test(`SYN proxy ${fwd} IPv${family}: random options, SACK blocks, flags and forged cookies never throw`, () => {
    let seed = 0x5a17;
    const keys = () => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed;
    };
    const v6 = family === 6;
    const client = v6 ? CLIENT6 : CLIENT;
    const vip = v6 ? VIP6 : VIP;
    const rs = v6 ? RS6 : RS1;
    const frame = v6 ? tcp6Frame : tcp4Frame;
    const d = fixtureDirector(
      {
        services: [{ protocol: "tcp", vip, port: 80, dests: [{ addr: rs, port: 8080, fwd }] }],
        neighbours: { [RS1]: RS1_MAC, [RS6]: RS1_MAC, [CLIENT]: CLIENT_MAC, [CLIENT6]: CLIENT_MAC },
      },
      { random32: keys },
    );
    d.conns.setSysctl("synproxy", 1);
    const r = rng(0xc00c1e + family + (fwd === "masq" ? 0 : 100));
    let injected = 0;
    let opened = 0;
    let sent = 0;
    const u32 = () => Math.floor(r() * 2 ** 32);
    const send = (f: Buffer): Uint8Array[] => {
      d.io.inject(f);
      injected++;
      d.engine.drain();
      const out = d.io.drain();
      for (const o of out) {
        sent++;
        assert.ok(tcpChecksumOk(o), `checksums of a sent segment: ${Buffer.from(o).toString("hex")}`);
      }
      return out;
    };
    const l4Of = 14 + (v6 ? 40 : 20);
    for (let i = 0; i < HANDSHAKES; i++) {
      const sport = 1024 + Math.floor(r() * 60000);
      const isn = u32();
      const out = send(
        frame(DIRECTOR_MAC, CLIENT_MAC, client, vip, {
          sport,
          dport: 80,
          flags: SYN | (r() < 0.05 ? 0x01 : 0),
          seq: isn,
          window: Math.floor(r() * 65536),
          options: optionSoup(r, isn),
        }),
      );
      const synAck = out.find((f) => f[l4Of + 13] === (SYN | ACK));
      if (synAck === undefined) continue;
      const cookie = Buffer.from(synAck).readUInt32BE(l4Of + 4);
      // A forged ACK now and then: a wrong cookie must not open anything.
      if (r() < 0.2)
        send(
          frame(DIRECTOR_MAC, CLIENT_MAC, client, vip, {
            sport,
            dport: 80,
            flags: ACK,
            seq: isn + 1,
            ack: (cookie + 2 + Math.floor(r() * 1000)) >>> 0,
            options: optionSoup(r, cookie),
          }),
        );
      const probe = r() < 0.2;
      const toRs = send(
        frame(DIRECTOR_MAC, CLIENT_MAC, client, vip, {
          sport,
          dport: 80,
          flags: ACK | (r() < 0.1 ? 0x08 : 0),
          seq: probe ? isn : isn + 1,
          ack: (cookie + 1) >>> 0,
          window: Math.floor(r() * 65536),
          options: optionSoup(r, cookie),
          payload: !probe && r() < 0.3 ? Buffer.alloc(Math.floor(r() * 200), 7) : Buffer.alloc(0),
        }),
      );
      const syn = toRs.find((f) => f[l4Of + 13] === SYN);
      if (syn === undefined) continue;
      opened++;
      // The real server answers whoever the SYN came from (the client for NAT, a local address for FULLNAT).
      const sb = Buffer.from(syn);
      const rsPort = sb.readUInt16BE(l4Of);
      const dst = v6 ? ipv6Text(sb, 22) : [...sb.subarray(26, 30)].join(".");
      const sisn = u32();
      send(
        frame(DIRECTOR_MAC, RS1_MAC, rs, dst, {
          sport: 8080,
          dport: rsPort,
          flags: SYN | ACK | (r() < 0.05 ? RST : 0),
          seq: sisn,
          ack: r() < 0.9 ? isn + 1 : u32(),
          window: Math.floor(r() * 65536),
          options: optionSoup(r, sisn),
        }),
      );
      for (let k = 0; k < 4; k++) {
        const fromClient = r() < 0.5;
        const flags = [ACK, ACK | 0x08, ACK | 0x01, RST, SYN, ACK | RST, 0][Math.floor(r() * 7)]!;
        send(
          fromClient
            ? frame(DIRECTOR_MAC, CLIENT_MAC, client, vip, {
                sport,
                dport: 80,
                flags,
                seq: isn + 1 + Math.floor(r() * 5000),
                ack: (cookie + 1 + Math.floor(r() * 5000)) >>> 0,
                window: Math.floor(r() * 65536),
                options: optionSoup(r, cookie),
                payload: Buffer.alloc(Math.floor(r() * 100), 1),
              })
            : frame(DIRECTOR_MAC, RS1_MAC, rs, dst, {
                sport: 8080,
                dport: rsPort,
                flags,
                seq: (sisn + 1 + Math.floor(r() * 5000)) >>> 0,
                ack: isn + 1 + Math.floor(r() * 5000),
                window: Math.floor(r() * 65536),
                options: optionSoup(r, sisn),
                payload: Buffer.alloc(Math.floor(r() * 100), 2),
              }),
        );
      }
      if (r() < 0.05) d.clock.advance(Math.floor(r() * 70_000));
    }
    const c = d.pipeline.counters;
    assert.equal(c.drops.error, 0, "no exception inside the pipeline");
    assert.equal(c.rx, injected);
    assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped);
    assert.equal(
      c.dropped,
      DROP_REASONS.reduce((s, k) => s + c.drops[k], 0),
    );
    assert.ok(opened > HANDSHAKES / 4, `cookies opened connections (${opened})`);
    assert.ok(sent > HANDSHAKES, `segments went out (${sent})`);
  });
}
