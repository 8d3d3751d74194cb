// The scheduler plug-in shape, modelled on the kernel's struct ip_vs_scheduler: a named module
// that creates per-service state; schedule() picks a destination for a new flow; the optional
// hooks run after the service's destination list changes, as the kernel calls add_dest,
// del_dest and upd_dest.

import type { Family } from "../addr.ts";
import type { Clock } from "../clock.ts";
import type { Dest } from "../dest.ts";

export type Protocol = "tcp" | "udp" | "sctp";

/** What a scheduler may look at in a new flow (the first packet's addresses and ports). */
export interface Flow {
  readonly family: Family;
  readonly protocol: Protocol;
  readonly saddr: string;
  readonly sport: number;
  readonly daddr: string;
  readonly dport: number;
}

/** The service as a scheduler sees it: the live destination list in the kernel's order. */
export interface SchedService {
  /** The service's address family; mh folds destination addresses by it, as the kernel uses svc->af. */
  readonly family: Family;
  readonly dests: readonly Dest[];
  /** Scheduler flags given with -b, by name (e.g. "sh-port", "mh-fallback"). */
  readonly schedFlags: ReadonlySet<string>;
  /** Called by noDestination(); counts and remembers the kernel's message. */
  reportNoDestination(message: string): void;
}

/** Injected environment: time for lblc/lblcr, randomness for twos. */
export interface SchedEnv {
  readonly clock: Clock;
  /** Uniform unsigned 32-bit integers (the kernel's get_random_u32). */
  readonly random: () => number;
  /** Scheduler sysctls (net.ipv4.vs.*); read on every use, defaults when absent. */
  readonly sysctl?: SchedSysctl;
}

/** The scheduler sysctls, in milliseconds (the kernel keeps them in jiffies). */
export interface SchedSysctl {
  /** net.ipv4.vs.lblc_expiration: idle time after which a full lblc sweep drops an entry (24 h). */
  readonly lblcExpiration?: number;
  /** net.ipv4.vs.lblcr_expiration: as lblc, and the age after which lblcr shrinks a server set (24 h). */
  readonly lblcrExpiration?: number;
}

export interface SchedulerInstance {
  schedule(flow: Flow): Dest | undefined;
  addDest?(dest: Dest): void;
  delDest?(dest: Dest): void;
  updDest?(dest: Dest): void;
  dispose?(): void;
}

export interface Scheduler {
  readonly name: string;
  /**
   * The names this scheduler gives the kernel's scheduler-flag bits, in bit order (bit 1, 2, 4):
   * what ipvsadm -b and keepalived.conf accept and listings print (flags.ts reads them).
   */
  readonly flags?: readonly string[];
  create(svc: SchedService, env: SchedEnv): SchedulerInstance;
}

/**
 * The one place a scheduler reports that it found nothing (the kernel's ip_vs_scheduler_err):
 * the message is "<NAME>: no destination available" as the kernel logs it, with the kernel's
 * extra detail where it gives one (wrr: "all destinations are overloaded").
 */
export function noDestination(svc: SchedService, schedName: string, detail?: string): undefined {
  const extra = detail === undefined ? "" : `: ${detail}`;
  svc.reportNoDestination(`${schedName.toUpperCase()}: no destination available${extra}`);
  return undefined;
}

/** Destinations a scheduler may pick: weight > 0 and not overloaded. */
export function isEligible(d: Dest): boolean {
  return d.weight > 0 && !d.overloaded;
}
