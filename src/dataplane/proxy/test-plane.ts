// Test support for the socket plane's relay tests (relay.test.ts, native-relay.test.ts,
// native-relay-stress.test.ts): a ProxyPlane with one TCP VIP on loopback in front of real servers
// the test runs, and the small waits those tests share. Not part of tvsd.

import net from "node:net";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { DEFAULT_TUN } from "../../core/dest.ts";
import { type Logger, silentLogger } from "../../core/log.ts";
import { createDefaultRegistry } from "../../core/sched/all.ts";
import type { VirtualService } from "../../core/service.ts";
import { ServiceTable } from "../../core/service-table.ts";
import type { ProxyPlaneOptions } from "./options.ts";
import { ProxyPlane } from "./plane.ts";

/** A port free on `host` a moment ago. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** Wait until `ok()`, failing after `ms` with `what` (and `detail()`, when given). */
export async function until(what: string, ok: () => boolean, ms = 5000, detail?: () => string): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}${detail ? `: ${detail()}` : ""}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface TestPlane {
  plane: ProxyPlane;
  services: ServiceTable;
  conns: ConnTable;
  svc: VirtualService;
  vip: number;
  vaddr: string;
  /** The plane's descriptors in use with no connection open (the listener's). */
  idleFds: number;
  now(): number;
}

export interface TestPlaneSpec {
  /** The real servers: address (default the VIP's), port, forwarding (default masq), weight (default 1). */
  dests: { addr?: string; port: number; fwd?: "masq" | "fullnat"; weight?: number }[];
  /** Plane options, given the VIP's port (for rules that name the service). */
  options?: (vip: number) => Partial<ProxyPlaneOptions>;
  vaddr?: string;
  /** The VIP's port (default a free one). */
  vport?: number;
  scheduler?: string;
  expireNodestConn?: boolean;
  log?: Logger;
}

/** A started plane serving one TCP VIP (stop it with plane.stop). */
export async function startTestPlane(spec: TestPlaneSpec): Promise<TestPlane> {
  const clock = { now: () => performance.now() };
  const services = new ServiceTable(createDefaultRegistry(), { clock, random: () => 7 });
  const conns = new ConnTable({
    services,
    ...(spec.expireNodestConn ? { options: { expireNodestConn: true } } : {}),
  });
  const vaddr = spec.vaddr ?? "127.0.0.1";
  const vip = spec.vport ?? (await freePort(vaddr));
  const plane = new ProxyPlane({ services, conns, clock, log: spec.log ?? silentLogger }, spec.options?.(vip) ?? {});
  const key = { kind: "vip", protocol: "tcp", addr: vaddr, port: vip } as const;
  const svc = services.addService(key, {
    scheduler: spec.scheduler ?? "rr",
    schedFlags: [],
    persistent: false,
    timeout: 300,
    netmask: vaddr.includes(":") ? 128 : 32,
    ops: false,
    pe: "",
  });
  for (const d of spec.dests)
    services.addDest(key, {
      addr: d.addr ?? vaddr,
      port: d.port,
      fwd: d.fwd ?? "masq",
      weight: d.weight ?? 1,
      uThreshold: 0,
      lThreshold: 0,
      tun: DEFAULT_TUN,
    });
  await plane.start();
  await plane.serviceAdded(svc);
  return { plane, services, conns, svc, vip, vaddr, idleFds: plane.pressure().fdUsed, now: clock.now };
}
