// IPv6 fragmentation on the way out: the fragments of a datagram are no larger than asked, carry
// the unfragmentable part (hop-by-hop kept in front, destination options only before a routing
// header), 8-byte-multiple pieces, one identification, M on all but the last, the link header and
// vnet header copied; fed back to the reassembler they rebuild the datagram byte for byte.

import assert from "node:assert/strict";
import { test } from "node:test";
import { eth, ipv6, udp } from "../frame-builder.ts";
import { Ipv6Reassembler } from "../ipv6-reassembly.ts";
import { fragmentIpv6, unfragmentablePart } from "./fragment6.ts";

const SRC = "2001:db8:1::1";
const DST = "2001:db8:2::2";

function packet(size: number, ext?: Buffer): Buffer {
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 7) & 0xff;
  const u = udp(SRC, DST, 1, 2, payload);
  return ext ? ipv6(SRC, DST, 0, Buffer.concat([ext, u])) : ipv6(SRC, DST, 17, u);
}

function cutFrame(frame: Buffer, l3: number, vnetLen: number, size: number, id: number) {
  const out = Buffer.alloc(64 * 2048);
  let slots = 0;
  const frames: Buffer[] = [];
  const made = fragmentIpv6(
    frame,
    0,
    l3,
    vnetLen,
    size,
    id,
    out,
    () => (slots < 64 ? slots++ * 2048 : -1),
    (o, len) => frames.push(Buffer.from(out.subarray(o, o + len))),
  );
  return { made, frames };
}

for (const [name, ext] of [
  ["plain", undefined],
  ["hop-by-hop in front", Buffer.from([17, 0, 1, 4, 0, 0, 0, 0])],
] as const) {
  test(`${name}: cut to 1280 and to 1500, reassembled byte for byte`, () => {
    const p = packet(5000, ext);
    const frame = Buffer.concat([Buffer.alloc(10, 0xee), eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x86dd, p)]);
    for (const size of [1280, 1500]) {
      const { made, frames } = cutFrame(frame, 24, 10, size, 0xfeedbeef);
      assert.equal(made, Math.ceil((p.length - (ext ? 48 : 40)) / ((size - (ext ? 48 : 40) - 8) & ~7)));
      const r = new Ipv6Reassembler();
      let done: Uint8Array | undefined;
      frames.forEach((f, i) => {
        assert.deepEqual(f.subarray(0, 10), Buffer.alloc(10), "vnet header zeroed");
        assert.deepEqual(f.subarray(10, 24), frame.subarray(10, 24), "link header copied");
        assert.ok(f.length - 24 <= size, `fragment ${i}: ${f.length - 24} bytes`);
        const fh = ext ? 24 + 48 : 24 + 40;
        assert.equal(
          f[ext ? 24 + 40 : 24 + 6],
          44,
          "the fragment header is linked from the last unfragmentable header",
        );
        assert.equal(f.readUInt32BE(fh + 4), 0xfeedbeef);
        assert.equal(f.readUInt16BE(fh + 2) & 1, i < frames.length - 1 ? 1 : 0);
        if (i < frames.length - 1) assert.equal((f.length - fh - 8) % 8, 0);
        const x = r.add(f, 24, f.length, 0);
        if (x.kind === "done") done = x.datagram.packet;
      });
      assert.deepEqual(Buffer.from(done!), p);
    }
  });
}

test("destination options are unfragmentable only before a routing header", () => {
  const dstopts = Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]);
  const p = ipv6(SRC, DST, 60, Buffer.concat([dstopts, udp(SRC, DST, 1, 2, Buffer.alloc(8))]));
  assert.deepEqual(unfragmentablePart(p, 0, p.length), { len: 40, nextAt: 6 });
  const routing = Buffer.from([17, 0, 0, 0, 0, 0, 0, 0]);
  const dr = ipv6(
    SRC,
    DST,
    60,
    Buffer.concat([Buffer.from([43, 0, 1, 4, 0, 0, 0, 0]), routing, udp(SRC, DST, 1, 2, Buffer.alloc(8))]),
  );
  assert.deepEqual(unfragmentablePart(dr, 0, dr.length), { len: 56, nextAt: 48 });
});

test("nothing to cut into: too small a size, an existing fragment, no slots", () => {
  const frame = eth("02:00:00:00:00:01", "02:00:00:00:00:02", 0x86dd, packet(3000));
  assert.equal(cutFrame(frame, 14, 0, 48, 1).made, 0);
  const first = cutFrame(frame, 14, 0, 1280, 1).frames[0]!;
  assert.equal(cutFrame(first, 14, 0, 600, 2).made, 0);
  let n = 0;
  const out = Buffer.alloc(4096);
  const made = fragmentIpv6(
    frame,
    0,
    14,
    0,
    1280,
    3,
    out,
    () => (n++ < 1 ? 0 : -1),
    () => {},
  );
  assert.equal(made, 1);
});
