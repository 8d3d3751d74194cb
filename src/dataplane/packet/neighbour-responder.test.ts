// The own/release switch VRRP drives: a released VIP gets no ARP or ND answer and its frames are
// not forwarded (left to the host); owning it again sends a gratuitous ARP / unsolicited NA at
// once and traffic flows. Through the pipeline (fixtureDirector) and through the packet plane's
// setVipOwned on the single loop.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseIpv6Groups } from "../../core/addr.ts";
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
import { ip6Bytes } from "./codec/ipv6.ts";
import {
  CLIENT,
  CLIENT_MAC,
  CLIENT6,
  DIRECTOR_MAC,
  fixtureDirector,
  RS1,
  RS1_MAC,
  RS6,
  VIP,
  VIP6,
} from "./fixtures.ts";
import { arpFrame, eth, icmpv6, ipv6, tcp4Frame } from "./frame-builder.ts";
import { MemoryPacketIo } from "./memory-io.ts";
import { createPacketDataPlane } from "./plane.ts";

const SYN = 0x02;
const isArp = (f: Buffer) => f.readUInt16BE(12) === 0x0806;
const arpOp = (f: Buffer) => f.readUInt16BE(20);
const arpSpa = (f: Buffer) => [...f.subarray(28, 32)].join(".");

function director() {
  return fixtureDirector({
    services: [
      { protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 80, fwd: "droute" }] },
      { protocol: "tcp", vip: VIP6, port: 80, dests: [{ addr: RS6, port: 80, fwd: "droute" }] },
    ],
    neighbours: { [RS1]: RS1_MAC, [RS6]: RS1_MAC },
  });
}

const whoHas = (target: string) => arpFrame("ff:ff:ff:ff:ff:ff", 1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", target);
const syn = (sport: number) => tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport, dport: 80, flags: SYN });

/** A neighbour solicitation for `target` (canonical IPv6) from CLIENT6 with its link-layer address option. */
function solicit(target: string): Buffer {
  const t = Buffer.from(ip6Bytes(parseIpv6Groups(target) ?? []));
  const body = Buffer.concat([Buffer.alloc(4), t, Buffer.from([1, 1]), Buffer.from(parseMac(CLIENT_MAC))]);
  const dst = "ff02::1:ff00:10";
  return eth("33:33:ff:00:00:10", CLIENT_MAC, 0x86dd, ipv6(CLIENT6, dst, 58, icmpv6(CLIENT6, dst, 135, 0, body), 255));
}

test("a released VIP gets no ARP reply and its frames are not forwarded; owned again, it is announced and served", () => {
  const d = director();
  d.pipeline.setOwned(VIP, false, undefined, false);
  d.io.inject(whoHas(VIP));
  d.engine.drain();
  assert.deepEqual(d.io.drain(), [], "no ARP reply for a released VIP");
  assert.equal(d.pipeline.verdicts[0], "ignore");
  d.io.inject(syn(40000));
  d.engine.drain();
  assert.deepEqual(d.io.drain(), [], "its traffic is not taken");
  assert.equal(d.pipeline.verdicts[0], "ignore", "left to the host");
  assert.equal(d.conns.size, 0, "no connection created");
  assert.ok(!d.pipeline.ownedAddresses().includes(VIP));

  // Owning it again announces it at once, then ARP is answered and traffic forwarded.
  d.engine.setOwned(VIP, true);
  const announced = d.io.drain();
  assert.equal(announced.length, 1);
  assert.ok(isArp(announced[0]!) && arpOp(announced[0]!) === 1 && arpSpa(announced[0]!) === VIP, "gratuitous ARP");
  d.io.inject(whoHas(VIP));
  d.engine.drain();
  const reply = d.io.drain();
  assert.equal(reply.length, 1);
  assert.ok(isArp(reply[0]!) && arpOp(reply[0]!) === 2 && arpSpa(reply[0]!) === VIP, "ARP reply");
  d.io.inject(syn(40001));
  d.engine.drain();
  assert.equal(d.pipeline.verdicts[0], "forward");
  assert.equal(d.io.drain().length, 1);
});

test("a released IPv6 VIP gets no neighbour advertisement; owning it sends an unsolicited one", () => {
  const d = director();
  d.io.inject(solicit(VIP6));
  d.engine.drain();
  assert.equal(d.io.drain().length, 1, "owned by default: advertised");
  d.engine.setOwned(VIP6, false);
  assert.deepEqual(d.io.drain(), [], "releasing sends nothing");
  d.io.inject(solicit(VIP6));
  d.engine.drain();
  assert.deepEqual(d.io.drain(), []);
  d.engine.setOwned(VIP6, true);
  const na = d.io.drain();
  assert.equal(na.length, 1);
  assert.equal(na[0]!.readUInt16BE(12), 0x86dd);
  assert.equal(na[0]![54], 136, "an unsolicited neighbour advertisement");
});

test("releasing one VIP leaves the others answered, and the release survives a refresh of the owned addresses", () => {
  const d = director();
  d.engine.setOwned(VIP, false);
  d.pipeline.refreshVips();
  d.io.inject(whoHas(VIP));
  d.engine.drain();
  assert.deepEqual(d.io.drain(), []);
  assert.ok(d.pipeline.ownedAddresses().includes(VIP6));
  assert.ok(d.pipeline.responder.configured().includes(VIP), "still guarded from the host");
});

test("PacketDataPlane.setVipOwned on the single loop: released before and after start, refused for bad input", async () => {
  const clock = new ManualClock(0);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 1 });
  const conns = new ConnTable({ services });
  const io = new MemoryPacketIo();
  const plane = createPacketDataPlane({
    interface: "mem0",
    services,
    conns,
    clock,
    log: silentLogger,
    io,
    mac: parseMac(DIRECTOR_MAC),
    addr4: "10.0.0.1",
    guard: false,
  });
  const key = { kind: "vip" as const, protocol: "tcp" as const, addr: "10.0.0.10", port: 80 };
  await plane.setVipOwned("10.0.0.10", false);
  await plane.start();
  const svc = services.addService(key, serviceOptions(4, { scheduler: "rr" }));
  services.addDest(key, destSpec("10.0.0.21", 80, { fwd: "droute" }));
  await plane.serviceAdded(svc);
  assert.ok(!io.drain().some((f) => isArp(f) && arpSpa(f) === "10.0.0.10"), "a released VIP is not announced");
  io.inject(whoHas("10.0.0.10"));
  assert.deepEqual(io.drain(), []);
  await plane.setVipOwned("10.0.0.10", true);
  assert.ok(
    io.drain().some((f) => isArp(f) && arpOp(f) === 1 && arpSpa(f) === "10.0.0.10"),
    "gratuitous ARP",
  );
  io.inject(whoHas("10.0.0.10"));
  assert.equal(io.drain().length, 1);
  await plane.setVipOwned("10.0.0.10", false);
  io.inject(whoHas("10.0.0.10"));
  assert.deepEqual(io.drain(), []);
  await assert.rejects(
    plane.setVipOwned("10.0.0.300", true),
    (e: unknown) => e instanceof CoreError && e.code === "EINVAL",
  );
  await plane.stop(0);
});
