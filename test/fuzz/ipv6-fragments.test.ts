// Bounded, seeded fuzzing of IPv6 fragment chains through the pipeline (NAT, DR and FULLNAT
// services on an IPv6 VIP): datagrams of UDP, TCP and SCTP up to 9000 bytes, with and without
// hop-by-hop / destination-options headers before the fragment header, cut into pieces of random
// sizes and then abused: pieces reordered, duplicated, overlapping, dropped, zero-length, not a
// multiple of 8, offsets past 65535, a second "last" piece, identifications reused across
// datagrams, more pieces than a datagram may have, interleaved with each other and with time
// passing. Asserts that nothing throws inside the pipeline, that every frame gets one verdict
// (reassembled datagrams counted as received once more), that the reassembler's memory stays
// within its limit, and that every frame sent out is a whole IPv6 packet no larger than the MTU.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 as rng } from "../../src/core/seeded-random.ts";
import { DROP_REASONS } from "../../src/dataplane/packet/counters.ts";
import {
  CLIENT_MAC,
  CLIENT6,
  DIRECTOR_MAC,
  fixtureDirector,
  RS1_MAC,
  RS6,
  VIP6,
} from "../../src/dataplane/packet/fixtures.ts";
import { ETH_P_IPV6, eth, ipv6, tcp, udp } from "../../src/dataplane/packet/frame-builder.ts";

const DATAGRAMS = 1500;
const MTU = 1500;

/** An IPv6 packet from the client to the VIP: transport by `kind`, extension headers before it. */
function datagram(r: () => number, size: number): Buffer {
  const kind = Math.floor(r() * 3);
  const body = Buffer.alloc(size, Math.floor(r() * 256));
  let proto: number;
  let l4: Buffer;
  if (kind === 0) {
    proto = 17;
    l4 = udp(CLIENT6, VIP6, 40000 + Math.floor(r() * 100), 53, body);
  } else if (kind === 1) {
    proto = 6;
    l4 = tcp(CLIENT6, VIP6, { sport: 40000 + Math.floor(r() * 100), dport: 80, flags: 0x10, payload: body });
  } else {
    proto = 132;
    l4 = Buffer.alloc(16 + size);
    l4.writeUInt16BE(40000, 0);
    l4.writeUInt16BE(5060, 2);
    l4[12] = 0; // DATA chunk
    l4.writeUInt16BE(Math.min(0xffff, 4 + size), 14);
  }
  // Extension headers: none, hop-by-hop, destination options, both (8 bytes each, PadN).
  const ext: number[] = [];
  const pick = Math.floor(r() * 4);
  if (pick & 1) ext.push(0);
  if (pick & 2) ext.push(60);
  let next = proto;
  let rest: Buffer = l4;
  for (let i = ext.length - 1; i >= 0; i--) {
    rest = Buffer.concat([Buffer.from([next, 0, 1, 4, 0, 0, 0, 0]), rest]);
    next = ext[i]!;
  }
  return ipv6(CLIENT6, VIP6, next, rest);
}

/** Fragments of `packet` (unfragmentable part: the fixed header and a hop-by-hop header if first). */
function cut(r: () => number, packet: Buffer, id: number): Buffer[] {
  const unfrag = packet[6] === 0 ? 48 : 40;
  const nextAt = unfrag === 48 ? 40 : 6;
  const data = packet.subarray(unfrag);
  const pieces: [number, number, boolean][] = [];
  for (let off = 0; off < data.length; ) {
    let n = 8 * (1 + Math.floor(r() * 180));
    if (r() < 0.03) n = Math.floor(r() * 64); // not a multiple of 8, or empty
    const end = Math.min(data.length, off + n);
    pieces.push([off, end, end < data.length]);
    if (end === off) break;
    off = end;
  }
  // Abuse.
  const abused: [number, number, boolean][] = [];
  for (const p of pieces) {
    const x = r();
    if (x < 0.03) continue; // lost
    if (x < 0.06) abused.push(p); // duplicate
    if (x < 0.09)
      abused.push([Math.max(0, p[0] - 8), p[1], p[2]]); // overlaps the previous piece
    else if (x < 0.1)
      abused.push([p[0], p[1], !p[2]]); // M flipped
    else if (x < 0.11) abused.push([65528, 65528 + Math.min(64, p[1] - p[0]), false]); // past 65535
    abused.push(p);
  }
  for (let i = abused.length - 1; i > 0; i--) {
    if (r() < 0.3) {
      const j = Math.floor(r() * (i + 1));
      [abused[i], abused[j]] = [abused[j]!, abused[i]!];
    }
  }
  return abused.map(([off, end, more]) => {
    const piece = off < data.length ? data.subarray(off, Math.min(end, data.length)) : Buffer.alloc(end - off);
    const f = Buffer.alloc(unfrag + 8 + piece.length);
    packet.copy(f, 0, 0, unfrag);
    f[nextAt] = 44;
    f[unfrag] = packet[nextAt]!;
    f.writeUInt16BE((off & 0xfff8) | (more ? 1 : 0), unfrag + 2);
    f.writeUInt32BE(id >>> 0, unfrag + 4);
    piece.copy(f, unfrag + 8);
    f.writeUInt16BE(f.length - 40, 4);
    return eth(DIRECTOR_MAC, CLIENT_MAC, ETH_P_IPV6, f);
  });
}

for (const fwd of ["masq", "droute", "fullnat"] as const) {
  test(`IPv6 fragment chains (${fwd}): abused pieces never throw, memory stays bounded, sent frames fit`, () => {
    const d = fixtureDirector({
      services: (["udp", "tcp", "sctp"] as const).map((protocol) => ({
        protocol,
        vip: VIP6,
        port: protocol === "udp" ? 53 : protocol === "tcp" ? 80 : 5060,
        // DR keeps the port; the others translate it.
        dests: [
          {
            addr: RS6,
            port:
              fwd === "droute"
                ? protocol === "udp"
                  ? 53
                  : protocol === "tcp"
                    ? 80
                    : 5060
                : protocol === "udp"
                  ? 5300
                  : protocol === "tcp"
                    ? 8080
                    : 5060,
            fwd,
          },
        ],
      })),
      neighbours: { [RS6]: RS1_MAC, [CLIENT6]: CLIENT_MAC },
      mtu: MTU,
    });
    const r = rng(0xf4a9 + fwd.length);
    let injected = 0;
    let sentFrames = 0;
    const pending: Buffer[] = [];
    const reassembler = d.pipeline.defrag6.reassembler;
    for (let i = 0; i < DATAGRAMS; i++) {
      const size = r() < 0.1 ? Math.floor(r() * 100) : Math.floor(r() * 9000);
      // Identifications are reused now and then, so pieces of different datagrams meet.
      const id = r() < 0.1 ? 7 : i;
      pending.push(...cut(r, datagram(r, size), id));
      // Interleave: send a random share of what is pending.
      while (pending.length > 0 && r() < 0.9) {
        const at = Math.floor(r() * Math.min(pending.length, 8));
        const [f] = pending.splice(at, 1);
        d.io.inject(f!);
        injected++;
        if (d.io.pending >= 32) d.engine.drain();
      }
      if (r() < 0.02) d.clock.advance(Math.floor(r() * 70_000));
      d.engine.drain();
      assert.ok(reassembler.memory <= reassembler.limits.memoryLimit, `memory ${reassembler.memory}`);
      for (const out of d.io.drain()) {
        sentFrames++;
        const b = Buffer.from(out);
        if (b.readUInt16BE(12) !== 0x86dd) continue;
        const ipLen = 40 + b.readUInt16BE(18);
        assert.ok(
          ipLen <= MTU,
          `a sent IPv6 packet of ${ipLen} bytes is larger than the MTU: ${b.subarray(0, 120).toString("hex")}`,
        );
        assert.ok(14 + ipLen <= b.length, "the IPv6 payload length fits the frame");
      }
    }
    for (const f of pending) {
      d.io.inject(f);
      injected++;
    }
    d.engine.drain(1000);
    d.io.drain();
    const c = d.pipeline.counters;
    assert.equal(c.drops.error, 0, "no exception inside the pipeline");
    assert.equal(c.rx, injected + c.reassembled);
    assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped);
    assert.equal(
      c.dropped,
      DROP_REASONS.reduce((s, k) => s + c.drops[k], 0),
    );
    assert.ok(c.reassembled > DATAGRAMS / 10, `some datagrams were reassembled (${c.reassembled})`);
    assert.ok(c.drops.fragOverlap > 0 && c.drops.fragMalformed > 0, "the abuse was seen");
    assert.ok(sentFrames > 0, `frames went out (${JSON.stringify(c)})`);
  });
}
