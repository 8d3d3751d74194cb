// Scheduler flags: the kernel's three per-service bits IP_VS_SVC_F_SCHED1..3 (ipvsadm -b,
// keepalived's virtual_server keywords). A scheduler that gives the bits a meaning names them on
// its own module, in bit order (sh.ts: sh-fallback = bit 1, sh-port = bit 2; mh.ts likewise); every
// other scheduler shows them as flag-1..3. This file is the one place that turns names into bits
// and back, so ipvsadm's grammar, the keepalived.conf reader and tvsadm's listing agree with the
// schedulers themselves.

import { ALL_SCHEDULERS } from "./all.ts";
import type { Scheduler } from "./types.ts";

/** The names of the three bits for a scheduler that gives them no meaning of its own. */
export const GENERIC_SCHED_FLAGS: readonly string[] = ["flag-1", "flag-2", "flag-3"];

function schedulerNamed(name: string): Scheduler | undefined {
  return ALL_SCHEDULERS.find((s) => s.name === name);
}

/** The flag names `scheduler` prints and accepts, in bit order (bit 1, 2, 4). */
export function schedFlagNamesOf(scheduler: string): readonly string[] {
  return schedulerNamed(scheduler)?.flags ?? GENERIC_SCHED_FLAGS;
}

/** Which bit a flag name stands for, and the scheduler that owns it (none for flag-1..3). */
export function schedFlagBit(name: string): { bit: number; owner: string | undefined } | undefined {
  const generic = GENERIC_SCHED_FLAGS.indexOf(name);
  if (generic !== -1) return { bit: 1 << generic, owner: undefined };
  for (const s of ALL_SCHEDULERS) {
    const i = s.flags?.indexOf(name) ?? -1;
    if (i !== -1) return { bit: 1 << i, owner: s.name };
  }
  return undefined;
}

/** Every flag word any scheduler (or the generic set) declares. */
export function allSchedFlagNames(): readonly string[] {
  return [...GENERIC_SCHED_FLAGS, ...ALL_SCHEDULERS.flatMap((s) => s.flags ?? [])];
}

/** Bits (1, 2, 4) as the names `scheduler` gives them, in bit order; bits it has no name for are dropped. */
export function schedFlagNames(scheduler: string, bits: number): string[] {
  return schedFlagNamesOf(scheduler).filter((_, i) => (bits & (1 << i)) !== 0);
}

/** Flag names (any scheduler's spelling) back to the kernel's bits; unknown names count nothing. */
export function schedFlagBits(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) bits |= schedFlagBit(n)?.bit ?? 0;
  return bits;
}
