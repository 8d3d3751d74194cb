// Every scheduler this build offers, in the order ipvsadm lists them, and the registry the daemon
// uses. Nothing registers itself on import: the list below is the whole registry.

import { dh } from "./dh.ts";
import { fo } from "./fo.ts";
import { lblc } from "./lblc.ts";
import { lblcr } from "./lblcr.ts";
import { lc } from "./lc.ts";
import { mh } from "./mh.ts";
import { nq } from "./nq.ts";
import { ovf } from "./ovf.ts";
import { SchedulerRegistry } from "./registry.ts";
import { rr } from "./rr.ts";
import { sed } from "./sed.ts";
import { sh } from "./sh.ts";
import { twos } from "./twos.ts";
import type { Scheduler } from "./types.ts";
import { wlc } from "./wlc.ts";
import { wrr } from "./wrr.ts";

export const ALL_SCHEDULERS: readonly Scheduler[] = [rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos];

export function createDefaultRegistry(): SchedulerRegistry {
  return new SchedulerRegistry(ALL_SCHEDULERS);
}
