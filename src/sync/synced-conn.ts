// The synced-entry record as the sync daemon hands it to the connection table and gets it from
// there: plain data, the fields a kernel sync record carries. (Kept here until core's connection
// table exposes its own record type for the ingest path; then this file re-exports that.)

import type { FwdMethod } from "../core/dest.ts";
import type { Protocol } from "../core/sched/types.ts";

export interface SyncedConn {
  protocol: Protocol;
  /** Canonical text; a template's is the client network, its cport 0. */
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  fwmark: number;
  /** The sender's method (a backup binds its own destination's). */
  fwd: FwdMethod;
  template: boolean;
  inactive: boolean;
  noOutput: boolean;
  state: number;
  /** Seconds; 0: the state's timeout (180 s for a template). */
  timeoutS: number;
  laddr?: string;
  lport?: number;
}
