// The socket plane refuses destinations that are the virtual service itself: a connection relayed
// there would connect to the plane again, and again, until the descriptor budget is spent.

import assert from "node:assert/strict";
import test from "node:test";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { DEFAULT_TUN, type DestSpec } from "../../core/dest.ts";
import { silentLogger } from "../../core/log.ts";
import { createDefaultRegistry } from "../../core/sched/all.ts";
import { ServiceTable } from "../../core/service-table.ts";
import { ProxyPlane } from "./plane.ts";

function plane(): ProxyPlane {
  const clock = { now: () => 0 };
  const services = new ServiceTable(createDefaultRegistry(), { clock, random: () => 7 });
  const conns = new ConnTable({ services });
  return new ProxyPlane(
    { services, conns, clock, log: silentLogger },
    { fwmarkAddrs: new Map([[5, [{ protocol: "tcp", addr: "127.0.0.5", port: 8443 }]]]) },
  );
}

function dest(addr: string, port: number): DestSpec {
  return { addr, port, fwd: "masq", weight: 1, uThreshold: 0, lThreshold: 0, tun: DEFAULT_TUN };
}

test("socket plane: a destination on the VIP's own address and port, or port 0 (the service's port), is refused", () => {
  const p = plane();
  const vip = { kind: "vip", protocol: "tcp", addr: "127.0.0.1", port: 8080 } as const;
  for (const d of [dest("127.0.0.1", 8080), dest("127.0.0.1", 0)])
    assert.throws(() => p.admitDest(vip, d, "add-dest"), { code: "EINVAL", message: /is the virtual service itself/ });
  assert.throws(() => p.admitDest(vip, dest("127.0.0.1", 0), "add-dest"), /port 0 is the service's port, 8080/);
  // Other ports, and port 0 on another address, are real servers.
  assert.equal(p.admitDest(vip, dest("127.0.0.1", 8081), "add-dest").port, 8081);
  assert.equal(p.admitDest(vip, dest("127.0.0.2", 0), "add-dest").port, 0);
});

test("socket plane: a firewall-mark service's destination on one of its listening addresses is refused", () => {
  const p = plane();
  const fw = { kind: "fwmark", fwmark: 5, family: 4 } as const;
  for (const d of [dest("127.0.0.5", 8443), dest("127.0.0.5", 0)])
    assert.throws(() => p.admitDest(fw, d, "add-dest"), { code: "EINVAL" });
  assert.equal(p.admitDest(fw, dest("127.0.0.5", 9000), "add-dest").port, 9000);
});
