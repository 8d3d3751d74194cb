// The sync daemons wired to tvsd's tables and plane (src/sync/daemons.ts's SyncHost): a master
// gets its records from the plane's forwarding path (the main loop's pipeline, every packet
// worker, or the socket plane's relays); a backup's records go to the plane's own tables (packet
// workers, each getting its own flows) or to the daemon's table. On the socket data plane a
// backup keeps only persistence templates: a TCP connection ends at this host's sockets and
// cannot be taken over, so an entry for it would only mislead the schedulers.

import { type SyncedConn, syncedConnOf } from "../core/conn/conn-sync.ts";
import type { ConnTable } from "../core/conn/conn-table.ts";
import { DEFAULT_SYNC_SETTINGS, type SyncSettings } from "../core/conn/sync-policy.ts";
import type { Logger } from "../core/log.ts";
import type { IngestOutcome } from "../sync/backup.ts";
import { SyncDaemons, type SyncHost } from "../sync/daemons.ts";
import type { DataPlane } from "./dataplane.ts";

export interface SyncHostDeps {
  conns: ConnTable;
  plane: () => DataPlane | undefined;
  log: Logger;
  now: () => number;
  settings?: SyncSettings;
}

/** What `tvs status` says about sync on the socket plane. */
export const SOCKET_PLANE_SYNC_NOTE =
  "Connection sync on the socket data plane: persistence templates are synced; TCP connections cannot move to another host (they end at this host's sockets), so a failover resets them";

export function createSyncDaemons(d: SyncHostDeps): SyncDaemons {
  const settings = d.settings ?? DEFAULT_SYNC_SETTINGS;
  return new SyncDaemons({ log: d.log.child({ part: "sync" }), now: d.now, settings, host: syncHost(d) });
}

/** The SyncHost for tvsd's table and plane (see the header). */
export function syncHost(d: SyncHostDeps): SyncHost {
  // A director that turns master counts every entry's packets afresh (the planes' SyncPolicy starts
  // empty), so entries a backup made are sent again at their third packet, where the kernel would
  // wait for the next multiple of sync_period: the new backup is filled sooner.
  let toWorkers: SyncedConn[] = [];
  const flushToWorkers = () => {
    const recs = toWorkers;
    toWorkers = [];
    if (recs.length > 0) d.plane()?.ingestSynced?.(recs);
  };
  return {
    setMaster(m) {
      d.plane()?.setSync?.(m);
    },
    async dump() {
      const fromPlane = await d.plane()?.dumpSynced?.();
      if (fromPlane !== undefined) return fromPlane;
      const out: SyncedConn[] = [];
      for (const c of d.conns.entries()) if (c.dest !== undefined || c.template) out.push(syncedConnOf(c));
      return out;
    },
    ingest(rec, now): IngestOutcome {
      const plane = d.plane();
      if (plane?.syncTemplatesOnly && !rec.template) return "ignored";
      if (plane?.ingestSynced !== undefined && plane.connCount?.() !== undefined) {
        // Packet workers: batched per datagram, routed to the worker owning the flow.
        if (toWorkers.length === 0) queueMicrotask(flushToWorkers);
        toWorkers.push(rec);
        return "passed";
      }
      const r = d.conns.ingestSynced(rec, now);
      return r.outcome;
    },
  };
}
