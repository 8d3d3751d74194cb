// tun-encap.ts: header lengths and protocols per tunnel type, and the GUE source port (a stable
// flow hash spread over the ephemeral range). Whole frames are checked by fixtures/tun-types.ts.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { TunOptions } from "../../../core/dest.ts";
import { encapLength, GUE_SPORT_MAX, GUE_SPORT_MIN, gueSourcePort, outerProtocol } from "./tun-encap.ts";

const t = (type: TunOptions["type"], o: Partial<TunOptions> = {}): TunOptions => ({
  type,
  port: type === "gue" ? 5555 : 0,
  nocsum: false,
  csum: false,
  remcsum: false,
  ...o,
});

test("encapsulation length and outer protocol per tunnel type and option", () => {
  const cases: [string, TunOptions, boolean, number, number][] = [
    ["ipip", t("ipip"), false, 0, 4],
    ["gue nocsum", t("gue", { nocsum: true }), false, 12, 17],
    ["gue csum", t("gue", { csum: true }), false, 12, 17],
    ["gue remcsum, complete checksum", t("gue", { remcsum: true }), false, 12, 17],
    ["gue remcsum, partial checksum", t("gue", { remcsum: true }), true, 20, 17],
    ["gre", t("gre"), false, 4, 47],
    ["gre csum", t("gre", { csum: true }), false, 8, 47],
  ];
  for (const [name, tun, remcsum, len, proto] of cases) {
    assert.equal(encapLength(tun, remcsum), len, `${name}: length`);
    assert.equal(outerProtocol(tun, false), proto, `${name}: protocol`);
  }
  assert.equal(outerProtocol(t("ipip"), true), 41, "IPv6 in IPIP is protocol 41");
});

test("the GUE source port is stable per flow, inside the ephemeral range, and spreads flows", () => {
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) {
    const p = gueSourcePort(0x0a000064 + (i >> 8), 0x0a00000a, 32768 + (i & 0xff), 80, 6);
    assert.ok(p >= GUE_SPORT_MIN && p < GUE_SPORT_MAX, `port ${p} in range`);
    assert.equal(gueSourcePort(0x0a000064 + (i >> 8), 0x0a00000a, 32768 + (i & 0xff), 80, 6), p, "stable");
    seen.add(p);
  }
  // 2000 flows into ~28k ports: collisions are rare for a good hash.
  assert.ok(seen.size > 1900, `${seen.size} distinct ports for 2000 flows`);
  // The port is the flow's, not the protocol-blind client's.
  assert.notEqual(gueSourcePort(1, 2, 3, 4, 6), gueSourcePort(1, 2, 3, 4, 17));
});
