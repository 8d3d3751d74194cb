// innerPacket / innerFromIpv4 / innerFromIpv6: which received tunnelled packets the TUN-mode decapsulator hands to the kernel.
import assert from "node:assert/strict";
import { test } from "node:test";
import { innerFromIpv4, innerFromIpv6, innerPacket, vipBytes } from "./decap.ts";

const VIP = 0xc0a87a16; // 192.168.122.22

function ipipPacket(opts: { outerProto?: number; innerVersion?: number; innerDst?: number[]; outerIhl?: number } = {}) {
  const ihl = opts.outerIhl ?? 5;
  const outer = Buffer.alloc(ihl * 4);
  outer[0] = 0x40 | ihl;
  outer[9] = opts.outerProto ?? 4;
  const inner = Buffer.alloc(40);
  inner[0] = ((opts.innerVersion ?? 4) << 4) | 5;
  inner[9] = 6;
  Buffer.from(opts.innerDst ?? [192, 168, 122, 22]).copy(inner, 16);
  return Buffer.concat([outer, inner]);
}

test("an IPv4-in-IPv4 packet for the VIP is delivered without its outer header", () => {
  const p = ipipPacket();
  assert.deepEqual(innerPacket(p, 0, p.length, VIP), [20, 40]);
  const withOptions = ipipPacket({ outerIhl: 6 });
  assert.deepEqual(innerPacket(withOptions, 0, withOptions.length, VIP), [24, 40]);
  // A packet in the third slot of a batch buffer.
  const batch = Buffer.alloc(300);
  p.copy(batch, 200);
  assert.deepEqual(innerPacket(batch, 200, p.length, VIP), [220, 40]);
});

test("packets that are not IPIP to the VIP are dropped", () => {
  const cases: [string, Buffer, number][] = [
    ["other VIP", ipipPacket({ innerDst: [10, 0, 0, 1] }), 60],
    ["outer protocol GRE", ipipPacket({ outerProto: 47 }), 60],
    ["inner IPv6", ipipPacket({ innerVersion: 6 }), 60],
    ["truncated inner header", ipipPacket(), 30],
    ["runt", ipipPacket(), 10],
  ];
  for (const [name, buf, len] of cases) assert.equal(innerPacket(buf, 0, len, VIP), undefined, name);
});

const VIP6 = vipBytes("fd00::10")!;

/** An IPv6 packet (40-byte header, 20 bytes of payload) to `dst`. */
function ipv6Packet(dst: string, version = 6): Buffer {
  const p = Buffer.alloc(60);
  p[0] = version << 4;
  p.writeUInt16BE(20, 4);
  p[6] = 6;
  p[7] = 63;
  Buffer.from(vipBytes(dst)!).copy(p, 24);
  return p;
}

function outer4(proto: number, inner: Buffer): Buffer {
  const o = Buffer.alloc(20);
  o[0] = 0x45;
  o[9] = proto;
  return Buffer.concat([o, inner]);
}

test("vipBytes reads both families and refuses anything else", () => {
  assert.deepEqual([...vipBytes("192.168.122.22")!], [192, 168, 122, 22]);
  assert.deepEqual([...vipBytes("fd00::10")!], [0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10]);
  assert.equal(vipBytes("fd00::10::1"), undefined);
  assert.equal(vipBytes("vip"), undefined);
});

test("IPv6-in-IPv6: what the raw IPv6 socket reads is the inner packet, delivered whole when it is for the VIP", () => {
  const p = ipv6Packet("fd00::10");
  assert.deepEqual(innerFromIpv6(p, 0, p.length, VIP6), [0, 60]);
  const batch = Buffer.alloc(400);
  p.copy(batch, 300);
  assert.deepEqual(innerFromIpv6(batch, 300, p.length, VIP6), [300, 60]);
  const cases: [string, Buffer, number][] = [
    ["other VIP", ipv6Packet("fd00::11"), 60],
    ["IPv4 inside", ipv6Packet("fd00::10", 4), 60],
    ["truncated header", ipv6Packet("fd00::10"), 39],
  ];
  for (const [name, buf, len] of cases) assert.equal(innerFromIpv6(buf, 0, len, VIP6), undefined, name);
});

test("IPv6-in-IPv4 (protocol 41) is stripped of its outer header; IPIP carrying IPv6 is not", () => {
  const p = outer4(41, ipv6Packet("fd00::10"));
  assert.deepEqual(innerFromIpv4(p, 0, p.length, VIP6), [20, 60]);
  const ipip = outer4(4, ipv6Packet("fd00::10"));
  assert.equal(innerFromIpv4(ipip, 0, ipip.length, VIP6), undefined);
  const other = outer4(41, ipv6Packet("fd00::99"));
  assert.equal(innerFromIpv4(other, 0, other.length, VIP6), undefined);
});

test("IPv4-in-IPv6: an IPv4 packet read from the raw IPv6 socket is delivered when it is for the IPv4 VIP", () => {
  const inner = ipipPacket().subarray(20);
  const v4 = vipBytes("192.168.122.22")!;
  assert.deepEqual(innerFromIpv6(inner, 0, inner.length, v4), [0, 40]);
  assert.equal(innerFromIpv6(ipv6Packet("fd00::10"), 0, 60, v4), undefined);
});
