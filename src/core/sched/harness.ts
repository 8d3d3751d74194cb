// Test and benchmark support for schedulers: a ServiceTable with a manual clock and a seeded
// random source, and helpers to add destinations, make flows and hold connections open. Pure core
// code (no Node imports); used by the *.test.ts files beside it and by bench/sched.ts.

import { ipFamily } from "../addr.ts";
import { ManualClock } from "../clock.ts";
import type { Dest } from "../dest.ts";
import { destSpec } from "../dest.ts";
import type { ServiceKey } from "../service.ts";
import { serviceOptions, type VirtualService } from "../service.ts";
import { ServiceTable } from "../service-table.ts";
import { createDefaultRegistry } from "./all.ts";
import type { Flow, SchedEnv, SchedSysctl } from "./types.ts";

/** A small deterministic generator of uniform unsigned 32-bit integers (xorshift32). */
export function seededRandom(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

export function flow(saddr: string, sport = 40000, daddr = "10.0.0.100", dport = 80): Flow {
  return { family: ipFamily(saddr), protocol: "tcp", saddr, sport, daddr, dport };
}

export interface Harness {
  readonly table: ServiceTable;
  readonly svc: VirtualService;
  readonly key: ServiceKey;
  readonly clock: ManualClock;
  /** Add a destination (port 80 unless given) with a weight; returns it. */
  add(addr: string, weight?: number, over?: { port?: number; uThreshold?: number; lThreshold?: number }): Dest;
  /** Change a destination's weight (an ipvsadm -e). */
  setWeight(d: Dest, weight: number): void;
  del(d: Dest): void;
  /** Schedule one flow; returns the destination's address (or undefined). */
  pick(f?: Flow): string | undefined;
  /** n picks, addresses (or "-" for none). */
  picks(n: number, f?: Flow | ((i: number) => Flow)): string[];
}

export function harness(
  scheduler: string,
  opts: { flags?: string[]; seed?: number; sysctl?: SchedSysctl; vip?: string; clock?: number } = {},
): Harness {
  const clock = new ManualClock(opts.clock ?? 1_000_000);
  const env: SchedEnv = {
    clock,
    random: seededRandom(opts.seed ?? 1),
    ...(opts.sysctl === undefined ? {} : { sysctl: opts.sysctl }),
  };
  const table = new ServiceTable(createDefaultRegistry(), env);
  const vip = opts.vip ?? "10.0.0.100";
  const key: ServiceKey = { kind: "vip", protocol: "tcp", addr: vip, port: 80 };
  const svc = table.addService(key, serviceOptions(ipFamily(vip), { scheduler, schedFlags: opts.flags ?? [] }));
  const defaultFlow = flow(vip.includes(":") ? "2001:db8::1" : "192.168.1.1", 40000, vip);
  const h: Harness = {
    table,
    svc,
    key,
    clock,
    add(addr, weight = 1, over = {}) {
      return table.addDest(
        key,
        destSpec(addr, over.port ?? 80, {
          weight,
          uThreshold: over.uThreshold ?? 0,
          lThreshold: over.lThreshold ?? 0,
        }),
      );
    },
    setWeight(d, weight) {
      table.editDest(key, { ...d.spec(), weight });
    },
    del(d) {
      table.deleteDest(key, d.addr, d.port);
    },
    pick(f = defaultFlow) {
      return svc.sched.schedule(f)?.addr;
    },
    picks(n, f = defaultFlow) {
      const out: string[] = [];
      for (let i = 0; i < n; i++) out.push(svc.sched.schedule(typeof f === "function" ? f(i) : f)?.addr ?? "-");
      return out;
    },
  };
  return h;
}

/** Hold `n` connections open on a destination: bind as the kernel does (inactive) then establish. */
export function holdActive(d: Dest, n: number): void {
  for (let i = 0; i < n; i++) {
    d.bind("inactive");
    d.becameActive();
  }
}

/** `n` connections that stay inactive (UDP, or TCP not yet established / in TIME_WAIT). */
export function holdInactive(d: Dest, n: number): void {
  for (let i = 0; i < n; i++) d.bind("inactive");
}
