// What tvsd reports about each VRRP instance (tvs status, GET /v1/status, metrics): plain data,
// JSON-safe. Counter names are keepalived's (its JSON dump and keepalived-exporter use them), so
// dashboards built for keepalived read tvs the same way.

import type { VrrpState } from "./fsm.ts";

/** keepalived's per-instance statistics (vrrp_stats), same names. */
export interface VrrpCounters {
  advert_rcvd: number;
  advert_sent: number;
  become_master: number;
  release_master: number;
  packet_len_err: number;
  advert_interval_err: number;
  ip_ttl_err: number;
  invalid_type_rcvd: number;
  addr_list_err: number;
  invalid_authtype: number;
  authtype_mismatch: number;
  auth_failure: number;
  pri_zero_rcvd: number;
  pri_zero_sent: number;
  /** RFC 6527 counters keepalived keeps with SNMP: bad checksum, version, VRID. */
  chk_err: number;
  vers_err: number;
  vrid_err: number;
}

export function zeroCounters(): VrrpCounters {
  return {
    advert_rcvd: 0,
    advert_sent: 0,
    become_master: 0,
    release_master: 0,
    packet_len_err: 0,
    advert_interval_err: 0,
    ip_ttl_err: 0,
    invalid_type_rcvd: 0,
    addr_list_err: 0,
    invalid_authtype: 0,
    authtype_mismatch: 0,
    auth_failure: 0,
    pri_zero_rcvd: 0,
    pri_zero_sent: 0,
    chk_err: 0,
    vers_err: 0,
    vrid_err: 0,
  };
}

export interface VrrpTransition {
  from: VrrpState;
  to: VrrpState;
  reason: string;
  /** Wall-clock time, ISO 8601. */
  at: string;
}

export interface VrrpInstanceStatus {
  name: string;
  interface: string;
  vrid: number;
  version: 2 | 3;
  family: 4 | 6;
  state: VrrpState;
  /** The configured `state` (MASTER or BACKUP). */
  wantState: "MASTER" | "BACKUP";
  configuredPriority: number;
  effectivePriority: number;
  /** Configured advert interval, ms; masterIntervalMs is the one the down timer uses (v3 adopts the master's). */
  advertIntervalMs: number;
  masterIntervalMs: number;
  /** The master's address as last heard (ourselves when master). */
  masterAddress: string | null;
  masterPriority: number | null;
  /** Our source address in adverts. */
  sourceAddress: string;
  /** Unicast peers (empty: multicast). */
  unicastPeers: string[];
  virtualIpaddresses: string[];
  /** Whether the VIPs are held (configured on the interface / answered by the packet plane). */
  vipsOwned: boolean;
  syncGroup: string | null;
  lastTransition: VrrpTransition | null;
  counters: VrrpCounters;
  /** Faults holding the instance down (interface down, failed track scripts). */
  faults: string[];
}

/** A state change, as the instance manager emits it ("state" event). */
export interface VrrpStateChange {
  instance: string;
  syncGroup: string | null;
  from: VrrpState;
  to: VrrpState;
  reason: string;
  at: string;
  vips: string[];
}
