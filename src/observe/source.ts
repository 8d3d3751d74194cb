// What observe/ reads from the daemon, as plain data: the control API's snapshot and status (the
// same shapes tvsadm and `tvs status` read), plus the runtime figures that are not part of that
// contract (connection table fill, data-plane verdicts and drops, workers) and the VRRP and sync
// views. control/ builds an ObserveSource over the running daemon; tests build one from literals.
// Every read is one consistent collection (the packet plane with workers gathers through collect()),
// taken when a scraper or the dashboard asks, never cached between scrapes.

import type { Snapshot, StatusView } from "../control/api/protocol.ts";

/** One VRRP instance as keepalived's exporter shows it (state names as keepalived's). */
export interface VrrpInstanceView {
  /** vrrp_instance name (keepalived-exporter's iname). */
  name: string;
  /** Interface it runs on (intf). */
  interface: string;
  vrid: number;
  state: "INIT" | "BACKUP" | "MASTER" | "FAULT" | "STOP";
  priority: number;
  /** Effective priority after track weights, when it differs from the configured one. */
  effectivePriority?: number;
  /** Virtual addresses ("10.0.0.1" or "10.0.0.1/24"). */
  addresses: string[];
  advertisementsReceived: number;
  advertisementsSent: number;
  becameMaster: number;
  releasedMaster: number;
  /** Counters keepalived keeps for bad adverts, by keepalived-exporter's names without prefix/suffix. */
  errors?: Partial<Record<VrrpErrorCounter, number>>;
  /** Milliseconds since the last state change. */
  sinceChangeMs?: number;
}

export const VRRP_ERROR_COUNTERS = [
  "packet_length_errors",
  "ip_ttl_errors",
  "invalid_type_received",
  "advertisements_interval_errors",
  "address_list_errors",
  "authentication_invalid",
  "authentication_mismatch",
  "authentication_failure",
  "priority_zero_received",
  "priority_zero_sent",
] as const;
export type VrrpErrorCounter = (typeof VRRP_ERROR_COUNTERS)[number];

/** The connection sync daemon (master or backup) as it runs now. */
export interface SyncView {
  role: "master" | "backup";
  syncId: number;
  interface: string;
  /** "running", "stopped", or a word the sync engine chooses ("waiting for master"). */
  state: string;
  messagesSent: number;
  messagesReceived: number;
  connectionsSent: number;
  connectionsReceived: number;
  /** Messages refused, by reason ("length", "syncid", "version", ...). */
  errors: Record<string, number>;
  /** Milliseconds since the last message received (backup) or sent (master). */
  lastMessageAgoMs?: number;
}

/** Data-plane verdict counters (packet plane). */
export interface PlaneCountersView {
  rx: number;
  rxBytes: number;
  tx: number;
  txErrors: number;
  forwarded: number;
  replied: number;
  consumed: number;
  ignored: number;
  dropped: number;
  drops: Record<string, number>;
  /** Frames the kernel dropped at the plane's sockets (receive queue full) before tvs saw them. */
  socketDrops?: number;
  /** The SYN proxy's cookies (sysctl synproxy): SYN-ACKs sent, ACKs with a valid / an invalid one. */
  synCookies?: { sent: number; valid: number; invalid: number };
  /** IPv6 fragment reassembly (packet plane): events counted, and the bytes held now. */
  reassembly?: {
    fragmentsIn: number;
    reassembled: number;
    handoffs: number;
    /** Unfragmented IPv6 packets with extension headers handed to their flow's worker. */
    extHandoffs?: number;
    timeouts: number;
    evicted: number;
    fragmentsOut: number;
    memory: number;
  };
}

export interface RuntimeView {
  /** Connection entries held (daemon table, or the packet workers' summed tables). */
  connEntries: number;
  connLimit: number;
  /** New connections refused because the table was full. */
  connRefused: number;
  /** Flows the plane carries right now (sockets on the proxy plane). */
  openFlows: number;
  /** Data-plane workers (threads or processes); 1 without --workers. */
  workers: number;
  plane?: PlaneCountersView;
  /** How close the socket plane is to its descriptor and UDP flow limits (absent on the packet plane). */
  pressure?: PlanePressureView;
}

/** The socket plane's limits and what it refused at them (the plane's pressure()). */
export interface PlanePressureView {
  /** Descriptors the plane may hold (Infinity when the process limit is unknown). */
  fdLimit: number;
  fdUsed: number;
  /** Descriptors kept for the control plane. */
  fdReserve: number;
  /** Sockets refused because the budget was spent. */
  fdRefused: number;
  udpFlows: number;
  udpFlowLimit: number;
  udpSockets: number;
  /** UDP flows evicted because the flow table was full. */
  udpEvicted: number;
}

export interface ObservedState {
  snapshot: Snapshot;
  status: StatusView;
  runtime: RuntimeView;
  vrrp: VrrpInstanceView[];
  sync: SyncView[];
}

export interface ObserveSource {
  read(): Promise<ObservedState>;
}
