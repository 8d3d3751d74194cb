// A packet director without tvsd, for lab tests and experiments: reads a JSON description of
// services from argv (or a file path), runs the packet plane on one interface, prints "ready"
// once it forwards, and on SIGTERM/SIGINT prints its counters as one JSON line and exits.
//
//   node --import tsx src/dataplane/packet/standalone.ts '{"interface":"eth0","services":[
//     {"protocol":"tcp","vip":"10.0.0.10","port":80,"scheduler":"rr",
//      "dests":[{"addr":"10.0.0.21","port":80,"fwd":"droute"}]}]}'

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { destSpec, type FwdMethod } from "../../core/dest.ts";
import type { LogFields, Logger } from "../../core/log.ts";
import { createDefaultRegistry } from "../../core/sched/all.ts";
import type { Protocol } from "../../core/sched/types.ts";
import { serviceOptions } from "../../core/service.ts";
import { ServiceTable } from "../../core/service-table.ts";
import { heapUsedFraction } from "../../platform/heap-use.ts";
import { createPacketDataPlane } from "./plane.ts";

export interface StandaloneConfig {
  interface: string;
  localAddrs?: string[];
  vnetHdr?: boolean;
  guard?: boolean;
  services: {
    protocol: Protocol;
    vip: string;
    port: number;
    scheduler?: string;
    dests: { addr: string; port: number; fwd: FwdMethod; weight?: number }[];
  }[];
}

async function main(arg: string | undefined): Promise<number> {
  if (!arg) {
    process.stderr.write("Usage: standalone.ts '<json config>' | <config.json>\n");
    return 2;
  }
  const cfg = JSON.parse(arg.trimStart().startsWith("{") ? arg : readFileSync(arg, "utf8")) as StandaloneConfig;
  const clock = { now: () => performance.now() };
  const services = new ServiceTable(createDefaultRegistry(), { clock, random: () => (Math.random() * 2 ** 32) >>> 0 });
  const conns = new ConnTable({ services });
  const log: Logger = {
    child: () => log,
    debug() {},
    info(m: string, f?: LogFields) {
      process.stderr.write(`${m} ${f ? JSON.stringify(f) : ""}\n`);
    },
    warn(m: string, f?: LogFields) {
      process.stderr.write(`warning: ${m} ${f ? JSON.stringify(f) : ""}\n`);
    },
    error(m: string, f?: LogFields) {
      process.stderr.write(`error: ${m} ${f ? JSON.stringify(f) : ""}\n`);
    },
  };
  const plane = createPacketDataPlane({
    interface: cfg.interface,
    services,
    conns,
    clock,
    log,
    localAddrs: cfg.localAddrs ?? [],
    ...(cfg.vnetHdr !== undefined ? { vnetHdr: cfg.vnetHdr } : {}),
    ...(cfg.guard !== undefined ? { guard: cfg.guard } : {}),
  });
  await plane.start();
  for (const s of cfg.services) {
    const key = { kind: "vip" as const, protocol: s.protocol, addr: s.vip, port: s.port };
    const opts = serviceOptions(s.vip.includes(":") ? 6 : 4, { scheduler: s.scheduler ?? "wlc" });
    plane.admitService(key, opts, "add-service");
    const svc = services.addService(key, opts);
    for (const d of s.dests) {
      const spec = plane.admitDest(key, destSpec(d.addr, d.port, { fwd: d.fwd, weight: d.weight ?? 1 }), "add-dest");
      services.addDest(key, spec);
    }
    await plane.serviceAdded(svc);
  }
  const timer = setInterval(() => {
    conns.heapUsed = heapUsedFraction();
    conns.expire(clock.now());
  }, 1000);
  process.stdout.write("ready\n");
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  clearInterval(timer);
  const conList = [...conns.entries()].map((c) => ({
    caddr: c.caddr,
    cport: c.cport,
    daddr: c.daddr,
    dport: c.dport,
    state: c.stateName,
    fwd: c.fwd,
  }));
  const stats = services.services().map((s) => ({ id: s.id, ...s.stats.snapshot() }));
  process.stdout.write(`${JSON.stringify({ counters: plane.counters(), conns: conList, stats })}\n`);
  await plane.stop(0);
  return 0;
}

if (process.argv[1]?.endsWith("standalone.ts")) {
  main(process.argv[2]).then(
    (code) => {
      process.exitCode = code;
    },
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
