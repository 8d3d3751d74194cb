// Firewall marks at the packet plane's DataPlane face: fwmark services are admitted, a rule's
// single destination address is owned (gratuitous ARP, ARP answered) once a service takes its
// mark, a service no rule feeds is warned about (log and tvs status notes), the host guard mirrors
// the rules in order, and several workers steered by cbpf refuse a rule with a prefix destination.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ManualClock } from "../../core/clock.ts";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { destSpec } from "../../core/dest.ts";
import { CoreError } from "../../core/errors.ts";
import { guardRules } from "../../core/fwmark/coverage.ts";
import { parseFwmarkRule } from "../../core/fwmark/rule.ts";
import type { LogFields, Logger } from "../../core/log.ts";
import { SchedulerRegistry } from "../../core/sched/registry.ts";
import { rr } from "../../core/sched/rr.ts";
import { serviceOptions } from "../../core/service.ts";
import { ServiceTable } from "../../core/service-table.ts";
import { parseMac } from "./codec/eth.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC } from "./fixtures.ts";
import { arpFrame } from "./frame-builder.ts";
import { guardScript } from "./host-guard.ts";
import { MemoryPacketIo } from "./memory-io.ts";
import { LoopPacketPlane, PoolPacketPlane } from "./plane.ts";

class RecordingLog implements Logger {
  readonly warnings: string[] = [];
  debug(): void {}
  info(): void {}
  warn(msg: string, _f?: LogFields): void {
    this.warnings.push(msg);
  }
  error(): void {}
  child(): Logger {
    return this;
  }
}

const rule = (t: string) => parseFwmarkRule(t, "test");
const fwm1 = { kind: "fwmark" as const, fwmark: 1, family: 4 as const };

function setup() {
  const clock = new ManualClock(0);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 1 });
  const conns = new ConnTable({ services });
  const io = new MemoryPacketIo();
  const log = new RecordingLog();
  const plane = new LoopPacketPlane({
    interface: "mem0",
    services,
    conns,
    clock,
    log,
    io,
    mac: parseMac(DIRECTOR_MAC),
    addr4: "10.0.0.1",
    guard: false,
  });
  return { services, io, plane, log };
}

const arpWho = (ip: string) => arpFrame("ff:ff:ff:ff:ff:ff", 1, CLIENT_MAC, CLIENT, "00:00:00:00:00:00", ip);

test("a fwmark service is admitted; its rule's address is owned only once a service takes the mark", async () => {
  const { services, io, plane } = setup();
  assert.doesNotThrow(() => plane.admitService(fwm1, serviceOptions(4), "add-service"));
  await plane.start();
  await plane.setFwmarkRules(rules("tcp 10.0.0.77 80,443 mark 1", "tcp 10.0.0.0/24 22 mark 1"));
  io.drain();
  io.inject(arpWho("10.0.0.77"));
  plane.engine?.runOnce();
  assert.equal(io.drain().length, 0, "no service takes mark 1 yet: the address is not ours");

  const svc = services.addService(fwm1, serviceOptions(4, { scheduler: "rr", persistent: true }));
  services.addDest(fwm1, destSpec("10.0.0.21", 0, { fwd: "droute" }));
  await plane.serviceAdded(svc);
  const sent = io.drain();
  assert.ok(
    sent.some((f) => f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 1 && f[41] === 77),
    "gratuitous ARP for the rule's address",
  );
  io.inject(arpWho("10.0.0.77"));
  plane.engine?.runOnce();
  assert.equal(plane.pipeline?.verdicts[0], "reply", "ARP for the rule's address answered");
  io.inject(arpWho("10.0.0.78"));
  plane.engine?.runOnce();
  assert.notEqual(plane.pipeline?.verdicts[0], "reply", "a /24 rule's other addresses are not answered for");
  io.drain();

  await plane.setFwmarkRules([]);
  io.inject(arpWho("10.0.0.77"));
  plane.engine?.runOnce();
  assert.equal(io.drain().length, 0, "rule gone: the address is released");
});

test("a fwmark service no rule feeds is warned about once, and shown in the notes until a rule arrives", async () => {
  const { services, plane, log } = setup();
  await plane.start();
  const svc = services.addService(fwm1, serviceOptions(4, { scheduler: "rr" }));
  await plane.serviceAdded(svc);
  plane.serviceChanged(svc);
  const gap = (s: string) => /FWM 1: no firewall-mark rule sets mark 1 for IPv4/.test(s);
  assert.equal(log.warnings.filter(gap).length, 1, "warned once");
  assert.ok(plane.notes().some(gap));
  await plane.setFwmarkRules(rules("tcp 10.0.0.77 80 mark 1"));
  assert.ok(!plane.notes().some(gap), "a rule for mark 1 ends the warning");
  // A rule for the other family does not feed an IPv4 service.
  await plane.setFwmarkRules(rules("tcp fd00::77 80 mark 1"));
  assert.ok(plane.notes().some(gap));
  assert.equal(log.warnings.filter(gap).length, 2, "warned again after it went away and came back");
});

test("several cbpf-steered workers take IPv4 prefixes (steered as VIPs) but refuse an IPv6 prefix, keeping the rules", async () => {
  const clock = new ManualClock(0);
  const services = new ServiceTable(new SchedulerRegistry([rr]), { clock, random: () => 1 });
  const conns = new ConnTable({ services });
  const tables: unknown[] = [];
  const plane = new PoolPacketPlane({
    interface: "mem0",
    services,
    conns,
    clock,
    log: new RecordingLog(),
    workers: 2,
    addr4: "10.0.0.1",
    guard: false,
    workerPool: () => ({
      size: 2,
      onSynced: undefined,
      start: async () => undefined,
      table: async (...args: unknown[]) => {
        tables.push(args[4]);
      },
      steer: async () => undefined,
      refresh: () => undefined,
      own: async () => undefined,
      zero: () => undefined,
      collect: async () => [],
      stop: async () => undefined,
      sync: () => undefined,
      ingest: () => undefined,
      dump: async () => [],
    }),
  });
  await plane.start();
  await plane.setFwmarkRules(rules("tcp 10.0.0.77 80,443 mark 1"));
  assert.deepEqual(
    (tables.at(-1) as { mark: number }[]).map((r) => r.mark),
    [1],
    "the workers get the rules with the table",
  );
  await plane.setFwmarkRules(rules("tcp 10.0.0.0/24 80 mark 1"));
  assert.equal(tables.length, 3, "an IPv4 prefix is taken");
  await assert.rejects(
    plane.setFwmarkRules(rules("tcp 10.0.0.0/24 80 mark 1", "tcp fd00:9::/64 80 mark 2")),
    (e: unknown) =>
      e instanceof CoreError &&
      e.code === "EOPNOTSUPP" &&
      /"tcp fd00:9::\/64 80 mark 2" \(test\).*IPv6 rule's destination must be one address/.test(e.message),
  );
  assert.equal(tables.length, 3, "a refused rule set is not pushed");
});

test("the host guard mirrors the rules in order: the plane's traffic dropped, the host's accepted first", () => {
  const rs = rules(
    "tcp 10.0.0.5 80 mark 9",
    "tcp 10.0.0.0/24 80,443,8000-8100 from 192.168.0.0/16 mark 1",
    "any fd00::/64 53 mark 2",
    "udp 10.0.0.9 mark 9",
  );
  const script = guardScript({
    ifname: "eth0",
    owned: [],
    natDests: [],
    self: [],
    marked: guardRules(rs, new Set(["1/4", "2/6"])),
  });
  const lines = script.split("\n").map((l) => l.trim());
  const i = lines.indexOf("ip daddr 10.0.0.5 meta l4proto tcp th dport { 80 } accept");
  const j = lines.indexOf(
    "ip daddr 10.0.0.0/24 ip saddr 192.168.0.0/16 meta l4proto tcp th dport { 80, 443, 8000-8100 } drop",
  );
  const k = lines.indexOf("ip6 daddr fd00::/64 meta l4proto { tcp, udp, sctp } th dport { 53 } drop");
  assert.ok(i >= 0 && j > i && k > j, script);
  assert.ok(!script.includes("10.0.0.9"), "rules after the last taken one change nothing");
});

function rules(...ts: string[]) {
  return ts.map(rule);
}
