// Adapts the running daemon to observe/'s ObserveSource: one read = the control API's snapshot and
// status (the packet plane with workers gathers its counters through collect() for each), plus the
// runtime figures outside that contract (connection table fill and refusals, data-plane verdicts and
// drops by reason, workers). VRRP and sync views come from their engines when tvsd runs them.

import type { PlaneCounterSnapshot } from "../dataplane/packet/counters.ts";
import type { ObservedState, ObserveSource, RuntimeView, SyncView, VrrpInstanceView } from "../observe/source.ts";
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
    };
  return view;
}

export function daemonObserveSource(d: Daemon): ObserveSource {
  return observeSource({
    snapshot: (q) => d.snapshot(q),
    status: () => d.status(),
    runtime: () => daemonRuntime(d),
  });
}
