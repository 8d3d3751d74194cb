// Pipeline behaviour beyond single-frame fixtures: connection states driven by the packets
// (input-only for DR), counters charged to service and destination, vnet headers carried through
// (and csum_start moved for IPIP), GSO frames refused by the tunnel, FULLNAT local ports kept
// distinct, truncated frames, and announcements.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_SYN_RECV } from "../../core/conn/tcp-states.ts";
import { checksum, finish, pseudo4, sumBytes } from "./codec/checksum.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, fixtureDirector, LOCAL, RS1, RS1_MAC, VIP } from "./fixtures.ts";
import { tcp4Frame } from "./frame-builder.ts";

const SYN = 0x02;
const ACK = 0x10;
const FIN = 0x01;

function dr(fwd: "droute" | "masq" | "tunnel" | "fullnat" = "droute", vnet = false) {
  return fixtureDirector({
    services: [{ protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 80, fwd }] }],
    neighbours: { [RS1]: RS1_MAC },
    vnet,
  });
}

const fromClient = (flags: number, sport = 40000, payload?: Buffer) =>
  tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport, dport: 80, flags, ...(payload ? { payload } : {}) });

test("DR: states follow the client's segments with input-only transitions; counters are charged", () => {
  const d = dr();
  d.io.inject(fromClient(SYN));
  d.engine.drain();
  const c = d.conns.lookupIn("tcp", CLIENT, 40000, VIP, 80)!;
  assert.equal(c.state, TCP_S_SYN_RECV);
  d.io.inject(fromClient(ACK));
  d.engine.drain();
  assert.equal(c.state, TCP_S_ESTABLISHED);
  assert.equal(c.dest.activeConns, 1);
  d.io.inject(fromClient(FIN | ACK));
  d.engine.drain();
  assert.equal(c.state, TCP_S_FIN_WAIT);
  const svc = d.services.services()[0]!;
  assert.equal(svc.stats.conns, 1);
  assert.equal(svc.stats.inPkts, 3);
  assert.equal(svc.stats.inBytes, 3 * 40);
  assert.equal(svc.stats.outPkts, 0);
  assert.equal(c.dest.stats.inPkts, 3);
});

test("NAT: replies count as outgoing traffic and drive the state through the output direction", () => {
  const d = dr("masq");
  d.io.inject(fromClient(SYN));
  d.engine.drain();
  d.io.inject(tcp4Frame(DIRECTOR_MAC, RS1_MAC, RS1, CLIENT, { sport: 80, dport: 40000, flags: SYN | ACK }));
  d.engine.drain();
  const c = d.conns.lookupIn("tcp", CLIENT, 40000, VIP, 80)!;
  assert.equal(c.dest.stats.outPkts, 1);
  d.io.inject(fromClient(ACK));
  d.engine.drain();
  assert.equal(c.state, TCP_S_ESTABLISHED);
  assert.equal(d.io.drain().length, 3);
});

test("IPIP finishes a checksum left to offload (the decapsulator cannot) and cuts TCP GSO frames into segments", () => {
  const d = dr("tunnel", true);
  const vh = Buffer.from([1, 0, 0, 0, 0, 0, 34, 0, 16, 0]);
  d.io.inject(fromClient(SYN), { vnet: vh });
  d.engine.drain();
  const [out] = d.io.sent.splice(0);
  assert.ok(out);
  assert.equal(out[0], 0, "NEEDS_CSUM cleared: the checksum is complete");
  const innerAt = 10 + 14 + 20;
  const innerLen = out.readUInt16BE(innerAt + 2);
  const ph0 = pseudo4(out, innerAt + 12, 6, innerLen - 20);
  assert.equal(finish(sumBytes(out, innerAt + 20, innerLen - 20, ph0)), 0, "inner TCP checksum complete");
  // A 1000-byte TSO frame with MSS 400 (partial checksum) → three tunnelled segments.
  const big = tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, {
    sport: 40000,
    dport: 80,
    flags: ACK | 0x08,
    seq: 5000,
    payload: Buffer.alloc(1000, 7),
    partial: true,
  });
  const gso = Buffer.from([1, 1, 54, 0, 0x90, 0x01, 34, 0, 16, 0]);
  d.io.inject(big, { vnet: gso });
  d.engine.drain();
  assert.deepEqual(d.pipeline.verdicts, ["forward"]);
  const segs = d.io.drain();
  assert.equal(segs.length, 3);
  let seq = 5000;
  segs.forEach((f, i) => {
    const inner = 14 + 20;
    assert.equal(f[14 + 9], 4, "IPIP");
    const total = f.readUInt16BE(inner + 2);
    const payload = total - 40;
    assert.equal(payload, i < 2 ? 400 : 200);
    assert.equal(checksum(f, inner, 20), 0, "inner IP checksum");
    const tcpOff = inner + 20;
    assert.equal(f.readUInt32BE(tcpOff + 4), seq);
    seq += payload;
    assert.equal(f[tcpOff + 13]! & 0x08, i === 2 ? 0x08 : 0, "PSH only on the last");
    const ph = pseudo4(f, inner + 12, 6, total - 20);
    assert.equal(finish(sumBytes(f, tcpOff, total - 20, ph)), 0, "inner TCP checksum");
  });
  d.io.inject(big, { vnet: Buffer.from([1, 3, 54, 0, 0x90, 0x01, 34, 0, 16, 0]) });
  d.engine.drain();
  assert.deepEqual(d.pipeline.reasons, ["gso"], "a GSO type other than TCPv4 is dropped");
});

test("FULLNAT gives concurrent connections distinct local ports and replies find each one", () => {
  const d = fixtureDirector({
    services: [{ protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 8080, fwd: "fullnat" }] }],
    neighbours: { [RS1]: RS1_MAC },
  });
  const ports = new Set<number>();
  for (let i = 0; i < 50; i++) {
    d.io.inject(fromClient(SYN, 30000 + i));
    d.engine.drain();
    const c = d.conns.lookupIn("tcp", CLIENT, 30000 + i, VIP, 80)!;
    assert.equal(c.laddr, LOCAL);
    ports.add(c.lport);
  }
  assert.equal(ports.size, 50);
  d.io.drain();
  for (let i = 0; i < 50; i++) {
    const c = d.conns.lookupIn("tcp", CLIENT, 30000 + i, VIP, 80)!;
    d.io.inject(tcp4Frame(DIRECTOR_MAC, RS1_MAC, RS1, LOCAL, { sport: 8080, dport: c.lport, flags: SYN | ACK }));
  }
  d.engine.drain(10);
  const out = d.io.drain();
  assert.equal(out.length, 50);
  const dports = out.map((f) => f.readUInt16BE(14 + 20 + 2)).sort((a, b) => a - b);
  assert.deepEqual(
    dports,
    [...Array(50).keys()].map((i) => 30000 + i),
  );
});

test("a frame longer than the receive slot is counted as truncated", () => {
  const d = dr();
  d.io.inject(fromClient(ACK, 40000, Buffer.alloc(3000)));
  d.engine.drain();
  assert.equal(d.pipeline.counters.drops.truncated, 1);
});

test("announce sends one gratuitous ARP per owned IPv4 address and an advertisement per IPv6 one", () => {
  const d = dr("fullnat");
  d.engine.announce();
  const all = d.io.drain();
  const out = all.filter((f) => f.readUInt16BE(12) === 0x0806);
  const adverts = all.filter((f) => f.readUInt16BE(12) === 0x86dd && f[14 + 40] === 136);
  assert.equal(adverts.length, 1, "one unsolicited neighbour advertisement for the IPv6 local address");
  const targets = out.map((f) => `${f[38]}.${f[39]}.${f[40]}.${f[41]}`).sort();
  assert.deepEqual(targets, [LOCAL, VIP].sort());
  for (const f of out) {
    assert.equal(f.readUInt16BE(12), 0x0806);
    assert.equal(f.subarray(0, 6).toString("hex"), "ffffffffffff");
    assert.deepEqual(f.subarray(28, 32), f.subarray(38, 42), "sender and target address are the VIP");
  }
});

test("an entry whose destination was removed drops its packets (expire_nodest_conn off)", () => {
  const d = dr();
  d.io.inject(fromClient(SYN));
  d.engine.drain();
  const key = { kind: "vip" as const, protocol: "tcp" as const, addr: VIP, port: 80 };
  d.services.deleteDest(key, RS1, 80);
  d.io.inject(fromClient(ACK));
  d.engine.drain();
  assert.deepEqual(d.pipeline.reasons, ["destGone"]);
});
