// The synced-entry record as the sync daemon hands it to the connection table and gets it from
// there: plain data, the fields a kernel sync record carries. Core's connection table owns the
// type (src/core/conn/conn-sync.ts); the sync daemon uses it from here.

export type { SyncedConn } from "../core/conn/conn-sync.ts";
