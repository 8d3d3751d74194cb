// The seam between tvsd and a data plane. Both planes (src/dataplane/proxy: sockets, no privilege;
// src/dataplane/packet: raw frames) implement this shape structurally: they may not import control/
// (docs/architecture.md's dependency rule), so they only see core types, and the daemon holds them as a
// DataPlane. The daemon applies every change to the core tables first and then tells the plane which
// services appeared, changed or went (by diffing the service table), so a plane never needs to know
// how a change was requested (tvsadm, a rules reload, a health check).

import type { Clock } from "../core/clock.ts";
import type { SyncedConn } from "../core/conn/conn-sync.ts";
import type { ConnTable } from "../core/conn/conn-table.ts";
import type { SyncSettings } from "../core/conn/sync-policy.ts";
import type { DestSpec } from "../core/dest.ts";
import type { FwmarkRule } from "../core/fwmark/rule.ts";
import type { Logger } from "../core/log.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../core/service.ts";
import type { ServiceTable } from "../core/service-table.ts";
import type { ConnLike } from "./executor.ts";

/** What the daemon hands a plane when it creates it. */
export interface DataPlaneDeps {
  services: ServiceTable;
  conns: ConnTable;
  clock: Clock;
  log: Logger;
}

export interface DataPlane {
  /** "proxy" or "packet"; shown by tvs status. */
  readonly name: string;
  /**
   * Vet a service before the table is changed; throw a CoreError (EOPNOTSUPP, EINVAL) to refuse
   * something this plane cannot carry. op is "add-service" or "edit-service".
   */
  admitService(key: ServiceKey, options: ServiceOptions, op: "add-service" | "edit-service"): void;
  /**
   * Vet (and possibly adapt) a destination before the table is changed: the returned spec is what
   * gets applied. Throw a CoreError to refuse it. op is "add-dest" or "edit-dest".
   */
  admitDest(key: ServiceKey, spec: DestSpec, op: "add-dest" | "edit-dest"): DestSpec;
  /** Begin forwarding (the tables may already hold services; they arrive through serviceAdded). */
  start(): Promise<void>;
  /** A service is now in the table: start receiving its traffic. Rejects when it cannot (VIP not bindable). */
  serviceAdded(svc: VirtualService): Promise<void>;
  /** A service's options or destinations changed (same object). */
  serviceChanged(svc: VirtualService): void;
  /** A service left the table: stop taking new flows for it; open ones finish. */
  serviceRemoved(svc: VirtualService): void;
  /** Stop accepting, let open flows finish for up to drainMs, then close the rest. */
  stop(drainMs: number): Promise<void>;
  /** Flows the plane is carrying right now (for draining and status). */
  openFlows(): number;
  /** Human-readable remarks for tvs status (mapped forwarding methods, limitations). */
  notes(): string[];
  /**
   * A plane whose flows live outside the daemon's tables (packet workers, each with its own
   * tables): write the current counters and connection counts into the daemon's tables, and
   * return every connection entry when `conns`. Absent or resolving undefined: the daemon's own
   * tables are the live ones.
   */
  collect?(conns: boolean): Promise<readonly ConnLike[] | undefined>;
  /** Counters were zeroed in the daemon's table (ipvsadm -Z); zero the plane's own copies too. */
  zeroed?(key?: ServiceKey): void;
  /** Connection entries the plane holds outside the daemon's table (as of the last collect), if it does. */
  connCount?(): number | undefined;
  /**
   * Own or release a VIP on the link (VRRP: MASTER owns, BACKUP/FAULT release). Owned: ARP/ND
   * for it are answered, its traffic is taken, and a gratuitous ARP / unsolicited NA goes out at
   * once. Released: never answered for, its traffic not taken. Every VIP starts owned. Resolves
   * when the plane applies it (every packet worker); rejects on an invalid address. The socket
   * plane (no link-layer presence) binds the services that waited for an owned VIP.
   */
  setVipOwned?(addr: string, owned: boolean): Promise<void>;
  /**
   * Connection sync, master side: run core's SyncPolicy after every forwarded client packet and
   * hand the entries it selects to `emit` (undefined: a master stopped). Absent: the plane
   * cannot feed a master (only bulk resync answers go out).
   */
  setSync?(sync: { settings: SyncSettings; emit: (recs: SyncedConn[]) => void } | undefined): void;
  /** Backup side, for a plane with its own tables: take these records; false when it has none. */
  ingestSynced?(recs: readonly SyncedConn[]): boolean;
  /** Every entry as a sync record, from a plane with its own tables (undefined: none). */
  dumpSynced?(): Promise<SyncedConn[] | undefined>;
  /** Sync records the plane's own tables ingested (as of the last collect). */
  syncedCounts?(): { created: number; updated: number; refused: number } | undefined;
  /** The plane keeps only persistence templates from a sync backup (the socket plane). */
  readonly syncTemplatesOnly?: boolean;
  /**
   * VIPs VRRP manages (they come and go with MASTER state): a service on one of them must not fail
   * to start while the VIP is elsewhere; the socket plane binds it when the VIP arrives.
   */
  expectVips?(addrs: readonly string[]): void;
  /**
   * Before a change that adds services touches the tables: acquire everything that can fail
   * (bind the new VIPs). Rejects with a BatchError whose `index` is the request that cannot be
   * served, after undoing its own work; resolves with a handle the daemon releases once the change
   * is applied or refused (whatever no service took is closed then).
   */
  prepare?(planned: readonly { key: ServiceKey; index: number }[]): Promise<{ release(): void }>;
  /**
   * How close the plane is to its resource limits and what it refused, as plain counters
   * (the socket plane: fdLimit, fdUsed, fdReserve, fdRefused, udpFlows, udpFlowLimit, udpSockets,
   * udpEvicted). For tvs status and metrics.
   */
  pressure?(): Readonly<Record<string, number>>;
  /** The daemon's sysctls changed (POST /v1/sysctl): a plane with its own tables takes them before this resolves. */
  sysctlsChanged?(): Promise<void>;
  /**
   * Classify frames with these firewall-mark rules from now on (first match wins; the mark picks
   * a fwmark service before the address does, as the kernel's ip_vs_service_find). Rejects with a
   * CoreError, rules unchanged, when the plane cannot carry them. Absent: the plane sees no frames
   * to classify (the socket plane).
   */
  setFwmarkRules?(rules: readonly FwmarkRule[]): Promise<void>;
}
