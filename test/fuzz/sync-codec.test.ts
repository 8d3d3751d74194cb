// Bounded, seeded fuzzing of the sync codec: random records round-trip through the writer and the
// reader unchanged (split over as many messages as maxlen asks), and random bytes and mutations of
// valid messages (bit flips, truncation, extension, count and size fields) never make the reader
// throw; whatever it returns is well formed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalIp } from "../../src/core/addr.ts";
import { mulberry32 as rng } from "../../src/core/seeded-random.ts";
import { decodeSyncMessage, encodeSyncMessages, type SyncConn } from "../../src/sync/codec.ts";

function randomConn(r: () => number): SyncConn {
  const int = (n: number) => Math.floor(r() * n);
  const family = r() < 0.3 ? 6 : 4;
  const addr = () =>
    family === 4
      ? `${int(224)}.${int(256)}.${int(256)}.${int(256)}`
      : `fd00:${int(0x10000).toString(16)}::${int(0x10000).toString(16)}`;
  const c: SyncConn = {
    family,
    protocol: [6, 17, 132, 0][int(4)] as number,
    flags: int(0x4000) & ~0x40,
    state: int(12),
    cport: int(65536),
    vport: int(65536),
    dport: int(65536),
    fwmark: int(2 ** 32),
    timeoutS: int(2 ** 32),
    caddr: addr(),
    vaddr: addr(),
    daddr: addr(),
  };
  // Canonical text, as the reader returns it.
  for (const k of ["caddr", "vaddr", "daddr"] as const) c[k] = canonicalIp(c[k]) as string;
  const seq = () => ({ initSeq: int(2 ** 32), delta: int(2 ** 32), previousDelta: int(2 ** 32) });
  if (r() < 0.2) c.seq = { in: seq(), out: seq() };
  if (r() < 0.15) {
    c.peData = Uint8Array.from({ length: 1 + int(60) }, () => int(256));
    if (r() < 0.8) c.peName = "sip";
  }
  if (r() < 0.2)
    c.local = {
      addr: r() < 0.5 ? `10.0.${int(256)}.${int(256)}` : `fd00::${(1 + int(0xfff)).toString(16)}`,
      port: int(65536),
    };
  return c;
}

test("random records survive writer and reader unchanged", () => {
  const r = rng(13);
  for (let round = 0; round < 200; round++) {
    const conns = Array.from({ length: 1 + Math.floor(r() * 60) }, () => randomConn(r));
    const maxLen = [1472, 512, 8972, 100][round % 4] as number;
    const msgs = encodeSyncMessages(round % 256, maxLen, conns);
    const back: SyncConn[] = [];
    for (const m of msgs) {
      assert.ok(m.length <= Math.max(maxLen, 8 + 512));
      const d = decodeSyncMessage(m, round % 256);
      assert.ok(d.ok);
      assert.equal(d.rest, undefined);
      back.push(...d.conns);
    }
    assert.deepEqual(back, conns);
  }
});

test("random and mutated messages never make the reader throw", () => {
  const r = rng(0x5eed);
  const seeds = Array.from({ length: 40 }, () =>
    encodeSyncMessages(
      0,
      1472,
      Array.from({ length: 1 + Math.floor(r() * 8) }, () => randomConn(r)),
    ),
  ).flat();
  let accepted = 0;
  for (let i = 0; i < 20_000; i++) {
    let m: Uint8Array;
    if (i % 5 === 0) m = Uint8Array.from({ length: Math.floor(r() * 200) }, () => Math.floor(r() * 256));
    else {
      const base = seeds[Math.floor(r() * seeds.length)] as Uint8Array;
      m = base.slice();
      switch (Math.floor(r() * 5)) {
        case 0:
          for (let k = 0; k < 1 + Math.floor(r() * 4); k++) {
            const at = Math.floor(r() * m.length);
            m[at] = (m[at] as number) ^ (1 << Math.floor(r() * 8));
          }
          break;
        case 1:
          m = m.subarray(0, Math.floor(r() * m.length));
          break;
        case 2: {
          const longer = new Uint8Array(m.length + Math.floor(r() * 64));
          longer.set(m);
          m = longer;
          break;
        }
        case 3:
          m[4] = Math.floor(r() * 256);
          break;
        default:
          // Keep the size field honest so the records themselves get read.
          m = m.subarray(0, Math.max(8, Math.floor(r() * m.length)));
          for (let k = 8; k < m.length; k += 1 + Math.floor(r() * 40)) m[k] = Math.floor(r() * 256);
          if (m.length >= 4) new DataView(m.buffer, m.byteOffset).setUint16(2, m.length);
      }
    }
    const d = decodeSyncMessage(m, 0);
    if (!d.ok) continue;
    accepted++;
    for (const c of d.conns) {
      assert.ok(c.family === 4 || c.family === 6);
      assert.ok(c.cport >= 0 && c.cport <= 0xffff && c.dport <= 0xffff && c.vport <= 0xffff);
      assert.equal(typeof c.caddr, "string");
    }
  }
  assert.ok(accepted > 1000, `only ${accepted} messages got past the header checks`);
});
