// IPv4 fragmentation on the way out: pieces fit the MTU, data in 8-byte multiples at the right
// offsets, MF on all but the last, header checksums valid, only "copied" options after the first
// fragment, and the pieces reassemble to the original datagram.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checksum } from "../codec/checksum.ts";
import { udp4Frame } from "../frame-builder.ts";
import { fragmentIpv4 } from "./fragment.ts";

interface Piece {
  frame: Buffer;
  ip: Buffer;
}

function cut(frame: Buffer, l3: number, vnetLen: number, mtu: number, slots = 64): Piece[] {
  const out = Buffer.alloc(slots * 2048);
  let next = 0;
  const pieces: Piece[] = [];
  const made = fragmentIpv4(
    frame,
    0,
    l3,
    vnetLen,
    mtu,
    out,
    () => (next < slots ? next++ * 2048 : -1),
    (off, len) => {
      const f = Buffer.from(out.subarray(off, off + len));
      const ipStart = l3;
      const total = f.readUInt16BE(ipStart + 2);
      pieces.push({ frame: f, ip: f.subarray(ipStart, ipStart + total) });
    },
  );
  assert.equal(made, pieces.length);
  return pieces;
}

function reassemble(pieces: Piece[]): { header: Buffer; data: Buffer } {
  const chunks: [number, Buffer][] = pieces.map(({ ip }) => {
    const hl = (ip[0]! & 15) * 4;
    return [(ip.readUInt16BE(6) & 0x1fff) * 8, ip.subarray(hl)];
  });
  chunks.sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [off, d] of chunks) {
    assert.equal(off, at, "pieces are contiguous");
    at += d.length;
  }
  const first = pieces[0]!.ip;
  return { header: first.subarray(0, (first[0]! & 15) * 4), data: Buffer.concat(chunks.map((c) => c[1])) };
}

test("a 4000-byte UDP datagram leaves as three fragments that reassemble to it", () => {
  const payload = Buffer.alloc(4000 - 28);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 7) & 0xff;
  const frame = udp4Frame(
    "02:00:00:00:00:01",
    "02:00:00:00:00:02",
    "192.168.122.70",
    "192.168.122.45",
    5000,
    53,
    payload,
    {
      ip: { id: 0xbeef },
    },
  );
  const pieces = cut(frame, 14, 0, 1500);
  assert.equal(pieces.length, 3);
  for (const [i, { ip, frame: f }] of pieces.entries()) {
    assert.ok(ip.length <= 1500, `fragment ${i} fits (${ip.length})`);
    assert.equal(checksum(ip, 0, 20), 0, `fragment ${i} header checksum`);
    assert.equal(ip.readUInt16BE(4), 0xbeef, "IP ID kept");
    const mf = (ip.readUInt16BE(6) & 0x2000) !== 0;
    assert.equal(mf, i < pieces.length - 1, `MF on fragment ${i}`);
    if (i < pieces.length - 1) assert.equal((ip.length - 20) % 8, 0, "data in 8-byte multiples");
    assert.deepEqual(f.subarray(0, 14), frame.subarray(0, 14), "link header copied");
  }
  const { data } = reassemble(pieces);
  assert.deepEqual(data, frame.subarray(14 + 20, 14 + 4000));
});

test("a vnet header in front is zeroed in every fragment and the pieces follow it", () => {
  const payload = Buffer.alloc(3000, 0x5a);
  const plain = udp4Frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", 1, 2, payload);
  const frame = Buffer.concat([Buffer.from([1, 0, 0, 0, 0, 0, 0x22, 0, 0x06, 0]), plain]);
  const pieces = cut(frame, 24, 10, 1400);
  assert.ok(pieces.length >= 3);
  for (const p of pieces) assert.deepEqual(p.frame.subarray(0, 10), Buffer.alloc(10));
  assert.deepEqual(reassemble(pieces).data, plain.subarray(34));
});

test("later fragments carry only the options marked copied", () => {
  // Header with options: a copied option (type 0x94, router alert, 4 bytes) and a non-copied one
  // (type 0x44, timestamp, 8 bytes): 20 + 12 = 32 bytes.
  const body = Buffer.alloc(2000, 1);
  const hl = 32;
  const ip = Buffer.alloc(hl + body.length);
  ip[0] = 0x40 | (hl / 4);
  ip.writeUInt16BE(ip.length, 2);
  ip.writeUInt16BE(7, 4);
  ip[8] = 64;
  ip[9] = 17;
  ip.writeUInt32BE(0x0a000001, 12);
  ip.writeUInt32BE(0x0a000002, 16);
  Buffer.from([0x94, 4, 0, 0, 0x44, 8, 5, 0, 0, 0, 0, 0]).copy(ip, 20);
  ip.writeUInt16BE(checksum(ip, 0, hl), 10);
  body.copy(ip, hl);
  const frame = Buffer.concat([Buffer.from("020000000001020000000002", "hex"), Buffer.from([8, 0]), ip]);
  const pieces = cut(frame, 14, 0, 1000);
  assert.ok(pieces.length >= 3);
  assert.equal(pieces[0]!.ip[0]! & 15, 8, "first fragment keeps every option");
  for (const p of pieces.slice(1)) {
    assert.equal(p.ip[0]! & 15, 6, "later fragments: 20 + the 4-byte copied option");
    assert.deepEqual(p.ip.subarray(20, 24), Buffer.from([0x94, 4, 0, 0]));
    assert.equal(checksum(p.ip, 0, 24), 0);
  }
  assert.deepEqual(reassemble(pieces).data, body);
});

test("cutting a fragment keeps its offset and its MF on the last piece", () => {
  const payload = Buffer.alloc(2400, 3);
  const frame = udp4Frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", 1, 2, payload, {
    ip: { mf: true, fragOffset: 100 },
  });
  const pieces = cut(frame, 14, 0, 1500);
  assert.equal(pieces.length, 2);
  assert.equal(pieces[0]!.ip.readUInt16BE(6) & 0x1fff, 100);
  assert.ok((pieces[1]!.ip.readUInt16BE(6) & 0x2000) !== 0, "the packet's own MF survives on the last piece");
});

test("running out of slots stops early and says how many went out; a tiny MTU cuts nothing", () => {
  const frame = udp4Frame("02:00:00:00:00:01", "02:00:00:00:00:02", "10.0.0.1", "10.0.0.2", 1, 2, Buffer.alloc(5000));
  assert.equal(cut(frame, 14, 0, 1500, 2).length, 2);
  assert.equal(cut(frame, 14, 0, 24).length, 0);
});
