// The configuration the VRRP engine runs, as plain data. These shapes are what keepalived.conf's
// vrrp_instance / vrrp_sync_group / vrrp_script blocks read into (config/vrrp-spec.ts produces
// objects of exactly this shape; vrrp does not import config, so the engine states here what it
// needs and TypeScript checks the two agree where control hands one to the other).

/** Where a block or line came from, for error messages (file:line:column). */
export interface SourceRef {
  file: string;
  line: number;
  column: number;
}

/** One virtual_ipaddress line: `ADDR[/LEN] [dev IF] [label L] [brd B] [scope S]`. */
export interface VirtualAddress {
  addr: string;
  prefix: number;
  dev?: string;
  label?: string;
  /** The other words of the line (brd, scope, ...). */
  options: string[];
  origin: SourceRef;
}

export interface NotifyScripts {
  master?: string;
  backup?: string;
  fault?: string;
  stop?: string;
  /** `notify`: every transition, with INSTANCE|GROUP name STATE priority. */
  any?: string;
}

export interface TrackedObject {
  name: string;
  /** Priority change while failing (negative) or while up (positive); 0 or absent: FAULT when failing. */
  weight?: number;
}

export interface InstanceSpec {
  name: string;
  state: "MASTER" | "BACKUP";
  interface?: string;
  virtualRouterId: number;
  priority: number;
  advertIntMs: number;
  version?: 2 | 3;
  preempt: boolean;
  preemptDelayMs: number;
  authentication?: { type: "PASS" | "AH"; pass: string };
  virtualIpaddresses: VirtualAddress[];
  virtualIpaddressesExcluded: VirtualAddress[];
  unicastSrcIp?: string;
  unicastPeers: string[];
  mcastSrcIp?: string;
  trackScripts: TrackedObject[];
  trackInterfaces: TrackedObject[];
  garpMasterDelayMs?: number;
  notify: NotifyScripts;
  /** Other keepalived keywords as written (garp_master_repeat, v3_checksum_as_v2, ...). */
  extra: Record<string, string[]>;
  origin: SourceRef;
}

export interface SyncGroupSpec {
  name: string;
  instances: string[];
  notify: NotifyScripts;
  origin: SourceRef;
}

export interface ScriptSpec {
  name: string;
  script: string;
  intervalMs: number;
  timeoutMs?: number;
  weight: number;
  rise: number;
  fall: number;
  user?: string;
  origin: SourceRef;
}

export interface VrrpSpec {
  instances: InstanceSpec[];
  syncGroups: SyncGroupSpec[];
  scripts: ScriptSpec[];
}
