// Bounded, seeded fuzzing of the packet pipeline: random frames and mutations (bit flips,
// truncation, extension, field splices) of every fixture's input frames go through directors set
// up like the fixtures, with and without vnet headers. Asserts that nothing throws (not even
// inside the pipeline, where an exception would be counted as an "error" drop), that every frame
// gets exactly one verdict (rx = forwarded + replied + consumed + ignored + dropped, dropped =
// sum of reasons, rx = frames injected + IPv6 datagrams reassembled from them), and that every IPv4 frame sent out carries a valid IP header checksum.
import assert from "node:assert/strict";
import { test } from "node:test";
import { mulberry32 as rng } from "../../src/core/seeded-random.ts";
import { checksum } from "../../src/dataplane/packet/codec/checksum.ts";
import { DROP_REASONS } from "../../src/dataplane/packet/counters.ts";
import { fixtureDirector, packetFixtures } from "../../src/dataplane/packet/fixtures.ts";

const FRAMES_PER_RUN = 4000;

function mutate(r: () => number, base: Buffer): Buffer {
  const kind = Math.floor(r() * 6);
  const f = Buffer.from(base);
  switch (kind) {
    case 0: {
      const flips = 1 + Math.floor(r() * 4);
      for (let i = 0; i < flips; i++) {
        const at = Math.floor(r() * f.length);
        f[at] = f[at]! ^ (1 << Math.floor(r() * 8));
      }
      return f;
    }
    case 1:
      return f.subarray(0, Math.floor(r() * f.length));
    case 2:
      return Buffer.concat([f, Buffer.alloc(Math.floor(r() * 100), Math.floor(r() * 256))]);
    case 3: {
      // Overwrite a header byte after the MACs with a random value (lengths, versions, types).
      const at = 12 + Math.floor(r() * Math.min(60, Math.max(1, f.length - 12)));
      if (at < f.length) f[at] = Math.floor(r() * 256);
      return f;
    }
    case 4: {
      const n = Math.floor(r() * 200);
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = Math.floor(r() * 256);
      if (n >= 12 && r() < 0.5) f.copy(out, 0, 0, 12); // keep our MAC so it gets parsed
      return out;
    }
    default:
      return f;
  }
}

for (const vnet of [false, true]) {
  test(`fuzzed frames never throw and every frame gets one verdict (vnet ${vnet})`, () => {
    const fixtures = packetFixtures();
    const inputs = fixtures.flatMap((fx) => fx.steps.map((s) => s.input));
    const r = rng(vnet ? 0xbeef : 0x5eed);
    let injected = 0;
    let forwarded = 0;
    for (const fx of fixtures) {
      const d = fixtureDirector({ ...fx, vnet });
      let here = 0;
      for (let i = 0; i < FRAMES_PER_RUN / fixtures.length; i++) {
        const base = inputs[Math.floor(r() * inputs.length)]!;
        const frame = mutate(r, base);
        const vh = Buffer.alloc(10);
        if (vnet && r() < 0.3) {
          vh[0] = 1;
          vh[1] = r() < 0.2 ? 1 : 0;
          vh.writeUInt16LE(34, 6);
          vh.writeUInt16LE(16, 8);
        }
        d.io.inject(frame, { vnet: vh, status: r() < 0.1 ? 8 : 0 });
        injected++;
        here++;
        if (r() < 0.25 || d.io.pending >= 64) d.engine.drain();
        if (r() < 0.01) d.clock.advance(Math.floor(r() * 400_000));
        if (r() < 0.01) d.conns.expire(d.clock.now());
      }
      d.engine.drain(1000);
      assert.equal(d.io.pending, 0);
      const c = d.pipeline.counters;
      assert.equal(c.drops.error, 0, "no exception inside the pipeline");
      // A reassembled IPv6 datagram is received once more, whole, after its fragments.
      assert.equal(c.rx, here + c.reassembled, `every injected frame was received: ${fx.description}`);
      assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped, fx.description);
      assert.equal(
        c.dropped,
        DROP_REASONS.reduce((s, k) => s + c.drops[k], 0),
        fx.description,
      );
      for (const out of d.io.drain()) {
        assert.ok(out.length >= 60, "sent frames are padded to 60 bytes");
        if (out.readUInt16BE(12) === 0x0800 && out.length >= 34 && out[14]! >> 4 === 4) {
          const hl = (out[14]! & 15) * 4;
          assert.equal(checksum(out, 14, hl), 0, "IPv4 header checksum of a sent frame");
        }
      }
      forwarded += c.forwarded;
    }
    assert.ok(injected >= FRAMES_PER_RUN - fixtures.length);
    assert.ok(forwarded > 0, "some mutated frames still make it through");
  });
}
