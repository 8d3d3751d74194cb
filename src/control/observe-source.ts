// Adapts the running daemon to observe/'s ObserveSource: one read = the control API's snapshot and
// status (the packet plane with workers gathers its counters through collect() for each), plus the
// runtime figures outside that contract (connection table fill and refusals, data-plane verdicts and
// drops by reason, workers). VRRP and sync views come from their engines when tvsd runs them:
// vrrpInstanceView / syncMasterView / syncBackupView turn their status types into observe's views,
// and vrrpStateEvent a VRRP state change into an event.

import type { PlaneCounterSnapshot } from "../dataplane/packet/counters.ts";
import type { TvsEventInput } from "../observe/events.ts";
import type {
  ObservedState,
  ObserveSource,
  PlanePressureView,
  RuntimeView,
  SyncView,
  VrrpInstanceView,
} from "../observe/source.ts";
import type { BackupStats } from "../sync/backup.ts";
import type { MasterStats } from "../sync/master.ts";
import type { VrrpInstanceStatus, VrrpStateChange } from "../vrrp/status.ts";
import type { Snapshot, StatusView } from "./api/protocol.ts";
import type { Daemon } from "./daemon.ts";
import type { SnapshotRequest } from "./server.ts";

/** What a plane may offer beyond the DataPlane seam (the packet plane does). */
interface PlaneExtras {
  readonly workers?: number;
  counters?(): PlaneCounterSnapshot | undefined;
  connRefused?(): number | undefined;
}

export interface ObserveSourceParts {
  snapshot(q: SnapshotRequest): Snapshot | Promise<Snapshot>;
  status(): StatusView | Promise<StatusView>;
  runtime?(snapshot: Snapshot): RuntimeView;
  vrrp?(): VrrpInstanceView[];
  sync?(): SyncView[];
}

export function observeSource(parts: ObserveSourceParts): ObserveSource {
  return {
    async read(): Promise<ObservedState> {
      const snapshot = await parts.snapshot({ conns: false, service: undefined });
      const status = await parts.status();
      return {
        snapshot,
        status,
        runtime: parts.runtime?.(snapshot) ?? {
          connEntries: 0,
          connLimit: 0,
          connRefused: 0,
          openFlows: 0,
          workers: 1,
        },
        vrrp: parts.vrrp?.() ?? [],
        sync: parts.sync?.() ?? [],
      };
    },
  };
}

/** The runtime figures of a daemon in this process (read right after a snapshot, so after collect()). */
export function daemonRuntime(d: Daemon): RuntimeView {
  const plane = d.plane as typeof d.plane & PlaneExtras;
  const c = plane.counters?.();
  const view: RuntimeView = {
    connEntries: plane.connCount?.() ?? d.conns.size,
    connLimit: d.conns.limit,
    connRefused: plane.connRefused?.() ?? d.conns.dropped,
    openFlows: plane.openFlows(),
    workers: typeof plane.workers === "number" ? plane.workers : 1,
  };
  const pressure = plane.pressure?.();
  if (pressure) view.pressure = planePressureView(pressure);
  if (c)
    view.plane = {
      rx: c.rx,
      rxBytes: c.rxBytes,
      tx: c.tx,
      txErrors: c.txErrors,
      forwarded: c.forwarded,
      replied: c.replied,
      consumed: c.consumed,
      ignored: c.ignored,
      dropped: c.dropped,
      drops: { ...c.drops },
      socketDrops: c.rxSocketDrops,
      synCookies: { sent: c.synCookiesSent, valid: c.synCookiesValid, invalid: c.synCookiesBad },
      reassembly: {
        fragmentsIn: c.fragmentsIn,
        reassembled: c.reassembled,
        handoffs: c.reassemblyHandoffs,
        extHandoffs: c.extHandoffs,
        timeouts: c.reassemblyTimeouts,
        evicted: c.reassemblyEvicted,
        fragmentsOut: c.fragmentsOut,
        memory: c.reassemblyMemory,
      },
    };
  return view;
}

/** The plane's pressure figures, read by name (the plane's type is its own). */
function planePressureView(p: Readonly<Record<string, number>>): PlanePressureView {
  const n = (k: string) => p[k] ?? 0;
  return {
    fdLimit: n("fdLimit"),
    fdUsed: n("fdUsed"),
    fdReserve: n("fdReserve"),
    fdRefused: n("fdRefused"),
    udpFlows: n("udpFlows"),
    udpFlowLimit: n("udpFlowLimit"),
    udpSockets: n("udpSockets"),
    udpEvicted: n("udpEvicted"),
  };
}

export function daemonObserveSource(d: Daemon): ObserveSource {
  return observeSource({
    snapshot: (q) => d.snapshot(q),
    status: () => d.status(),
    runtime: () => daemonRuntime(d),
    vrrp: () => (d.vrrp?.status() ?? []).map(vrrpInstanceView),
    sync: () =>
      d.sync
        .observed()
        .map((x) => (x.role === "master" ? syncMasterView(x, x.iface, true) : syncBackupView(x, x.iface, true))),
  });
}

/** A VRRP instance's status (vrrp/status.ts) as the metrics and the dashboard show it. */
export function vrrpInstanceView(s: VrrpInstanceStatus): VrrpInstanceView {
  const c = s.counters;
  const view: VrrpInstanceView = {
    name: s.name,
    interface: s.interface,
    vrid: s.vrid,
    state: s.state,
    priority: s.configuredPriority,
    effectivePriority: s.effectivePriority,
    addresses: [...s.virtualIpaddresses],
    advertisementsReceived: c.advert_rcvd,
    advertisementsSent: c.advert_sent,
    becameMaster: c.become_master,
    releasedMaster: c.release_master,
    errors: {
      packet_length_errors: c.packet_len_err,
      ip_ttl_errors: c.ip_ttl_err,
      invalid_type_received: c.invalid_type_rcvd,
      advertisements_interval_errors: c.advert_interval_err,
      address_list_errors: c.addr_list_err,
      authentication_invalid: c.invalid_authtype,
      authentication_mismatch: c.authtype_mismatch,
      authentication_failure: c.auth_failure,
      priority_zero_received: c.pri_zero_rcvd,
      priority_zero_sent: c.pri_zero_sent,
    },
  };
  if (s.lastTransition) view.sinceChangeMs = Math.max(0, Date.now() - Date.parse(s.lastTransition.at));
  return view;
}

/** A VRRP state change (the instance manager's "state" event) for the event bus. */
export function vrrpStateEvent(c: VrrpStateChange): TvsEventInput {
  return {
    type: "vrrp-state",
    message: `VRRP ${c.instance}${c.syncGroup ? ` (group ${c.syncGroup})` : ""}: ${c.from} → ${c.to}: ${c.reason}`,
    detail: { instance: c.instance, from: c.from, to: c.to, reason: c.reason, vips: c.vips.join(" ") },
  };
}

/** The sync master's counters (sync/master.ts) as a SyncView. */
export function syncMasterView(m: { syncId: number; stats: MasterStats }, iface: string, running: boolean): SyncView {
  return {
    role: "master",
    syncId: m.syncId,
    interface: iface,
    state: running ? "running" : "stopped",
    messagesSent: m.stats.messages,
    messagesReceived: 0,
    connectionsSent: m.stats.records,
    connectionsReceived: 0,
    errors: m.stats.unencodable ? { unencodable: m.stats.unencodable } : {},
  };
}

/** The sync backup's counters (sync/backup.ts) as a SyncView: drops and skips by reason are its errors. */
export function syncBackupView(b: { syncId: number; stats: BackupStats }, iface: string, running: boolean): SyncView {
  const errors: Record<string, number> = {};
  for (const [k, v] of Object.entries(b.stats.dropped)) if (v) errors[k] = v;
  for (const [k, v] of Object.entries(b.stats.skipped)) if (v) errors[k] = (errors[k] ?? 0) + v;
  if (b.stats.refused) errors.refused = b.stats.refused;
  return {
    role: "backup",
    syncId: b.syncId,
    interface: iface,
    state: running ? "running" : "stopped",
    messagesSent: 0,
    messagesReceived: b.stats.messages,
    connectionsSent: 0,
    connectionsReceived: b.stats.records,
    errors,
  };
}
