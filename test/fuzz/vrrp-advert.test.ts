// Fuzzed VRRP adverts never throw: random bytes, truncations and bit flips of valid adverts all
// come back as a decode result (an error counter or an advert), and the instance checks accept
// whatever decodeAdvert returns. Seeded, bounded.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkAdvert, decodeAdvert, encodeAdvert, splitIpv4, VRRP_GROUP4, VRRP_GROUP6 } from "../../src/vrrp/codec.ts";

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

test("20000 fuzzed adverts never throw", () => {
  const r = rng(12345);
  const seeds = [
    encodeAdvert({
      version: 2,
      family: 4,
      vrid: 51,
      priority: 100,
      intervalMs: 1000,
      addrs: ["172.16.0.30"],
      auth: { type: "PASS", pass: "1111" },
    }),
    encodeAdvert({
      version: 3,
      family: 4,
      vrid: 51,
      priority: 100,
      intervalMs: 100,
      addrs: ["172.16.0.30", "172.16.0.31"],
      src: "10.0.0.1",
      dst: VRRP_GROUP4,
    }),
    encodeAdvert({
      version: 3,
      family: 6,
      vrid: 9,
      priority: 255,
      intervalMs: 1000,
      addrs: ["2001:db8::1"],
      src: "fe80::1",
      dst: VRRP_GROUP6,
    }),
  ];
  const inst = {
    version: 3 as const,
    family: 4 as const,
    vrid: 51,
    intervalMs: 100,
    addrs: ["172.16.0.30"],
    checkTtl: true,
  };
  let ok = 0;
  for (let i = 0; i < 20000; i++) {
    let buf: Uint8Array;
    const mode = i % 4;
    if (mode === 0) {
      buf = new Uint8Array(Math.floor(r() * 80));
      for (let j = 0; j < buf.length; j++) buf[j] = Math.floor(r() * 256);
    } else {
      const base = seeds[i % seeds.length] as Uint8Array;
      buf = Uint8Array.from(base);
      if (mode === 1) buf = buf.subarray(0, Math.floor(r() * buf.length));
      else
        for (let k = 0; k < 1 + Math.floor(r() * 4); k++) {
          const at = Math.floor(r() * buf.length);
          buf[at] = (buf[at] as number) ^ (1 << Math.floor(r() * 8));
        }
    }
    const family = r() < 0.5 ? 4 : 6;
    const res = decodeAdvert(buf, {
      family,
      src: family === 4 ? "10.0.0.1" : "fe80::1",
      dst: family === 4 ? VRRP_GROUP4 : VRRP_GROUP6,
    });
    if (res.ok) {
      ok++;
      const c = checkAdvert(res.advert, Math.floor(r() * 256), { ...inst, family });
      assert.equal(typeof c.accept, "boolean");
    } else assert.equal(typeof res.error, "string");
    splitIpv4(buf);
  }
  // Some mutations (flips in the checksum-neutral places are rare) still decode; most are refused.
  assert.ok(ok < 20000);
});
