// Test fixtures for the connection-table tests: a service table with two tiny deterministic
// schedulers (round robin over eligible destinations in list order, and "first eligible"), and
// helpers to build services, destinations and flows. Not used by production code.

import { type DestSpec, destSpec } from "../dest.ts";
import { SchedulerRegistry } from "../sched/registry.ts";
import type { Flow, Protocol, SchedService, Scheduler } from "../sched/types.ts";
import { isEligible, noDestination } from "../sched/types.ts";
import { type ServiceKey, type ServiceOptions, serviceOptions, type VirtualService } from "../service.ts";
import { ServiceTable } from "../service-table.ts";
import { type ConnOptions, ConnTable } from "./conn-table.ts";

/** Round robin over eligible destinations; counts its calls so tests can see it was not asked. */
export const testRr: Scheduler & { calls: number } = {
  name: "rr",
  calls: 0,
  create(svc: SchedService) {
    let i = 0;
    return {
      schedule(_flow: Flow) {
        testRr.calls++;
        const n = svc.dests.length;
        for (let k = 0; k < n; k++) {
          const d = svc.dests[(i + k) % n];
          if (d !== undefined && isEligible(d)) {
            i = (i + k + 1) % n;
            return d;
          }
        }
        return noDestination(svc, "rr");
      },
    };
  },
};

/** Always the first eligible destination in list order. */
export const testFirst: Scheduler = {
  name: "first",
  create(svc: SchedService) {
    return {
      schedule() {
        for (const d of svc.dests) if (isEligible(d)) return d;
        return noDestination(svc, "first");
      },
    };
  },
};

export function newServices(): ServiceTable {
  return new ServiceTable(new SchedulerRegistry([testRr, testFirst]), {
    clock: { now: () => 0 },
    random: () => 0,
  });
}

export interface Kit {
  services: ServiceTable;
  table: ConnTable;
  svc: VirtualService;
  key: ServiceKey;
}

/** A service (default tcp 10.0.0.1:80, rr) with the given destinations, and a table over it. */
export function kit(
  dests: Array<Partial<DestSpec> & { addr: string; port?: number }>,
  opts: {
    protocol?: Protocol;
    vip?: string;
    port?: number;
    service?: Partial<ServiceOptions>;
    limit?: number;
    options?: Partial<ConnOptions>;
    key?: ServiceKey;
  } = {},
): Kit {
  const services = newServices();
  const vip = opts.vip ?? "10.0.0.1";
  const key: ServiceKey = opts.key ?? {
    kind: "vip",
    protocol: opts.protocol ?? "tcp",
    addr: vip,
    port: opts.port ?? 80,
  };
  const family = key.kind === "fwmark" ? key.family : vip.includes(":") ? 6 : 4;
  const svc = services.addService(key, serviceOptions(family, { scheduler: "rr", ...opts.service }));
  // Added in reverse so that the list order (newest first) matches the order given here.
  for (const d of [...dests].reverse()) services.addDest(key, destSpec(d.addr, d.port ?? 80, d));
  const table = new ConnTable({
    services,
    ...(opts.limit !== undefined ? { limit: opts.limit } : {}),
    ...(opts.options !== undefined ? { options: opts.options } : {}),
  });
  return { services, table, svc, key };
}

export function flow(saddr: string, sport: number, daddr = "10.0.0.1", dport = 80, protocol: Protocol = "tcp"): Flow {
  return { family: saddr.includes(":") ? 6 : 4, protocol, saddr, sport, daddr, dport };
}
