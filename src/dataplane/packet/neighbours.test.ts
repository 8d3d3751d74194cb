// Sharing neighbours between packet workers: the cache tells onLearn about entries that are new,
// changed their MAC or were refreshed after going stale (not about every repeat, and never about
// what a peer passed on), and frames held for an unknown next hop go out when a peer's answer
// arrives through the engine.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseMac } from "./codec/eth.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, fixtureDirector, RS1, VIP } from "./fixtures.ts";
import { tcp4Frame } from "./frame-builder.ts";
import { Neighbours, REACHABLE_MS } from "./neighbours.ts";

test("onLearn: new, changed, refreshed after going stale; not repeats, not from a peer", () => {
  const n = new Neighbours();
  const told: string[] = [];
  n.onLearn = (addr, mac) => told.push(`${addr} ${mac[5]}`);
  const mac = (last: number) => Uint8Array.of(2, 0, 0, 0, 0, last);
  n.learn("10.0.0.1", mac(1), 0, true);
  n.learn("10.0.0.1", mac(1), 1000, true);
  n.learn("10.0.0.1", mac(2), 2000, true);
  n.learn("10.0.0.1", mac(2), 2000 + REACHABLE_MS, true);
  n.learn("10.0.0.2", mac(3), 0, true, true);
  n.learn("10.0.0.2", mac(4), 10, true, true);
  assert.deepEqual(told, ["10.0.0.1 1", "10.0.0.1 2", "10.0.0.1 2"]);
  assert.equal(n.mac("10.0.0.2")?.[5], 4, "a peer's entry is recorded all the same");
});

test("a frame held for an unknown real server goes out when another worker's answer arrives", () => {
  const d = fixtureDirector({
    services: [{ protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 80, fwd: "droute" }] }],
  });
  d.io.inject(tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport: 40000, dport: 80, flags: 0x02 }));
  d.engine.drain();
  const probes = d.io.drain();
  assert.ok(
    probes.every((f) => f.readUInt16BE(12) === 0x0806),
    "only the ARP probe left: the SYN is held",
  );
  d.engine.learnFromPeer(RS1, parseMac("02:00:00:00:01:01"));
  const out = d.io.drain();
  assert.equal(out.length, 1);
  assert.equal(out[0]!.subarray(0, 6).toString("hex"), "020000000101", "to the MAC the peer learned");
  assert.equal(out[0]!.readUInt16BE(12), 0x0800);
});
