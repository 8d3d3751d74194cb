// A virtual service (the kernel's struct ip_vs_service): its key (protocol + VIP + port, or a
// firewall mark + family), scheduling options, its destinations in the kernel's list order (new
// ones at the head) and its counters. Mutated only through ServiceTable.

import { type Family, ipFamily } from "./addr.ts";
import type { Dest } from "./dest.ts";
import type { Protocol, SchedService, SchedulerInstance } from "./sched/types.ts";
import { serviceKeyId } from "./service-key.ts";
import { Counters } from "./stats/counters.ts";

export type ServiceKey =
  | { readonly kind: "vip"; readonly protocol: Protocol; readonly addr: string; readonly port: number }
  | { readonly kind: "fwmark"; readonly fwmark: number; readonly family: Family };

export interface ServiceOptions {
  /** Scheduler name (ipvsadm -s); default wlc. */
  scheduler: string;
  /** Scheduler flags by name (ipvsadm -b), e.g. ["sh-fallback", "sh-port"]. */
  schedFlags: readonly string[];
  /** Persistent service (ipvsadm -p). */
  persistent: boolean;
  /** Persistence timeout in seconds (meaningful when persistent). */
  timeout: number;
  /** Persistence granularity as a prefix length (IPv4 netmask 255.255.255.0 → 24; IPv6 0..128). */
  netmask: number;
  /** One-packet scheduling (ipvsadm -o), UDP only in effect. */
  ops: boolean;
  /** Persistence engine name (ipvsadm --pe), "" for none. */
  pe: string;
}

export const DEFAULT_PERSISTENCE_TIMEOUT = 300;
/** The longest persistence timeout ipvsadm and keepalived accept (their MAX_TIMEOUT): 31 days, in seconds. */
export const MAX_PERSISTENCE_TIMEOUT = 86400 * 31;
/** The largest firewall mark (a 32-bit value; 0 means none). */
export const MAX_FWMARK = 2 ** 32 - 1;

/** Options with ipvsadm's defaults for a service of the given family. */
export function serviceOptions(family: Family, over: Partial<ServiceOptions> = {}): ServiceOptions {
  return {
    scheduler: "wlc",
    schedFlags: [],
    persistent: false,
    timeout: DEFAULT_PERSISTENCE_TIMEOUT,
    netmask: family === 4 ? 32 : 128,
    ops: false,
    pe: "",
    ...over,
  };
}

export function keyFamily(key: ServiceKey): Family {
  return key.kind === "fwmark" ? key.family : ipFamily(key.addr);
}

export { serviceKeyId };

export class VirtualService implements SchedService {
  readonly key: ServiceKey;
  readonly id: string;
  readonly family: Family;
  options: ServiceOptions;
  schedFlags: ReadonlySet<string>;
  /** Destinations in the kernel's order: the most recently added first. */
  readonly dests: Dest[] = [];
  sched: SchedulerInstance;
  readonly stats = new Counters();
  noDestinationCount = 0;
  lastNoDestination = "";
  /** Opaque per-service slot for the data plane (listening sockets, ...). */
  plane: unknown = undefined;

  constructor(key: ServiceKey, options: ServiceOptions, sched: (svc: VirtualService) => SchedulerInstance) {
    this.key = key;
    this.id = serviceKeyId(key);
    this.family = keyFamily(key);
    this.options = { ...options, schedFlags: [...options.schedFlags] };
    this.schedFlags = new Set(options.schedFlags);
    this.sched = sched(this);
  }

  get protocol(): Protocol | undefined {
    return this.key.kind === "vip" ? this.key.protocol : undefined;
  }

  reportNoDestination(message: string): void {
    this.noDestinationCount++;
    this.lastNoDestination = message;
  }

  findDest(addr: string, port: number): Dest | undefined {
    for (const d of this.dests) if (d.port === port && d.addr === addr) return d;
    return undefined;
  }
}
