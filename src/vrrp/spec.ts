// The configuration the VRRP engine runs, as plain data. keepalived.conf's vrrp_instance /
// vrrp_sync_group / vrrp_script blocks are read into these shapes (config/vrrp-spec.ts names them
// for the parser, as config takes the checkers' specs from health): the engine states what it needs,
// and the parser fills it with keepalived's defaults applied.

/** Where a block or line came from, for error messages (file:line:column). */
export interface SourceRef {
  file: string;
  line: number;
  column: number;
}

/** One virtual_ipaddress / static_ipaddress line: `ADDR[/LEN] [dev IF] [label L] [brd B] [scope S]`. */
export interface VirtualAddress {
  addr: string;
  /** Prefix length; 32 (IPv4) or 128 (IPv6) when not given. */
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
  /** 1..255, default 100. */
  priority: number;
  /** advert_int in ms (default 1000). */
  advertIntMs: number;
  version?: 2 | 3;
  /** preempt is keepalived's default; nopreempt turns it off. */
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
  /** interval in ms, default 1000. */
  intervalMs: number;
  /** timeout in ms; absent = keepalived's default (the interval). */
  timeoutMs?: number;
  /** Priority change (-253..253), 0 = fault on failure. */
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
