// The receiving side of a backup sync daemon (the kernel's sync_thread_backup and
// ip_vs_process_message): each datagram is decoded (codec.ts), each record turned into a table
// record (records.ts) and handed to the table's ingest, which creates or updates the entry as
// ip_vs_proc_conn does. Nothing here throws on what the network sends: every message or record
// that is not taken is counted under its reason, for `tvs status` and metrics.

import { type DecodeResult, decodeSyncMessage, type MessageDrop, type RecordSkip } from "./codec.ts";
import { fromWire, type RecordRefusal } from "./records.ts";
import { decodeResyncControl, type ResyncControl } from "./resync-wire.ts";
import type { SyncedConn } from "./synced-conn.ts";

/**
 * What the table did with one record (core's ingest result, reduced to its outcome), or
 * "ignored" (a plane that keeps only templates) or "passed" (handed to a worker that counts it).
 */
export type IngestOutcome = "created" | "updated" | "refused" | "ignored" | "passed";

export type Ingest = (rec: SyncedConn, now: number) => IngestOutcome;

export interface BackupStats {
  /** Datagrams received. */
  messages: number;
  /** Records decoded. */
  records: number;
  created: number;
  updated: number;
  /** Refused by the table (its connection limit). */
  refused: number;
  /** Not kept: a connection on a plane that keeps only templates. */
  ignored: number;
  /** Handed to packet workers (they count created/updated/refused). */
  passed: number;
  /** Whole messages (or their rest) dropped, by reason. */
  dropped: Partial<Record<MessageDrop, number>>;
  /** Single records skipped, by reason. */
  skipped: Partial<Record<RecordSkip | RecordRefusal | "invalid", number>>;
  /** Resync control messages seen. */
  control: number;
}

export class SyncBackup {
  readonly syncId: number;
  readonly stats: BackupStats = {
    messages: 0,
    records: 0,
    created: 0,
    updated: 0,
    refused: 0,
    ignored: 0,
    passed: 0,
    dropped: {},
    skipped: {},
    control: 0,
  };
  readonly #ingest: Ingest;
  /** Called for resync control messages on the group (bulk resync). */
  onControl: ((m: ResyncControl) => void) | undefined = undefined;

  /**
   * The backup's sync_maxlen: the kernel reads each datagram into a buffer this large, so a longer
   * one arrives cut and fails the size check. Here it is dropped as "oversized".
   */
  readonly maxLen: number;

  constructor(opts: { syncId: number; ingest: Ingest; maxLen?: number }) {
    this.syncId = opts.syncId;
    this.#ingest = opts.ingest;
    this.maxLen = opts.maxLen ?? 65507;
  }

  /** One datagram from the group. */
  receive(buf: Uint8Array, now: number): DecodeResult {
    const s = this.stats;
    s.messages++;
    if (buf.length > this.maxLen) {
      s.dropped.oversized = (s.dropped.oversized ?? 0) + 1;
      return { ok: false, drop: "oversized" };
    }
    // tvs's resync control messages first: in a mesh of directors each running a backup, other
    // backups' requests arrive here too, whatever their syncid; they are not sync traffic of
    // another syncid to count as dropped (the daemon answers only its own nonce's end marker).
    const ctl = decodeResyncControl(buf);
    if (ctl !== undefined) {
      s.control++;
      this.onControl?.(ctl);
      return { ok: true, version: 0, syncId: ctl.syncId, conns: [], skipped: [] };
    }
    const d = decodeSyncMessage(buf, this.syncId);
    if (!d.ok) {
      s.dropped[d.drop] = (s.dropped[d.drop] ?? 0) + 1;
      return d;
    }
    if (d.rest !== undefined) s.dropped[d.rest] = (s.dropped[d.rest] ?? 0) + 1;
    for (const k of d.skipped) s.skipped[k] = (s.skipped[k] ?? 0) + 1;
    for (const c of d.conns) {
      s.records++;
      const rec = fromWire(c);
      if (typeof rec === "string") {
        s.skipped[rec] = (s.skipped[rec] ?? 0) + 1;
        continue;
      }
      let outcome: IngestOutcome;
      try {
        outcome = this.#ingest(rec, now);
      } catch {
        // The table refused the values themselves (e.g. a family mismatch): skip the record.
        s.skipped.invalid = (s.skipped.invalid ?? 0) + 1;
        continue;
      }
      s[outcome]++;
    }
    return d;
  }
}
