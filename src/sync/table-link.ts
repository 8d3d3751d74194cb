// The sync daemon's two contacts with a connection table: the record a master sends for an
// entry, and the ingest a backup applies for a record (ip_vs_proc_conn). Until the table offers
// its own ingest for synced entries, this adapter uses ConnTable.sync, which binds a record only
// when its service and real server exist here (no unbound entries) and reports nothing else.

import { CF_NOOUTPUT, type Conn } from "../core/conn/conn.ts";
import type { ConnTable } from "../core/conn/conn-table.ts";
import type { Ingest, IngestOutcome } from "./backup.ts";
import type { SyncedConn } from "./synced-conn.ts";

/** The record a master sends for an entry: its full timeout in seconds, as cp->timeout / HZ. */
export function syncedConnOf(c: Conn): SyncedConn {
  const rec: SyncedConn = {
    protocol: c.protocol,
    caddr: c.caddr,
    cport: c.cport,
    vaddr: c.vaddr,
    vport: c.vport,
    daddr: c.daddr,
    dport: c.dport,
    fwmark: c.fwmark,
    fwd: c.fwd,
    template: c.template,
    inactive: c.inactive,
    noOutput: (c._bits & CF_NOOUTPUT) !== 0,
    state: c.template ? 0 : c.state,
    timeoutS: Math.round(c.timeoutMs / 1000),
  };
  if (c.laddr !== "") {
    rec.laddr = c.laddr;
    rec.lport = c.lport;
  }
  return rec;
}

/** Ingest into `table`; `ingested` is told of every entry made or updated (SyncPolicy.ingested). */
export function tableIngest(table: ConnTable, ingested?: (c: Conn) => void): Ingest {
  return (rec: SyncedConn, now: number): IngestOutcome => {
    const before = table.size;
    const c = table.sync(rec, now);
    if (c === undefined) return "refused";
    if (rec.laddr !== undefined && rec.lport !== undefined && c.fwd === "fullnat" && c.laddr === "")
      table.setLocal(c, rec.laddr, rec.lport);
    ingested?.(c);
    return table.size > before ? "created" : "updated";
  };
}
