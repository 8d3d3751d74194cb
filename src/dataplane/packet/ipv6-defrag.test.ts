// IPv6 fragments through the whole pipeline (memory io): a NAT real server's fragmented reply is
// reassembled and leaves from the VIP cut back to its largest fragment with a fresh
// identification; FULLNAT requests leave from the local address, also with a fresh one; a
// datagram whose largest fragment does not fit the link gets "packet too big" with the link MTU;
// a handoff hook takes the datagram away (another worker's flow) and another director's engine
// forwards it; counters and drop reasons add up; incomplete datagrams time out after 60 s.

import assert from "node:assert/strict";
import { test } from "node:test";
import { fragments6 } from "./fixtures/ipv6-fragments.ts";
import { CLIENT_MAC, CLIENT6, DIRECTOR_MAC, fixtureDirector, LOCAL6, RS1_MAC, RS6, VIP6 } from "./fixtures.ts";
import { ETH_P_IPV6, eth, ipv6, udp, udp4Frame } from "./frame-builder.ts";
import type { ReassembledFrame } from "./ipv6-defrag.ts";
import { Ipv6Reassembler } from "./ipv6-reassembly.ts";

function payload(n: number, seed = 5): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 29 + seed) & 0xff;
  return b;
}

function director(fwd: "masq" | "fullnat" | "droute" | "tunnel", mtu = 1500) {
  return fixtureDirector({
    services: [{ protocol: "udp", vip: VIP6, port: 53, dests: [{ addr: RS6, port: 5300, fwd }] }],
    neighbours: { [RS6]: RS1_MAC, [CLIENT6]: CLIENT_MAC },
    mtu,
  });
}

/** Reassemble frames (Ethernet + IPv6 fragments) with a fresh reassembler: the oracle. */
function whole(frames: Buffer[]): { packet: Buffer; ids: Set<number>; sizes: number[] } {
  const r = new Ipv6Reassembler();
  let packet: Buffer | undefined;
  for (const f of frames) {
    const x = r.add(f, 14, f.length, 0);
    if (x.kind === "done") packet = Buffer.from(x.datagram.packet);
  }
  assert.ok(packet, "the fragments make a whole datagram");
  return { packet, ids: new Set(frames.map((f) => f.readUInt32BE(14 + 44))), sizes: frames.map((f) => f.length - 14) };
}

function send(d: ReturnType<typeof director>, frames: Buffer[]): Buffer[] {
  for (const f of frames) d.io.inject(f);
  d.engine.drain();
  return d.io.drain();
}

test("NAT: a fragmented reply from the real server leaves from the VIP, cut to its largest fragment, with a fresh id", () => {
  const d = director("masq");
  // A small request makes the connection.
  const [fwd] = send(d, [
    fragments6(
      ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40000, 53, payload(10))),
      2000,
      1,
      DIRECTOR_MAC,
      CLIENT_MAC,
    )[0]!,
  ]);
  assert.ok(fwd, "the atomic-fragment request was forwarded");
  const body = payload(5000);
  const reply = ipv6(RS6, CLIENT6, 17, udp(RS6, CLIENT6, 5300, 40000, body));
  const out = send(d, fragments6(reply, 1448, 0x77, DIRECTOR_MAC, RS1_MAC));
  assert.equal(out.length, 4);
  const w = whole(out);
  assert.deepEqual(w.packet, ipv6(VIP6, CLIENT6, 17, udp(VIP6, CLIENT6, 53, 40000, body), 63));
  assert.ok(Math.max(...w.sizes) <= 1448 + 48, `sizes ${w.sizes}`);
  assert.equal(w.ids.size, 1);
  assert.ok(!w.ids.has(0x77), "the source changed (RS → VIP): a fresh identification");
  for (const f of out) assert.equal(f.subarray(0, 6).toString("hex"), CLIENT_MAC.replaceAll(":", ""));
  const c = d.pipeline.counters;
  assert.equal(c.reassembled, 1);
  assert.equal(c.fragmentsIn, 4);
  assert.equal(c.fragmentsOut, 4);
  assert.equal(d.pipeline.reassembledVerdict, "forward");
  assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped);
});

test("FULLNAT: the reassembled request leaves from the local address with a fresh id", () => {
  const d = director("fullnat");
  const body = payload(3000);
  const out = send(
    d,
    fragments6(ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40001, 53, body)), 1232, 0x99, DIRECTOR_MAC, CLIENT_MAC),
  );
  const w = whole(out);
  assert.equal(out.length, 3);
  assert.deepEqual(w.packet.subarray(8, 40), ipv6(LOCAL6, RS6, 17, Buffer.alloc(0)).subarray(8, 40));
  assert.ok(!w.ids.has(0x99));
  assert.deepEqual(w.packet.subarray(48), body);
});

test("the largest fragment does not fit the link: packet too big with the link's MTU, the datagram dropped", () => {
  const d = director("masq", 1400);
  const frags = fragments6(
    ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40002, 53, payload(4000))),
    1448,
    5,
    DIRECTOR_MAC,
    CLIENT_MAC,
  );
  const out = send(d, frags);
  assert.equal(out.length, 1);
  const ptb = out[0]!;
  assert.equal(ptb[14 + 6], 58);
  assert.equal(ptb[14 + 40], 2, "ICMPv6 packet too big");
  assert.equal(ptb.readUInt32BE(14 + 44), 1400);
  assert.equal(
    ptb.subarray(14 + 24, 14 + 40).toString("hex"),
    ipv6("::", CLIENT6, 59, Buffer.alloc(0)).subarray(24, 40).toString("hex"),
  );
  assert.equal(d.pipeline.reassembledVerdict, "drop");
  assert.equal(d.pipeline.reassembledReason, "mtu");
  assert.equal(d.pipeline.counters.drops.mtu, 1);
  // Fragments no larger than the link pass, though the datagram is larger than it.
  const ok = send(
    d,
    fragments6(
      ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40003, 53, payload(4000))),
      1344,
      6,
      DIRECTOR_MAC,
      CLIENT_MAC,
    ),
  );
  assert.equal(ok.length, 3);
});

test("handoff: a datagram of another worker's flow is passed on, and that worker's engine forwards it", () => {
  const a = director("masq");
  const handed: ReassembledFrame[] = [];
  a.pipeline.defrag6.handoff = (x) => {
    handed.push(x);
    return true;
  };
  const body = payload(3000);
  const out = send(
    a,
    fragments6(ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40004, 53, body)), 1232, 0x42, DIRECTOR_MAC, CLIENT_MAC),
  );
  assert.deepEqual(out, []);
  assert.equal(handed.length, 1);
  assert.equal(a.pipeline.counters.reassemblyHandoffs, 1);
  assert.equal(a.conns.size, 0, "no connection on the worker that reassembled it");
  const b = director("masq");
  b.engine.processReassembled(handed[0]!);
  const fwd = b.io.drain();
  assert.equal(fwd.length, 3);
  const w = whole(fwd);
  assert.deepEqual(w.packet, ipv6(CLIENT6, RS6, 17, udp(CLIENT6, RS6, 40004, 5300, body), 63));
  assert.deepEqual([...w.ids], [0x42], "same source: the datagram keeps its identification");
  assert.equal(b.conns.size, 1);
});

test("drop reasons and timeouts are counted; fragments not for the director are left alone", () => {
  const d = director("masq");
  const frags = fragments6(
    ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40005, 53, payload(4000))),
    1232,
    3,
    DIRECTOR_MAC,
    CLIENT_MAC,
  );
  send(d, [frags[0]!, frags[1]!]);
  assert.ok(d.pipeline.counters.reassemblyMemory > 2464);
  const bad = Buffer.from(frags[2]!);
  bad.writeUInt16BE(8 | 1, 14 + 42);
  send(d, [bad]);
  assert.equal(d.pipeline.counters.drops.fragOverlap, 1);
  const odd = Buffer.from(frags[1]!.subarray(0, frags[1]!.length - 1));
  odd.writeUInt16BE(odd.length - 54, 18);
  odd.writeUInt32BE(4, 14 + 44);
  send(d, [odd]);
  assert.equal(d.pipeline.counters.drops.fragMalformed, 1);
  // Another datagram, never completed, times out 60 s after its first fragment.
  const other = fragments6(
    ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40006, 53, payload(4000))),
    1232,
    8,
    DIRECTOR_MAC,
    CLIENT_MAC,
  );
  send(d, [other[0]!]);
  d.clock.advance(60_001);
  send(d, [udp4Frame(DIRECTOR_MAC, CLIENT_MAC, "10.0.0.100", "10.0.0.99", 1, 2, Buffer.alloc(4))]);
  assert.equal(d.pipeline.counters.reassemblyTimeouts, 1);
  const c = d.pipeline.counters;
  assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped);
  // Between two other hosts: ignored, nothing held.
  const before = d.pipeline.defrag6.reassembler.stats.fragments;
  send(
    d,
    fragments6(
      ipv6("fd00::7", "fd00::8", 17, udp("fd00::7", "fd00::8", 1, 2, payload(2000))),
      1232,
      1,
      DIRECTOR_MAC,
      CLIENT_MAC,
    ),
  );
  assert.equal(d.pipeline.defrag6.reassembler.stats.fragments, before);
});

test("TUN (ip6ip6): the reassembled datagram is wrapped whole and the outer packet is cut, each piece its largest fragment plus the outer header", () => {
  const d = director("tunnel");
  const body = payload(3000);
  const inner = ipv6(CLIENT6, VIP6, 17, udp(CLIENT6, VIP6, 40007, 53, body));
  const out = send(d, fragments6(inner, 1232, 0x31, DIRECTOR_MAC, CLIENT_MAC));
  assert.equal(out.length, 3);
  for (const f of out) assert.ok(f.length - 14 <= 1280 + 40, `outer fragment of ${f.length - 14} bytes`);
  const w = whole(out);
  assert.equal(w.packet[6], 41, "IPv6 in IPv6");
  assert.ok(!w.ids.has(0x31), "the outer source is the director's: a fresh identification");
  const expected = Buffer.from(inner);
  expected[7] = 63; // the hop limit the director decremented
  assert.deepEqual(w.packet.subarray(40), expected);
});

test("an unfragmented packet with a hop-by-hop header is handed to its flow's worker, or handled here when that is this one", () => {
  const hbh = (sport: number) =>
    eth(
      DIRECTOR_MAC,
      CLIENT_MAC,
      ETH_P_IPV6,
      ipv6(
        CLIENT6,
        VIP6,
        0,
        Buffer.concat([Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]), udp(CLIENT6, VIP6, sport, 53, payload(20))]),
      ),
    );
  const a = director("masq");
  const handed: ReassembledFrame[] = [];
  a.pipeline.defrag6.handoff = (x) => {
    handed.push(x);
    return x.frame.length > 0 && handed.length === 1; // the first elsewhere, the second here
  };
  assert.deepEqual(send(a, [hbh(41000)]), []);
  assert.equal(a.pipeline.verdicts[0], "consume");
  assert.equal(a.pipeline.counters.extHandoffs, 1);
  assert.deepEqual(Buffer.from(handed[0]!.frame), hbh(41000));
  assert.equal(handed[0]!.maxFragmentSize, 0);
  assert.equal(send(a, [hbh(41001)]).length, 1, "its own flow: forwarded here");
  assert.equal(a.pipeline.verdicts[0], "forward");
  // The worker it was handed to forwards it, and never hands it on again.
  const b = director("masq");
  b.pipeline.defrag6.handoff = () => assert.fail("a handed-over frame is not handed on");
  b.engine.processReassembled(handed[0]!);
  const out = b.io.drain();
  assert.equal(out.length, 1);
  assert.equal(b.pipeline.reassembledVerdict, "forward");
  assert.equal(b.conns.size, 1);
});
