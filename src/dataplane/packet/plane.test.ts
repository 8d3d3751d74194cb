// The packet plane's DataPlane face over the memory io: what it refuses, that it owns service
// VIPs once added (ARP answered, gratuitous ARP sent) and forgets them when removed.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../core/clock.ts";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { destSpec } from "../../core/dest.ts";
import { CoreError } from "../../core/errors.ts";
import { silentLogger } from "../../core/log.ts";
import { SchedulerRegistry } from "../../core/sched/registry.ts";
import { rr } from "../../core/sched/rr.ts";
import { serviceOptions } from "../../core/service.ts";
import { ServiceTable } from "../../core/service-table.ts";
import { parseMac } from "./codec/eth.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC } from "./fixtures.ts";
import { arpFrame } from "./frame-builder.ts";
import { MemoryPacketIo } from "./memory-io.ts";
import { createPacketDataPlane, PoolPacketPlane } from "./plane.ts";

const log = silentLogger;

function setup(localAddrs: string[] = []) {
  const clock = new ManualClock(0);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 1 });
  const conns = new ConnTable({ services });
  const io = new MemoryPacketIo();
  const plane = createPacketDataPlane({
    interface: "mem0",
    services,
    conns,
    clock,
    log,
    io,
    mac: parseMac(DIRECTOR_MAC),
    addr4: "10.0.0.1",
    localAddrs,
    guard: false,
  });
  return { clock, services, conns, io, plane };
}

const key = { kind: "vip" as const, protocol: "tcp" as const, addr: "10.0.0.10", port: 80 };

test("admitDest refuses port mapping for DR and TUN, local and FULLNAT without local addresses; admits GUE and GRE", () => {
  const { plane } = setup();
  const refuse = (spec: ReturnType<typeof destSpec>, code: string) =>
    assert.throws(
      () => plane.admitDest(key, spec, "add-dest"),
      (e: unknown) => e instanceof CoreError && e.code === code,
    );
  refuse(destSpec("10.0.0.21", 8080, { fwd: "droute" }), "EINVAL");
  refuse(destSpec("10.0.0.21", 8080, { fwd: "tunnel" }), "EINVAL");
  refuse(destSpec("10.0.0.21", 80, { fwd: "local" }), "EOPNOTSUPP");
  refuse(destSpec("10.0.0.21", 80, { fwd: "fullnat" }), "EINVAL");
  for (const tun of [
    { type: "gue" as const, port: 6080, nocsum: false, csum: false, remcsum: true },
    { type: "gre" as const, port: 0, nocsum: false, csum: true, remcsum: false },
  ])
    assert.equal(
      plane.admitDest(key, destSpec("10.0.0.21", 80, { fwd: "tunnel", tun }), "add-dest").tun.type,
      tun.type,
    );
  assert.equal(plane.admitDest(key, destSpec("10.0.0.21", 8080, { fwd: "masq" }), "add-dest").port, 8080);
  // fwmark services are carried (firewall-mark rules classify frames: fwmark-plane.test.ts).
  plane.admitService({ kind: "fwmark", fwmark: 1, family: 4 }, serviceOptions(4), "add-service");
});

test("a VIP is owned once its service is added: gratuitous ARP, then ARP answered; removed, it is not", async () => {
  const { services, io, plane } = setup();
  await plane.start();
  const svc = services.addService(key, serviceOptions(4, { scheduler: "rr" }));
  services.addDest(key, destSpec("10.0.0.21", 80));
  await plane.serviceAdded(svc);
  const sent = io.drain();
  assert.ok(
    sent.some((f) => f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 1 && f[41] === 10),
    "gratuitous ARP",
  );
  assert.ok(
    sent.some((f) => f.readUInt16BE(12) === 0x0806 && f[41] === 21),
    "ARP probe for the real server",
  );
  io.inject(arpFrame("ff:ff:ff:ff:ff:ff", 1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", "10.0.0.10"));
  assert.equal(io.drain().length, 1);
  services.deleteService(key);
  plane.serviceRemoved(svc);
  io.inject(arpFrame("ff:ff:ff:ff:ff:ff", 1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", "10.0.0.10"));
  assert.equal(io.drain().length, 0);
  await plane.stop(0);
});

test("workers sharing by the kernel's hash refuse what needs steering: NAT, FULLNAT, persistence", () => {
  const clock = new ManualClock(0);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 1 });
  const conns = new ConnTable({ services });
  // Constructed directly: admission needs no native addon and no interface.
  const make = (fanout: "hash" | "cbpf") =>
    new PoolPacketPlane({
      interface: "eth0",
      services,
      conns,
      clock,
      log,
      workers: 2,
      fanout,
      localAddrs: ["10.0.0.31"],
      guard: false,
    });
  const hash = make("hash");
  const refused = (f: () => unknown, what: RegExp) =>
    assert.throws(f, (e: unknown) => e instanceof CoreError && e.code === "EOPNOTSUPP" && what.test(e.message));
  refused(
    () => hash.admitDest(key, destSpec("10.0.0.21", 80, { fwd: "masq" }), "add-dest"),
    /"masq" needs the steered fanout/,
  );
  refused(
    () => hash.admitDest(key, destSpec("10.0.0.21", 80, { fwd: "fullnat" }), "add-dest"),
    /"fullnat" needs the steered fanout/,
  );
  refused(
    () => hash.admitService(key, serviceOptions(4, { persistent: true, timeout: 300 }), "add-service"),
    /Persistent services need the steered fanout/,
  );
  assert.equal(hash.admitDest(key, destSpec("10.0.0.21", 80, { fwd: "droute" }), "add-dest").fwd, "droute");
  const steered = make("cbpf");
  assert.equal(steered.admitDest(key, destSpec("10.0.0.21", 80, { fwd: "masq" }), "add-dest").fwd, "masq");
  steered.admitService(key, serviceOptions(4, { persistent: true, timeout: 300 }), "add-service");
});
