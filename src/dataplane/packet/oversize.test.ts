// Datagrams larger than the link — what the kernel hands the packet socket after reassembling
// IPv4 fragments (PACKET_FANOUT_FLAG_DEFRAG) — leave the director cut into fragments after the
// method's rewrite (NAT: every fragment to the real server, the transport checksum valid over the
// reassembled datagram; DR: unchanged but for the MACs; TUN: the outer IPIP packet is cut, with a
// fresh ID); with DF set they are answered with ICMP "fragmentation needed" and dropped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { finish, pseudo4, sumBytes } from "./codec/checksum.ts";
import { PacketEngine } from "./engine.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, fixtureDirector, RS1, RS1_MAC, VIP } from "./fixtures.ts";
import { udp4Frame } from "./frame-builder.ts";
import { MemoryPacketIo } from "./memory-io.ts";

function director(fwd: "masq" | "droute" | "tunnel") {
  const d = fixtureDirector({
    services: [{ protocol: "udp", vip: VIP, port: 53, dests: [{ addr: RS1, port: 53, fwd }] }],
    neighbours: { [RS1]: RS1_MAC },
  });
  const io = new MemoryPacketIo({ vnetHdr: false, slotSize: 66_000 });
  return { ...d, io, engine: new PacketEngine(io, d.pipeline, () => d.clock.now(), 8) };
}

function bigDatagram(df = false): Buffer {
  const payload = Buffer.alloc(4000);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 13) & 0xff;
  return udp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, 40000, 53, payload, { ip: { id: 0x4242, df } });
}

/** Reassemble IPv4 fragments (by offset) into one IP packet: header of the first + all data. */
function reassemble(frames: Buffer[]): Buffer {
  const parts = frames.map((f) => {
    const ip = f.subarray(14, 14 + f.readUInt16BE(16));
    const hl = (ip[0]! & 15) * 4;
    return { off: (ip.readUInt16BE(6) & 0x1fff) * 8, hdr: ip.subarray(0, hl), data: ip.subarray(hl) };
  });
  parts.sort((a, b) => a.off - b.off);
  const data = Buffer.concat(parts.map((p) => p.data));
  const hdr = Buffer.from(parts[0]!.hdr);
  hdr.writeUInt16BE(hdr.length + data.length, 2);
  hdr.writeUInt16BE(0, 6);
  return Buffer.concat([hdr, data]);
}

for (const fwd of ["masq", "droute"] as const) {
  test(`${fwd}: a 4000-byte datagram goes out as fragments that reassemble to the rewritten datagram`, () => {
    const d = director(fwd);
    d.io.inject(bigDatagram());
    d.engine.drain();
    assert.equal(d.pipeline.verdicts[0], "forward");
    const out = d.io.drain();
    assert.equal(out.length, 3, "three fragments at MTU 1500");
    for (const f of out) {
      assert.ok(f.readUInt16BE(16) <= 1500);
      assert.equal(f.subarray(0, 6).toString("hex"), RS1_MAC.replaceAll(":", ""), "to the real server's MAC");
      assert.equal(f.readUInt16BE(18), 0x4242, "one IP ID for all fragments");
    }
    assert.equal(d.pipeline.counters.fragmentsOut, 3);
    const ip = reassemble(out);
    const dst = [...ip.subarray(16, 20)].join(".");
    assert.equal(dst, fwd === "masq" ? RS1 : VIP, "NAT rewrote the destination, DR kept the VIP");
    const udpLen = ip.length - 20;
    assert.equal(finish(sumBytes(ip, 20, udpLen, pseudo4(ip, 12, 17, udpLen))), 0, "UDP checksum valid");
    assert.equal(d.services.services()[0]!.stats.inPkts, 1, "one datagram counted");
  });
}

test("tunnel: a 4000-byte datagram without DF is encapsulated and the outer packet fragmented", () => {
  const d = director("tunnel");
  const inner = bigDatagram();
  d.io.inject(inner);
  d.engine.drain();
  assert.equal(d.pipeline.verdicts[0], "forward");
  const out = d.io.drain();
  assert.equal(out.length, 3);
  const ids = new Set(out.map((f) => f.readUInt16BE(18)));
  assert.equal(ids.size, 1, "one outer ID for all fragments");
  assert.notEqual([...ids][0], 0x4242, "a fresh outer ID, not the client's");
  const outer = reassemble(out);
  assert.equal(outer[9], 4, "IPIP");
  assert.equal([...outer.subarray(16, 20)].join("."), RS1);
  const got = outer.subarray(20);
  const want = Buffer.from(inner.subarray(14));
  want[8] = want[8]! - 1; // the director decrements the inner TTL
  want.writeUInt16BE(0, 10);
  const check = Buffer.from(got);
  check.writeUInt16BE(0, 10);
  assert.deepEqual(check, want, "the inner datagram intact (TTL decremented)");
});

test("DF set: ICMP fragmentation needed back to the client, the datagram dropped", () => {
  const d = director("masq");
  d.io.inject(bigDatagram(true));
  d.engine.drain();
  assert.equal(d.pipeline.verdicts[0], "drop");
  assert.equal(d.pipeline.reasons[0], "mtu");
  const out = d.io.drain();
  assert.equal(out.length, 1);
  const icmp = out[0]!;
  assert.equal(icmp[23], 1, "ICMP");
  assert.deepEqual([icmp[34], icmp[35]], [3, 4], "destination unreachable, fragmentation needed");
  assert.equal(icmp.readUInt16BE(40), 1500, "next-hop MTU");
});
