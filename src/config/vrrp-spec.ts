// VRRP configuration as plain data, taken from keepalived.conf's vrrp_instance, vrrp_sync_group,
// vrrp_script and static_ipaddress blocks. The shapes are the VRRP engine's own (vrrp/spec.ts), named
// here as the parser knows them; keepalived's defaults are applied (priority 100, advert_int 1 s,
// preempt on). What only the parser keeps (a sync group's other keywords, static_ipaddress) is added.

import type {
  InstanceSpec,
  NotifyScripts,
  ScriptSpec,
  SyncGroupSpec,
  TrackedObject,
  VirtualAddress,
} from "../vrrp/spec.ts";

export type VipSpec = VirtualAddress;
export type TrackRef = TrackedObject;
export type VrrpNotify = NotifyScripts;
export type VrrpInstanceSpec = InstanceSpec;
export type VrrpScriptSpec = ScriptSpec;

export interface VrrpSyncGroupSpec extends SyncGroupSpec {
  /** Other known keywords, as written: keyword → words. */
  extra: Record<string, string[]>;
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
