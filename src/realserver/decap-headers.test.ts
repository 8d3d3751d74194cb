// innerFromGue / innerFromGreHeader / innerFromGre4: which GUE and GRE packets the real server's
// decapsulator delivers, and the remote checksum it completes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checksum, fold, sumBytes } from "../dataplane/packet/codec/checksum.ts";
import { vipBytes } from "./decap.ts";
import { innerFromGre4, innerFromGreHeader, innerFromGue } from "./decap-headers.ts";

const VIP = vipBytes("192.168.122.22")!;
const CLIENT = [10, 0, 0, 100];

/** An IPv4 TCP SYN from CLIENT to `dst`; with `partial` its checksum field holds only the pseudo-header sum. */
function tcpPacket(dst = [192, 168, 122, 22], partial = false): Buffer {
  const p = Buffer.alloc(40);
  p[0] = 0x45;
  p.writeUInt16BE(40, 2);
  p[8] = 63;
  p[9] = 6;
  Buffer.from(CLIENT).copy(p, 12);
  Buffer.from(dst).copy(p, 16);
  p.writeUInt16BE(checksum(p, 0, 20), 10);
  p.writeUInt16BE(40000, 20);
  p.writeUInt16BE(80, 22);
  p[32] = 5 << 4;
  p[33] = 0x02;
  p.writeUInt16BE(65535, 34);
  const pseudo = sumBytes(p, 12, 8, 6 + 20);
  p.writeUInt16BE(partial ? fold(pseudo) : checksum(p, 20, 20, pseudo), 36);
  return p;
}

/** Whether the TCP checksum of a 40-byte IPv4 packet verifies. */
function tcpChecksumOk(p: Buffer, at = 0): boolean {
  return fold(sumBytes(p, at + 20, 20, sumBytes(p, at + 12, 8, 6 + 20))) === 0xffff;
}

function gue(
  inner: Buffer,
  o: { proto?: number; flags?: number; hlenWords?: number; opts?: Buffer; first?: number } = {},
) {
  const opts = o.opts ?? Buffer.alloc(0);
  const h = Buffer.alloc(4);
  h[0] = o.first ?? o.hlenWords ?? opts.length / 4;
  h[1] = o.proto ?? 4;
  h.writeUInt16BE(o.flags ?? 0, 2);
  return Buffer.concat([h, opts, inner]);
}

function remcsumOpts(start: number, offset: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32BE(0x80000000, 0);
  b.writeUInt16BE(start, 4);
  b.writeUInt16BE(offset, 6);
  return b;
}

test("GUE: the inner packet for the VIP is delivered without the GUE header", () => {
  const p = gue(tcpPacket());
  assert.deepEqual(innerFromGue(p, 0, p.length, VIP), [4, 40]);
  // Variant 1: the UDP payload is the IP packet itself.
  const direct = tcpPacket();
  assert.deepEqual(innerFromGue(direct, 0, direct.length, VIP), [0, 40]);
});

test("GUE remote checksum offload: the inner checksum is completed at the given offset", () => {
  const p = gue(tcpPacket(undefined, true), { flags: 1, opts: remcsumOpts(20, 36) });
  assert.equal(tcpChecksumOk(p, 12), false, "the sender left only the pseudo-header sum");
  assert.deepEqual(innerFromGue(p, 0, p.length, VIP), [12, 40]);
  assert.equal(tcpChecksumOk(p, 12), true, "completed by the decapsulator");
  assert.deepEqual(p.subarray(12), tcpPacket(), "exactly the packet with a complete checksum");
});

test("GUE packets the kernel's fou would drop are dropped", () => {
  const cases: [string, Buffer][] = [
    ["control message", gue(tcpPacket(), { first: 0x20 })],
    ["version 2", gue(tcpPacket(), { first: 0x80 })],
    ["unknown standard flag", gue(tcpPacket(), { flags: 0x0100 })],
    ["unknown private flag", gue(tcpPacket(), { flags: 1, opts: Buffer.from([0x40, 0, 0, 0]) })],
    ["private flags without room", gue(tcpPacket(), { flags: 1 })],
    ["IPv6 protocol for an IPv4 VIP", gue(tcpPacket(), { proto: 41 })],
    ["another VIP", gue(tcpPacket([10, 0, 0, 1]))],
    ["options longer than the packet", gue(Buffer.alloc(0), { hlenWords: 31 })],
    ["remcsum offset past the end", gue(tcpPacket(undefined, true), { flags: 1, opts: remcsumOpts(20, 60) })],
  ];
  for (const [name, p] of cases) assert.equal(innerFromGue(p, 0, p.length, VIP), undefined, name);
});

function gre(inner: Buffer, o: { flags?: number; type?: number; csum?: "good" | "bad"; extra?: number } = {}) {
  const csum = o.csum !== undefined;
  const words = (csum ? 1 : 0) + (o.extra ?? 0);
  const h = Buffer.alloc(4 + words * 4);
  h.writeUInt16BE((o.flags ?? 0) | (csum ? 0x8000 : 0), 0);
  h.writeUInt16BE(o.type ?? 0x0800, 2);
  const b = Buffer.concat([h, inner]);
  if (csum) b.writeUInt16BE((checksum(b, 0, b.length) + (o.csum === "bad" ? 1 : 0)) & 0xffff, 4);
  return b;
}

test("GRE: plain, checksummed, with key and sequence number: the inner packet is delivered", () => {
  const plain = gre(tcpPacket());
  assert.deepEqual(innerFromGreHeader(plain, 0, plain.length, VIP), [4, 40]);
  const summed = gre(tcpPacket(), { csum: "good" });
  assert.deepEqual(innerFromGreHeader(summed, 0, summed.length, VIP), [8, 40]);
  const keyed = gre(tcpPacket(), { flags: 0x2000 | 0x1000, extra: 2 });
  assert.deepEqual(innerFromGreHeader(keyed, 0, keyed.length, VIP), [12, 40]);
  // From a raw IPv4 socket: the outer header comes first.
  const outer = Buffer.alloc(20);
  outer[0] = 0x45;
  outer[9] = 47;
  const withOuter = Buffer.concat([outer, summed]);
  assert.deepEqual(innerFromGre4(withOuter, 0, withOuter.length, VIP), [28, 40]);
});

test("GRE packets the kernel would drop are dropped", () => {
  const cases: [string, Buffer][] = [
    ["bad checksum", gre(tcpPacket(), { csum: "bad" })],
    ["routing present", gre(tcpPacket(), { flags: 0x4000 })],
    ["version 1 (PPTP)", gre(tcpPacket(), { flags: 1 })],
    ["IPv6 EtherType for an IPv4 VIP", gre(tcpPacket(), { type: 0x86dd })],
    ["Ethernet inside (gretap)", gre(tcpPacket(), { type: 0x6558 })],
    ["another VIP", gre(tcpPacket([10, 0, 0, 1]))],
    ["truncated", gre(Buffer.alloc(0))],
  ];
  for (const [name, p] of cases) assert.equal(innerFromGreHeader(p, 0, p.length, VIP), undefined, name);
  const ipip = Buffer.alloc(60);
  ipip[0] = 0x45;
  ipip[9] = 4;
  assert.equal(innerFromGre4(ipip, 0, 60, VIP), undefined, "IPIP is not GRE");
});
