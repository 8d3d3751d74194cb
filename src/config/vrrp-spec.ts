// VRRP configuration as plain data, taken from keepalived.conf's vrrp_instance, vrrp_sync_group,
// vrrp_script and static_ipaddress blocks. Parsed and validated now and kept in DirectorConfig for
// the VRRP engine; keepalived's defaults are applied (priority 100, advert_int 1 s, preempt on).

import type { SourcePos } from "./diagnostics.ts";

/** One line of a virtual_ipaddress / static_ipaddress block: `ADDR[/LEN] [dev IF] [label L] ...`. */
export interface VipSpec {
  addr: string;
  /** Prefix length; 32 (IPv4) or 128 (IPv6) when not given. */
  prefix: number;
  dev?: string;
  label?: string;
  /** The other words of the line (brd, scope, ...), kept as written. */
  options: string[];
  origin: SourcePos;
}

export interface TrackRef {
  name: string;
  /** Priority change while the tracked object fails (0 = fault the instance). */
  weight?: number;
}

export interface VrrpNotify {
  master?: string;
  backup?: string;
  fault?: string;
  stop?: string;
  /** `notify`: called on every transition with the new state. */
  any?: string;
}

export interface VrrpInstanceSpec {
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
  virtualIpaddresses: VipSpec[];
  virtualIpaddressesExcluded: VipSpec[];
  unicastSrcIp?: string;
  unicastPeers: string[];
  mcastSrcIp?: string;
  trackScripts: TrackRef[];
  trackInterfaces: TrackRef[];
  garpMasterDelayMs?: number;
  notify: VrrpNotify;
  /** Other known keywords, as written: keyword → words. */
  extra: Record<string, string[]>;
  origin: SourcePos;
}

export interface VrrpSyncGroupSpec {
  name: string;
  instances: string[];
  notify: VrrpNotify;
  extra: Record<string, string[]>;
  origin: SourcePos;
}

export interface VrrpScriptSpec {
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
  origin: SourcePos;
}

export interface VrrpConfig {
  instances: VrrpInstanceSpec[];
  syncGroups: VrrpSyncGroupSpec[];
  scripts: VrrpScriptSpec[];
  staticIpaddresses: VipSpec[];
}

export function emptyVrrpConfig(): VrrpConfig {
  return { instances: [], syncGroups: [], scripts: [], staticIpaddresses: [] };
}
