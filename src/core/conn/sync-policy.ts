// When a sync master sends an entry (the kernel's ip_vs_sync_conn and ip_vs_sync_conn_needed),
// decided per incoming packet by whoever forwards it: the daemon's own plane or a packet worker.
//
// The kernel counts a connection's incoming packets (in_pkts) and, after forwarding each one,
// asks whether the entry should be synced now:
//   - TCP and SCTP entries only in states worth keeping on a backup (TCP ESTABLISHED, FIN_WAIT,
//     CLOSE, CLOSE_WAIT, TIME_WAIT; SCTP ESTABLISHED, SHUTDOWN_SENT, SHUTDOWN_RECEIVED,
//     SHUTDOWN_ACK_SENT, CLOSED). A state change forces a sync at once, except a change into
//     ESTABLISHED, which still waits for the packet count (the threshold).
//   - sync_refresh_period (seconds, default 0 = off): skip when the entry's expiry moved by less
//     than that period (or half its timeout, if smaller) since the last sync, retrying up to
//     sync_retries times every period/8. The last sync's expiry is kept with its low two bits
//     counting retries, exactly as the kernel folds them into sync_endtime.
//   - sync_threshold / sync_period (default 3 / 50): otherwise sync when in_pkts % period ==
//     threshold (a template at every call); with period 0 and no refresh period, once when
//     in_pkts == threshold.
// Then the same question is asked of the entry's controller (its persistence template), with the
// template's own in_pkts incremented, so a template is refreshed with the connections it pins.
// One-packet entries are never sent, but their template still is. With sync_persist_mode,
// connections under a template are not sent at all, only the template.
//
// Per-entry numbers live in a WeakMap beside the table: they exist only while a master runs and
// cost nothing to the table otherwise.

import { CoreError } from "../errors.ts";
import type { Conn } from "./conn.ts";
import {
  SCTP_S_CLOSED,
  SCTP_S_ESTABLISHED,
  SCTP_S_SHUTDOWN_ACK_SENT,
  SCTP_S_SHUTDOWN_RECEIVED,
  SCTP_S_SHUTDOWN_SENT,
} from "./sctp-states.ts";
import { TCP_S_CLOSE, TCP_S_CLOSE_WAIT, TCP_S_ESTABLISHED, TCP_S_FIN_WAIT, TCP_S_TIME_WAIT } from "./tcp-states.ts";

/** The sync sysctls (Documentation/networking/ipvs-sysctl.rst). */
export interface SyncSettings {
  /** sync_threshold[0]: packets before the first sync. */
  threshold: number;
  /** sync_threshold[1]: sync again every this many packets (0: once). */
  period: number;
  /** sync_refresh_period, seconds (0: off). */
  refreshPeriodS: number;
  /** sync_retries, 0..3. */
  retries: number;
  /** sync_persist_mode: sync templates only, not the connections they control. */
  persistMode: boolean;
}

export const DEFAULT_SYNC_SETTINGS: SyncSettings = {
  threshold: 3,
  period: 50,
  refreshPeriodS: 0,
  retries: 0,
  persistMode: false,
};

/** Check settings as the sysctl handlers do; throws EINVAL naming the value. */
export function checkSyncSettings(s: SyncSettings): SyncSettings {
  const bad = (what: string, v: unknown) => new CoreError("EINVAL", "start-daemon", `Invalid ${what} "${String(v)}"`);
  if (!Number.isInteger(s.period) || s.period < 0 || s.period > 0x7fffffff) throw bad("sync_period", s.period);
  if (!Number.isInteger(s.threshold) || s.threshold < 0 || (s.period > 0 && s.threshold >= s.period))
    throw bad("sync_threshold", s.threshold);
  if (!Number.isInteger(s.refreshPeriodS) || s.refreshPeriodS < 0 || s.refreshPeriodS > 0x7fffffff / 1000)
    throw bad("sync_refresh_period", s.refreshPeriodS);
  if (!Number.isInteger(s.retries) || s.retries < 0 || s.retries > 3) throw bad("sync_retries", s.retries);
  if (typeof s.persistMode !== "boolean") throw bad("sync_persist_mode", s.persistMode);
  return { ...s };
}

interface EntrySyncState {
  inPkts: number;
  oldState: number;
  /** Expiry reported by the last sync, ms, rounded down to 4 with retries in the low 2 bits. */
  endtime: number;
}

const TCP_SYNCED =
  (1 << TCP_S_ESTABLISHED) |
  (1 << TCP_S_FIN_WAIT) |
  (1 << TCP_S_CLOSE) |
  (1 << TCP_S_CLOSE_WAIT) |
  (1 << TCP_S_TIME_WAIT);
const SCTP_SYNCED =
  (1 << SCTP_S_ESTABLISHED) |
  (1 << SCTP_S_SHUTDOWN_SENT) |
  (1 << SCTP_S_SHUTDOWN_RECEIVED) |
  (1 << SCTP_S_SHUTDOWN_ACK_SENT) |
  (1 << SCTP_S_CLOSED);

export class SyncPolicy {
  readonly settings: SyncSettings;
  readonly #state = new WeakMap<Conn, EntrySyncState>();

  constructor(settings: SyncSettings = DEFAULT_SYNC_SETTINGS) {
    this.settings = checkSyncSettings(settings);
  }

  #of(c: Conn): EntrySyncState {
    let s = this.#state.get(c);
    if (s === undefined) {
      s = { inPkts: 0, oldState: 0, endtime: 0 };
      this.#state.set(c, s);
    }
    return s;
  }

  /**
   * An incoming packet of `conn` was forwarded (ip_vs_in after the transmit): count it and call
   * `emit` for each entry to send now, the connection first and then its template.
   */
  inPacket(conn: Conn, now: number, emit: (c: Conn) => void): void {
    let c: Conn | undefined = conn;
    let pkts = conn.onePacket ? this.settings.threshold : ++this.#of(conn).inPkts;
    while (c !== undefined) {
      if (!c.onePacket && this.#needed(c, pkts, now)) emit(c);
      const ctl: Conn | undefined = c.control;
      if (ctl === undefined) return;
      pkts = ctl.template ? ++this.#of(ctl).inPkts : this.settings.threshold;
      c = ctl;
    }
  }

  /**
   * A backup created or updated `c` from a sync record (ip_vs_proc_conn): its packet count
   * restarts at the threshold and its state counts as already synced, so if this director
   * becomes master it sends the entry on the kernel's schedule, not at once.
   */
  ingested(c: Conn): void {
    const s = this.#of(c);
    s.inPkts = this.settings.threshold;
    s.oldState = c.state;
  }

  #needed(c: Conn, pkts: number, now: number): boolean {
    const s = this.#of(c);
    const set = this.settings;
    const orig = s.endtime;
    const timeout = c.timeoutMs;
    let n = Math.floor((now + timeout) / 4) * 4;
    const state = c.state;
    const p = c.protocol;
    if (!c.template) {
      if (set.persistMode && c.control?.template) return false;
      if (p === "tcp" || p === "sctp") {
        if (!((1 << state) & (p === "tcp" ? TCP_SYNCED : SCTP_SYNCED))) return false;
        // A state change goes at once, except into ESTABLISHED (which waits for the count).
        if (state !== s.oldState && state !== (p === "tcp" ? TCP_S_ESTABLISHED : SCTP_S_ESTABLISHED)) {
          s.oldState = state;
          s.endtime = n;
          return true;
        }
      }
    }
    const refresh = set.refreshPeriodS * 1000;
    if (refresh > 0) {
      const diff = n - orig;
      const minDiff = Math.max(timeout / 2, 10_000);
      if (Math.abs(diff) < Math.min(refresh, minDiff)) {
        const retries = orig & 3;
        if (retries >= set.retries) return false;
        if (now < orig - timeout + refresh / 8) return false;
        n |= retries + 1;
      }
    }
    if (set.period > 0) {
      if (!c.template && pkts % set.period !== set.threshold) return false;
    } else if (refresh === 0 && pkts !== set.threshold) return false;
    s.oldState = state;
    s.endtime = n;
    return true;
  }
}
