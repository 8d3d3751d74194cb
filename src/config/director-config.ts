// The one plain-data result of loading a keepalived.conf or an ldirectord.cf: the desired IPVS
// state (services and destinations exactly as src/core builds them, with ipvsadm/keepalived
// defaults applied), the health settings per service for the health runner, the VRRP blocks kept
// for the VRRP work, and the warnings found while reading. JSON-able: no classes, no functions.

import type { DestSpec } from "../core/dest.ts";
import type { FwmarkRule } from "../core/fwmark/rule.ts";
import type { ServiceKey } from "../core/service.ts";
import type { CheckerSpec } from "../health/checker-spec.ts";
import type { DesiredState } from "./desired.ts";
import type { Diagnostic, SourcePos } from "./diagnostics.ts";
import type { AnnounceConfig } from "./keepalived/announce.ts";
import type { LvsSyncDaemonSpec } from "./keepalived/lvs-sync-daemon.ts";
import type { VrrpConfig } from "./vrrp-spec.ts";

export type ConfigFormat = "keepalived" | "ldirectord";

/** A script to run on a transition (notify_up, quorum_up, ldirectord's fallbackcommand ...). */
export interface NotifyScript {
  /** The command line as written (keepalived runs it without a shell unless it needs one). */
  command: string;
  user?: string;
  group?: string;
}

/** What the health runner needs to know about one real server of a service. */
export interface RealServerHealth {
  /** Matches the DestSpec with the same addr/port in the service's desired dests. */
  addr: string;
  port: number;
  /** Weight while up (the configured weight; the desired dest starts with it). */
  weight: number;
  /** Checkers; all must pass for the server to be up. None = always up (keepalived without checkers). */
  checkers: CheckerSpec[];
  /** Down → keep with weight 0 instead of removing (inhibit_on_failure; ldirectord quiescent=yes). */
  inhibitOnFailure: boolean;
  /** Start down until a check passes (alpha). */
  alpha: boolean;
  notifyUp?: NotifyScript;
  notifyDown?: NotifyScript;
  origin: SourcePos;
}

/** The server put in place when the quorum is lost (keepalived sorry_server, ldirectord fallback). */
export interface SorryServer {
  dest: DestSpec;
  /** sorry_server_inhibit: quiesce (weight 0) rather than remove when the quorum comes back. */
  inhibit: boolean;
}

/** Health settings of one desired service (same key as desired.services[i]). */
export interface ServiceHealth {
  /** serviceKeyId(key), e.g. "tcp 127.0.0.100:80". */
  serviceId: string;
  key: ServiceKey;
  /** delay_loop / checkinterval in ms (each checker also carries its own delayLoopMs). */
  delayLoopMs: number;
  /** Minimum total weight of live servers (default 1). */
  quorum: number;
  /** Flap damper around the quorum (default 0). */
  hysteresis: number;
  quorumUp?: NotifyScript;
  quorumDown?: NotifyScript;
  alpha: boolean;
  omega: boolean;
  inhibitOnFailure: boolean;
  sorryServer?: SorryServer;
  /** Default Host header for HTTP checks (virtualhost). */
  virtualhost?: string;
  realServers: RealServerHealth[];
  /** The virtual_server_group this service was expanded from, if any. */
  group?: string;
  origin: SourcePos;
}

export interface DirectorConfig {
  format: ConfigFormat;
  /** The main file. */
  file: string;
  /** Every file read (main first, then includes in reading order). */
  files: string[];
  desired: DesiredState;
  /** One entry per desired service, in the same order. */
  health: ServiceHealth[];
  /** keepalived VRRP blocks, parsed and validated but not active yet. Empty for ldirectord. */
  vrrp: VrrpConfig;
  /** keepalived's global_defs lvs_sync_daemon: connection sync driven by a VRRP instance's state. */
  lvsSyncDaemon?: LvsSyncDaemonSpec;
  /** tvs_announce: announce the VIPs over BGP through BIRD (ECMP scale-out, docs/ecmp.md). */
  announce?: AnnounceConfig;
  /** tvs_fwmark_rules: the packet plane's firewall-mark rules (after tvsd's own; docs/fwmark.md). */
  fwmarkRules?: FwmarkRule[];
  /** global_defs (keepalived) or global options (ldirectord): keyword → words after it. */
  globals: Record<string, string[]>;
  warnings: Diagnostic[];
}
