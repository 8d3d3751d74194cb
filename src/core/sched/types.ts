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
  /** Scheduler flags this scheduler understands (names as given to ipvsadm -b). */
  readonly flags?: readonly string[];
  create(svc: SchedService, env: SchedEnv): SchedulerInstance;
}

/**
 * The one place a scheduler reports that it found nothing (the kernel's ip_vs_scheduler_err):
 * the message is "<NAME>: no destination available" as the kernel logs it.
 */
export function noDestination(svc: SchedService, schedName: string): undefined {
  svc.reportNoDestination(`${schedName.toUpperCase()}: no destination available`);
  return undefined;
}

/** Destinations a scheduler may pick: weight > 0 and not overloaded. */
export function isEligible(d: Dest): boolean {
  return d.weight > 0 && !d.overloaded;
}
