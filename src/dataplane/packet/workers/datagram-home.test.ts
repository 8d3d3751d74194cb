// DatagramHome: the worker a reassembled IPv6 datagram belongs to is steerFlow's answer modulo the
// worker count, from a plan built once and again only after invalidate() (a table message).
import assert from "node:assert/strict";
import { test } from "node:test";
import { ETH_P_IPV6, eth, ipv6, udp } from "../frame-builder.ts";
import { type SteeringPlan, steerFlow } from "../steering.ts";
import { DatagramHome } from "./datagram-home.ts";

const VIP6 = "2001:db8::10";

function datagram(client: string, sport: number): Uint8Array {
  return eth(
    "02:00:00:00:00:01",
    "02:00:00:00:00:02",
    ETH_P_IPV6,
    ipv6(client, VIP6, 17, udp(client, VIP6, sport, 53, Buffer.alloc(3000))),
  );
}

test("the plan is built once for many datagrams and again after invalidate(); answers are steerFlow's", () => {
  const plain: SteeringPlan = { vips: [VIP6], locals: [], byAddress: false, mask: 0xffffffff };
  const persistent: SteeringPlan = { ...plain, byAddress6: true, prefix6: 64 };
  let current = plain;
  const home = new DatagramHome(() => current, 4);
  const seen = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const f = datagram(`2001:db8:1::${(i % 50) + 1}`, 1024 + i);
    const w = home.of(f);
    assert.equal(w, steerFlow(plain, f, 0, f.length) % 4);
    seen.add(w);
  }
  assert.equal(home.builds, 1, "one plan for 200 datagrams");
  assert.equal(seen.size, 4, "flows spread over every worker");
  // The table changed (a persistent service): the next datagram sees the new plan.
  current = persistent;
  home.invalidate();
  const clientWorkers = new Set<number>();
  for (let port = 1024; port < 1100; port++) {
    const f = datagram("2001:db8:1::7", port);
    const w = home.of(f);
    assert.equal(w, steerFlow(persistent, f, 0, f.length) % 4);
    clientWorkers.add(w);
  }
  assert.equal(home.builds, 2);
  assert.equal(clientWorkers.size, 1, "persistence: one client's datagrams meet one worker whatever the port");
});
