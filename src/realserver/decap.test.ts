// innerPacket: which received IPIP packets the TUN-mode decapsulator hands to the kernel.
import assert from "node:assert/strict";
import { test } from "node:test";
import { innerPacket } from "./decap.ts";

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
