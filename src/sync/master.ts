// The sending side of a master sync daemon (the kernel's sync buffer and sync_thread_master):
// records of entries the forwarding path decided to sync (core's SyncPolicy) are appended to the
// current message; a message goes out when the next record would not fit (sync_maxlen, or 255
// records), or when it has waited IPVS_SYNC_FLUSH_TIME (2 s) since its first record, checked by
// tick() every second as the kernel's thread wakes up every second. Time is injected; the socket
// is the caller's `send`.

import { SyncMessageWriter } from "./codec.ts";
import { toWire } from "./records.ts";
import type { SyncedConn } from "./synced-conn.ts";

/** A partly filled message waits at most this long (IPVS_SYNC_FLUSH_TIME). */
export const SYNC_FLUSH_MS = 2000;
/** How often the daemon should call tick() (IPVS_SYNC_CHECK_PERIOD). */
export const SYNC_CHECK_PERIOD_MS = 1000;

export interface MasterStats {
  /** Messages handed to send(). */
  messages: number;
  /** Records in them. */
  records: number;
  bytes: number;
  /** Records that could not be encoded (never expected; counted, not thrown). */
  unencodable: number;
}

export class SyncMaster {
  readonly syncId: number;
  readonly maxLen: number;
  readonly stats: MasterStats = { messages: 0, records: 0, bytes: 0, unencodable: 0 };
  readonly #writer: SyncMessageWriter;
  readonly #send: (msg: Uint8Array) => void;
  #firstUse = 0;

  constructor(opts: { syncId: number; maxLen: number; send: (msg: Uint8Array) => void }) {
    this.syncId = opts.syncId;
    this.maxLen = opts.maxLen;
    this.#writer = new SyncMessageWriter(opts.syncId, opts.maxLen);
    this.#send = opts.send;
  }

  /** Records waiting in the current message. */
  get pending(): number {
    return this.#writer.count;
  }

  /** Append one record, sending the current message first if it does not fit. */
  push(rec: SyncedConn, now: number): void {
    let wire: ReturnType<typeof toWire>;
    try {
      wire = toWire(rec);
      if (!this.#writer.fits(wire)) this.flush();
      if (this.#writer.count === 0) this.#firstUse = now;
      this.#writer.add(wire);
    } catch {
      this.stats.unencodable++;
    }
  }

  /** Send the current message if it has waited SYNC_FLUSH_MS. */
  tick(now: number): void {
    if (this.#writer.count > 0 && now - this.#firstUse >= SYNC_FLUSH_MS) this.flush();
  }

  /** Send the current message now (if it holds anything). */
  flush(): void {
    const w = this.#writer;
    if (w.count === 0) return;
    const msg = w.bytes();
    this.stats.messages++;
    this.stats.records += w.count;
    this.stats.bytes += msg.length;
    w.reset();
    this.#send(msg);
  }
}
