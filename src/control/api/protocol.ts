// The control API between tvsadm (and other clients) and tvsd: HTTP + JSON over a Unix socket.
// This file is the whole contract: routes, request bodies, response shapes and the error body.
// Everything here is plain data (no classes) so it crosses the socket as JSON unchanged.
//
//   POST /v1/exec        body ExecRequest      → 200 { ok: true } | 4xx/5xx ApiErrorBody
//   GET  /v1/snapshot    ?conns=1&service=ID   → 200 Snapshot
//   GET  /v1/status                             → 200 StatusView (health checks, VRRP, data plane)
//   POST /v1/reload                             → 200 { ok: true } | ApiErrorBody
//   GET  /v1/sysctl, POST /v1/sysctl {name, value} → 200 SysctlView
//   GET  /v1/fwmark                             → 200 FwmarkView (the packet plane's firewall-mark rules)
//
// cli/ may import this file and client.ts (and nothing else from control/).

import type { DestSpec } from "../../core/dest.ts";
import type { CoreErrorCode, CoreOp } from "../../core/errors.ts";
import type { SyncDaemonSpec, Timeouts } from "../../core/request.ts";
import type { ServiceKey, ServiceOptions } from "../../core/service.ts";
import type { VrrpInstanceStatus } from "../../vrrp/status.ts";

export const API_VERSION = "v1";

// The requests are core's one vocabulary (core/request.ts), the same types ipvsadm's grammar and
// table images use; re-exported here as part of the contract.
export type { ExecRequest, SingleRequest, SyncDaemonSpec, Timeouts } from "../../core/request.ts";

export interface ApiErrorBody {
  error: {
    code: CoreErrorCode;
    op: CoreOp;
    message: string;
    /** For a batch: the index of the request that failed. */
    index?: number;
  };
}

export interface CountersView {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}

/** The estimator's read-out: connections/s, packets/s and bytes/s as ipvsadm --rate shows. */
export interface RatesView {
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

export interface DestView {
  spec: DestSpec;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  overloaded: boolean;
  stats: CountersView;
  rates: RatesView;
}

export interface ServiceView {
  key: ServiceKey;
  options: ServiceOptions;
  /** In the kernel's list order (most recently added first); listings sort separately. */
  dests: DestView[];
  stats: CountersView;
  rates: RatesView;
}

export interface ConnView {
  protocol: "tcp" | "udp" | "sctp";
  /** Client address/port; a persistence template has port 0. */
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  /** State name as ipvsadm -c prints it: ESTABLISHED, TIME_WAIT, UDP, NONE, ... */
  state: string;
  /** Milliseconds until expiry. */
  expiresInMs: number;
  template: boolean;
  /** Firewall mark of a template for an fwmark service (0 otherwise). */
  fwmark: number;
  /** A template keyed by a persistence engine: its name ("sip") and key (the SIP Call-ID). */
  peName?: string;
  peData?: string;
}

export interface Snapshot {
  /** ipvsadm's "IP Virtual Server version 1.2.1 (size=4096)". */
  version: string;
  connTableSize: number;
  services: ServiceView[];
  stats: CountersView;
  rates: RatesView;
  timeouts: Timeouts;
  daemons: SyncDaemonSpec[];
  /** Present when asked for with ?conns=1. */
  conns?: ConnView[];
}

export interface CheckView {
  service: string;
  dest: string;
  checker: string;
  state: "up" | "down" | "unknown";
  lastResult: string;
  reason: string;
  sinceChangeMs: number;
  /** Milliseconds since the last result (absent before the first). */
  lastCheckAgoMs?: number;
  /** Duration of the last attempt, milliseconds (absent before the first). */
  latencyMs?: number;
  /** Attempts with a result so far. */
  checks?: number;
}

/** GET /v1/sysctl and POST /v1/sysctl {name, value}: the IPVS sysctls by kernel name, and the defence state. */
export interface SysctlView {
  sysctls: Record<string, number>;
  defense: {
    /** drop_entry is sweeping now (mode 2 or 3). */
    dropEntry: boolean;
    /** The secure TCP table is in force (mode 2 or 3). */
    secureTcp: boolean;
    /** drop_packet refuses one new connection in this many (0: none). */
    dropRate: number;
    /** Free entries as the strategy counted them at its last update (0 under heap pressure). */
    available: number;
    packetsDropped: number;
    entriesDropped: number;
    /** The daemon's table now (a plane with packet workers keeps its entries in the workers). */
    entries: number;
    limit: number;
  };
}

/** One firewall-mark rule as GET /v1/fwmark shows it (first match wins, in this order). */
export interface FwmarkRuleView {
  /** 1-based position: the order the rules are tried in. */
  n: number;
  /** The rule in its canonical text ("tcp 10.0.0.1 80,443 mark 1"). */
  text: string;
  protocol: "tcp" | "udp" | "sctp" | "any";
  /** Destination prefix ("10.0.0.0/24"; a single address without /len). */
  dst: string;
  /** Destination ports ("80,443,8000-8100"; "*" for every port). */
  ports: string;
  /** Source prefix, when the rule has one. */
  src?: string;
  mark: number;
  /** Where it came from ("--fwmark-rule 1", "/etc/tvs/fwmark.rules:3"). */
  origin: string;
  /** The fwmark service its packets go to ("fwmark 1 ipv4"), or null: none (they fall through). */
  service: string | null;
}

/** GET /v1/fwmark: the classifier's rules, the fwmark services, and what does not meet. */
export interface FwmarkView {
  /** This data plane classifies frames with the rules (the packet plane). */
  supported: boolean;
  /** Why not, or how this plane serves fwmark services instead (the socket plane's --fwmark-addr). */
  note?: string;
  rules: FwmarkRuleView[];
  /** Every fwmark service with the number of rules that set its mark for its family. */
  services: { id: string; fwmark: number; family: 4 | 6; rules: number }[];
  /** fwmark services no rule feeds (their traffic never arrives), one sentence each. */
  warnings: string[];
}

export interface StatusView {
  dataplane: string;
  pid: number;
  uptimeMs: number;
  config?: string;
  checks: CheckView[];
  /** VRRP instances (present when the configuration runs some). */
  vrrp?: VrrpInstanceStatus[];
  /** BGP announcing for ECMP (tvsd --announce bird or a tvs_announce block). */
  announce?: {
    daemon: "bird";
    pid: number | undefined;
    socket: string;
    config: string;
    announced: string[];
    lastError: string | undefined;
    decisions: { vip: string; announce: boolean; reason: string }[];
  };
  notes: string[];
}
