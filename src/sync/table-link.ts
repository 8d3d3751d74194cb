// The sync daemon's two contacts with a connection table: the record a master sends for an
// entry (core's syncedConnOf), and the ingest a backup applies for a record
// (ConnTable.ingestSynced, the kernel's ip_vs_proc_conn: entries whose service or real server
// is missing are kept unbound until it appears).

import type { Conn } from "../core/conn/conn.ts";
import type { ConnTable } from "../core/conn/conn-table.ts";
import type { Ingest, IngestOutcome } from "./backup.ts";
import type { SyncedConn } from "./synced-conn.ts";

export { syncedConnOf } from "../core/conn/conn-sync.ts";

/** Ingest into `table`; `ingested` is told of every entry made or updated (SyncPolicy.ingested). */
export function tableIngest(table: ConnTable, ingested?: (c: Conn) => void): Ingest {
  return (rec: SyncedConn, now: number): IngestOutcome => {
    const r = table.ingestSynced(rec, now);
    if (r.outcome === "refused") return "refused";
    ingested?.(r.conn);
    return r.outcome;
  };
}
