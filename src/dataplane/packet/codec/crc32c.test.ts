// CRC32c against published vectors (RFC 3720 appendix B.4, the CRC catalogue's check value), the
// sliced loop against the byte-at-a-time one on every length and alignment, and the O(log n)
// update against a full recomputation after random four-byte changes.
import assert from "node:assert/strict";
import { test } from "node:test";
import { crc32c, crc32cBytewise, crc32cUpdate32 } from "./crc32c.ts";

/** RFC 3720 B.4 lists the CRC as the bytes of the field, least significant first. */
function fromField(bytes: number[]): number {
  return Buffer.from(bytes).readUInt32LE(0);
}

test("RFC 3720 B.4 vectors", () => {
  const iscsiRead = Buffer.from(
    "01c00000000000000000000000000000140000000000040000000014000000182800000000000000020000000000000000",
    "hex",
  ).subarray(0, 48);
  const cases: [string, Buffer, number[]][] = [
    ["32 bytes of zeros", Buffer.alloc(32, 0), [0xaa, 0x36, 0x91, 0x8a]],
    ["32 bytes of ones", Buffer.alloc(32, 0xff), [0x43, 0xab, 0xa8, 0x62]],
    ["32 incrementing bytes", Buffer.from(Array.from({ length: 32 }, (_, i) => i)), [0x4e, 0x79, 0xdd, 0x46]],
    ["32 decrementing bytes", Buffer.from(Array.from({ length: 32 }, (_, i) => 31 - i)), [0x5c, 0xdb, 0x3f, 0x11]],
    ["an iSCSI SCSI Read (10) command PDU", iscsiRead, [0x56, 0x3a, 0x96, 0xd9]],
  ];
  for (const [name, data, field] of cases) {
    assert.equal(crc32c(data), fromField(field), name);
    assert.equal(crc32cBytewise(data), fromField(field), `${name} (bytewise)`);
  }
});

test("the catalogue's check value: CRC-32C of '123456789' is 0xe3069283", () => {
  assert.equal(crc32c(Buffer.from("123456789")), 0xe3069283);
  assert.equal(crc32c(Buffer.alloc(0)), 0);
});

test("slicing-by-8 equals the byte loop for every length 0..80 at every alignment 0..7", () => {
  const data = Buffer.from(Array.from({ length: 96 }, (_, i) => (i * 167 + 13) & 0xff));
  for (let off = 0; off < 8; off++)
    for (let len = 0; len <= 80; len++)
      assert.equal(crc32c(data, off, len), crc32cBytewise(data, off, len), `off ${off} len ${len}`);
});

test("the update after a four-byte change equals recomputing (random messages, positions, lengths)", () => {
  let seed = 12345;
  const rnd = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed >>> 8;
  };
  for (let n = 0; n < 300; n++) {
    const len = 4 + (rnd() % (n < 250 ? 2000 : 65531));
    const msg = Buffer.alloc(len);
    for (let i = 0; i < len; i++) msg[i] = rnd() & 0xff;
    const at = rnd() % (len - 3);
    const before = crc32c(msg);
    const from = msg.readUInt32BE(at);
    const to = (rnd() ^ (rnd() << 16)) >>> 0;
    msg.writeUInt32BE(to, at);
    assert.equal(crc32cUpdate32(before, len, at, from, to), crc32c(msg), `len ${len} at ${at}`);
  }
});

test("the update keeps a corrupt message's CRC wrong (it does not launder the payload)", () => {
  const msg = Buffer.from(Array.from({ length: 200 }, (_, i) => i & 0xff));
  const good = crc32c(msg);
  msg[150] = msg[150]! ^ 0x10; // corrupted in transit; `good` is what the sender computed
  const from = msg.readUInt32BE(0);
  msg.writeUInt32BE(0x12345678, 0);
  assert.notEqual(crc32cUpdate32(good, msg.length, 0, from, 0x12345678), crc32c(msg));
});
