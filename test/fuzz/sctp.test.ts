// Bounded, seeded fuzzing of SCTP through the packet plane's NAT and FULLNAT (IPv4 and IPv6):
// associations opened by INIT, then packets both ways whose chunk lists are random (known and
// unknown types, odd value lengths, chunk lengths below 4 or past the packet, bundles after a
// COOKIE ECHO / ACK, ABORTs) with right checksums, and now and then one corrupted in transit.
// Asserts that nothing throws inside the pipeline, that every frame gets one verdict, and that
// every SCTP packet sent carries the CRC32c its bytes call for exactly when its input did (the
// port rewrite updates the checksum without reading the payload: a packet that was corrupt stays
// corrupt, and a right one stays right whatever its length).
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 as rng } from "../../src/core/seeded-random.ts";
import { crc32c } from "../../src/dataplane/packet/codec/crc32c.ts";
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
import { ETH_P_IP, ETH_P_IPV6, eth, IPPROTO, ipv4, ipv6 } from "../../src/dataplane/packet/frame-builder.ts";
import { chunk, sctp } from "../../src/dataplane/packet/sctp-builder.ts";

const PACKETS = 3000;

function randomChunks(r: () => number, first?: number): Uint8Array[] {
  const n = 1 + Math.floor(r() * 4);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const type =
      i === 0 && first !== undefined
        ? first
        : [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 14, 0xc0, 255][Math.floor(r() * 14)]!;
    const value = Buffer.alloc(Math.floor(r() * 40), Math.floor(r() * 256));
    const c = chunk(type, Math.floor(r() * 256), value);
    if (r() < 0.05) c.writeUInt16BE([0, 1, 3, 0xffff][Math.floor(r() * 4)]!, 2); // a length that lies
    out.push(c);
  }
  // Now and then a packet whose last chunk's padding is missing (an odd-length packet).
  if (r() < 0.1) {
    const last = out[out.length - 1]!;
    out[out.length - 1] = last.subarray(0, last.length - Math.floor(r() * 3));
  }
  return out;
}

function sctpOk(b: Buffer, l4: number, end: number): boolean {
  const p = Buffer.from(b.subarray(l4, end));
  const stored = p.readUInt32LE(8);
  p.writeUInt32LE(0, 8);
  return crc32c(p) === stored;
}

for (const [fwd, family] of [
  ["masq", 4],
  ["fullnat", 4],
  ["masq", 6],
  ["fullnat", 6],
] as const) {
  test(`SCTP ${fwd} IPv${family}: random chunk lists never throw, checksums stay right exactly when they were`, () => {
    const v6 = family === 6;
    const client = v6 ? CLIENT6 : CLIENT;
    const vip = v6 ? VIP6 : VIP;
    const rs = v6 ? RS6 : RS1;
    const d = fixtureDirector({
      services: [{ protocol: "sctp", vip, port: 5060, dests: [{ addr: rs, port: 5061, fwd }] }],
      neighbours: { [RS1]: RS1_MAC, [RS6]: RS1_MAC, [CLIENT]: CLIENT_MAC, [CLIENT6]: CLIENT_MAC },
    });
    const r = rng(0x5c7b + family + (fwd === "masq" ? 0 : 10));
    const frame = (src: string, dst: string, payload: Buffer, mac: string) =>
      v6
        ? eth(DIRECTOR_MAC, mac, ETH_P_IPV6, ipv6(src, dst, IPPROTO.sctp, payload))
        : eth(DIRECTOR_MAC, mac, ETH_P_IP, ipv4(src, dst, IPPROTO.sctp, payload));
    /** Real-server side endpoints seen (its reply goes to the address and port the director used). */
    const toRs = new Map<number, { addr: string; port: number }>();
    let injected = 0;
    let sent = 0;
    for (let i = 0; i < PACKETS; i++) {
      const cport = 30000 + Math.floor(r() * 40);
      const fromClient = !toRs.has(cport) || r() < 0.5;
      const corrupt = r() < 0.1 ? 1 + Math.floor(r() * 0xffff) : 0;
      const chunks = randomChunks(r, fromClient && !toRs.has(cport) && r() < 0.8 ? 1 : undefined);
      const vtag = Math.floor(r() * 2 ** 32);
      let f: Buffer;
      if (fromClient) f = frame(client, vip, sctp({ sport: cport, dport: 5060, vtag, chunks, corrupt }), CLIENT_MAC);
      else {
        const back = toRs.get(cport)!;
        f = frame(rs, back.addr, sctp({ sport: 5061, dport: back.port, vtag, chunks, corrupt }), RS1_MAC);
      }
      d.io.inject(f);
      injected++;
      d.engine.drain();
      for (const out of d.io.drain()) {
        sent++;
        const b = Buffer.from(out);
        const ethType = b.readUInt16BE(12);
        const l3 = 14;
        if (ethType === 0x0800 && b[l3 + 9] === 132) {
          const l4 = l3 + (b[l3]! & 15) * 4;
          const end = l3 + b.readUInt16BE(l3 + 2);
          assert.equal(
            sctpOk(b, l4, end),
            corrupt === 0,
            `checksum of a sent packet (input corrupt: ${corrupt !== 0})`,
          );
          if (fromClient)
            toRs.set(cport, { addr: [...b.subarray(l3 + 12, l3 + 16)].join("."), port: b.readUInt16BE(l4) });
        } else if (ethType === 0x86dd && b[l3 + 6] === 132) {
          const l4 = l3 + 40;
          const end = l4 + b.readUInt16BE(l3 + 4);
          assert.equal(
            sctpOk(b, l4, end),
            corrupt === 0,
            `checksum of a sent packet (input corrupt: ${corrupt !== 0})`,
          );
          if (fromClient) {
            const g: string[] = [];
            for (let k = 0; k < 16; k += 2) g.push(b.readUInt16BE(l3 + 8 + k).toString(16));
            toRs.set(cport, { addr: g.join(":"), port: b.readUInt16BE(l4) });
          }
        }
      }
      if (r() < 0.01) d.clock.advance(Math.floor(r() * 100_000));
      if (r() < 0.01) d.conns.expire(d.clock.now());
    }
    const c = d.pipeline.counters;
    assert.equal(c.drops.error, 0, "no exception inside the pipeline");
    assert.equal(c.rx, injected);
    assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped);
    assert.equal(
      c.dropped,
      DROP_REASONS.reduce((s, k) => s + c.drops[k], 0),
    );
    assert.ok(sent > PACKETS / 4, `packets went out (${sent})`);
    assert.ok(toRs.size > 5, "associations were opened");
  });
}
