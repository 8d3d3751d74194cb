// A connection entry as listings read it (ipvsadm -L -c): the fields of a Conn that describe it,
// as plain readonly data. A Conn satisfies it; so do entries gathered from packet workers, whose
// tables live on other threads.

import type { Protocol } from "../sched/types.ts";

export interface ConnEntry {
  readonly protocol: Protocol;
  readonly caddr: string;
  readonly cport: number;
  readonly vaddr: string;
  readonly vport: number;
  readonly daddr: string;
  readonly dport: number;
  readonly template: boolean;
  readonly fwmark: number;
  /** Persistence engine of a template keyed by one ("sip"); "" or absent otherwise. */
  readonly peName?: string;
  /** The engine's key of that template (SIP: the Call-ID); "" or absent otherwise. */
  readonly peData?: string;
  readonly stateName: string;
  /** Deadline on the reading thread's clock. */
  readonly expiresAt: number;
}
