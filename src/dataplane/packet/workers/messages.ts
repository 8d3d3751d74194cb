// What the packet plane's main side (pool.ts) and its worker threads (worker-thread.ts) say to
// each other. Everything crosses by structured clone: plain data only, no class instances.
//
// Main → worker: the whole service table as an image after every change (the worker diffs it
// against its replica) with the firewall-mark rules, the steering program (worker 0 installs it for the fanout group), probes
// and announcements, neighbours another worker learned, reassembled IPv6 datagrams another worker
// handed over, zeroing, collect requests, stop.
// Worker → main: ready/failed at start, acks, neighbours it learned from the wire, reports
// (counters, connection counts, optionally every connection entry), log lines.

import type { ConnEntry } from "../../../core/conn/conn-entry.ts";
import type { SyncedConn } from "../../../core/conn/conn-sync.ts";
import type { ConnOptions, Timeouts } from "../../../core/conn/conn-table.ts";
import type { SyncSettings } from "../../../core/conn/sync-policy.ts";
import type { Sysctls } from "../../../core/conn/sysctl.ts";
import type { FwmarkRule } from "../../../core/fwmark/rule.ts";
import type { LogFields, LogLevel } from "../../../core/log.ts";
import type { ServiceKey } from "../../../core/service.ts";
import type { CounterSnapshot } from "../../../core/stats/counters.ts";
import type { ServiceImage } from "../../../core/table-image.ts";
import type { PlaneCounterSnapshot } from "../counters.ts";
import type { ReassembledFrame } from "../ipv6-defrag.ts";
import type { TableSerials } from "./incarnations.ts";

/** Everything a worker needs to open its socket and build its tables (workerData.setup). */
export interface WorkerSetup {
  index: number;
  workers: number;
  ifname: string;
  vnetHdr: boolean;
  fanoutGroup: number;
  fanoutMode: "cbpf" | "hash";
  addr4?: string;
  addr6?: string;
  vips: string[];
  localAddrs: string[];
  /** Addresses released (VRRP backup) when the worker starts. */
  released: string[];
  tunClampMss: boolean;
  batch: number;
  connLimit: number;
  connOptions: Partial<ConnOptions>;
  /** The daemon's sysctls, amemthresh already divided among the workers (sysctlsForWorkers). */
  sysctls: Partial<Sysctls>;
}

export type ToWorker =
  | {
      t: "table";
      seq: number;
      image: ServiceImage[];
      serials: TableSerials;
      timeouts: Timeouts;
      sysctls: Partial<Sysctls>;
      /** The firewall-mark rules (plain data; each worker compiles its own classifier). */
      fwmarkRules: FwmarkRule[];
    }
  | { t: "steer"; seq: number; program: Uint8Array }
  | { t: "refresh"; announce: boolean; resolve: string[] }
  | { t: "own"; seq: number; addr: string; owned: boolean; announce: boolean }
  | { t: "neighbour"; addr: string; mac: Uint8Array }
  | { t: "zero"; key?: ServiceKey }
  | { t: "collect"; seq: number; conns: boolean }
  /** A sync master started (its settings) or stopped (null): decide per client packet what to sync. */
  | { t: "sync"; settings: SyncSettings | null }
  /** Records a sync backup received for flows this worker owns. */
  | { t: "ingest"; recs: SyncedConn[] }
  /** Every entry as a sync record (bulk resync). */
  | { t: "dump"; seq: number }
  /** A reassembled IPv6 datagram of this worker's flow, from the worker that got its fragments. */
  | { t: "datagram"; datagram: ReassembledFrame }
  | { t: "stop" };

/** One destination's share in a worker. */
export interface DestReport {
  addr: string;
  port: number;
  stats: CounterSnapshot;
  active: number;
  inactive: number;
  persistent: number;
}

/** One connection entry as `ipvsadm -L -c` needs it; time left instead of a (per-thread) deadline. */
export type ConnRecord = Omit<ConnEntry, "expiresAt"> & { expiresInMs: number };

export interface WorkerReport {
  index: number;
  global: CounterSnapshot;
  services: { id: string; stats: CounterSnapshot; dests: DestReport[] }[];
  connections: number;
  dropped: number;
  plane: PlaneCounterSnapshot;
  conns?: ConnRecord[];
  /** Sync records ingested: created, updated, refused (connection limit). */
  synced?: { created: number; updated: number; refused: number };
}

export type FromWorker =
  | { t: "ready"; mac: Uint8Array; mtu: number; vnetHdr: boolean }
  | { t: "failed"; message: string }
  | { t: "ack"; seq: number; error?: string }
  | { t: "learned"; addr: string; mac: Uint8Array }
  /** An IPv6 datagram this worker reassembled for a flow worker `to` owns (ipv6-defrag.ts). */
  | { t: "handoff"; to: number; datagram: ReassembledFrame }
  | { t: "report"; seq: number; report: WorkerReport }
  /** Entries the sync policy selected since the last batch (sent at most every SYNC_BATCH_MS). */
  | { t: "synced"; recs: SyncedConn[] }
  | { t: "dumped"; seq: number; recs: SyncedConn[] }
  | { t: "log"; level: LogLevel; msg: string; fields?: LogFields };
