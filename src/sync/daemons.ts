// The sync daemons of one tvsd, as `ipvsadm --start-daemon/--stop-daemon` drive the kernel's
// (start_sync_thread / stop_sync_thread): at most one master and one backup, each with its own
// configuration and sockets. Starting one fills in the kernel's defaults (group 224.0.0.81, port
// 8848, TTL 1, sync_maxlen from the interface), which is what `-L --daemon` then prints.
//
// The master's records come from the forwarding path (the host's planes run core's SyncPolicy per
// incoming packet and hand over what it selects); the backup's records go to the host's ingest.
// Beyond the kernel, both take part in bulk resync (resync-wire.ts): a backup asks for the whole
// table when it starts, and repeats the request every second until the answer is complete (at
// most RESYNC_TRIES times: a kernel master never answers); a master answers with every entry it
// holds, through its ordinary messages, then an end marker.

import type { SyncSettings } from "../core/conn/sync-policy.ts";
import { CoreError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { SyncDaemonSpec } from "../core/request.ts";
import { type Ingest, SyncBackup } from "./backup.ts";
import { SYNC_MCAST_GROUP, SYNC_MCAST_PORT, syncMaxLen } from "./codec.ts";
import {
  type OpenEndpoint,
  openUdpEndpoint,
  type ResolvedInterface,
  resolveInterface,
  type SyncEndpoint,
} from "./endpoint.ts";
import { SYNC_CHECK_PERIOD_MS, SyncMaster } from "./master.ts";
import { decodeResyncControl, encodeResyncEnd, encodeResyncRequest, type ResyncControl } from "./resync-wire.ts";
import type { SyncedConn } from "./synced-conn.ts";

/** One daemon's configuration: core's SyncDaemonSpec (ipvsadm --start-daemon); 0 or "" means the default. */
export type SyncDaemonConfig = SyncDaemonSpec;

/** What tvsd gives the daemons: its tables, through its planes. */
export interface SyncHost {
  /**
   * A master started (settings and where to hand records) or stopped (undefined): the planes
   * start or stop deciding per incoming packet what to sync.
   */
  setMaster(master: { settings: SyncSettings; emit: (recs: SyncedConn[]) => void } | undefined): void;
  /** Every entry now (bulk resync). */
  dump(): Promise<SyncedConn[]>;
  /** Apply one received record (undefined: passed on to a worker that counts it). */
  ingest: Ingest;
}

export interface SyncDaemonsOptions {
  host: SyncHost;
  log: Logger;
  now: () => number;
  settings: SyncSettings;
  /** Tests: another interface lookup and socket layer. */
  resolve?: (name: string, family: 4 | 6) => ResolvedInterface | undefined;
  open?: OpenEndpoint;
  /** Resync request interval and tries (tests shorten them). */
  resyncIntervalMs?: number;
}

export const RESYNC_TRIES = 5;
const RESYNC_INTERVAL_MS = 1000;

interface Running {
  config: SyncDaemonConfig;
  endpoint: SyncEndpoint | undefined;
  failed: string | undefined;
  timer: NodeJS.Timeout | undefined;
}

interface ResyncState {
  nonce: number;
  tries: number;
  requestedAt: number;
  done: { count: number; ms: number; from: string } | undefined;
}

function isMulticast(addr: string): boolean {
  if (addr.includes(":")) return addr.toLowerCase().startsWith("ff");
  const first = Number(addr.split(".")[0]);
  return first >= 224 && first <= 239;
}

export class SyncDaemons {
  readonly #o: SyncDaemonsOptions;
  #master: (Running & { sender: SyncMaster; answering: boolean; answered: number }) | undefined;
  #backup: (Running & { receiver: SyncBackup; resync: ResyncState }) | undefined;

  constructor(o: SyncDaemonsOptions) {
    this.#o = o;
  }

  /** The configuration start() would run, defaults filled in; throws the CoreError start() would. */
  check(spec: SyncDaemonConfig, ignoreRunning = false): SyncDaemonConfig {
    const op = "start-daemon";
    if (spec.state !== "master" && spec.state !== "backup")
      throw new CoreError("EINVAL", op, `Invalid sync daemon state "${String(spec.state)}"`);
    if (!Number.isInteger(spec.syncId) || spec.syncId < 0 || spec.syncId > 255)
      throw new CoreError("EINVAL", op, `Invalid syncid "${spec.syncId}"`);
    const group = spec.mcastGroup || SYNC_MCAST_GROUP;
    if (!isMulticast(group)) throw new CoreError("EINVAL", op, `Sync group "${group}" is not a multicast address`);
    const six = group.includes(":");
    const ifn = spec.mcastIfn;
    const iface = (this.#o.resolve ?? resolveInterface)(ifn, six ? 6 : 4);
    if (iface === undefined) throw new CoreError("ENODEV", op, `Unknown mcast interface "${ifn}"`);
    if (!ignoreRunning && (spec.state === "master" ? this.#master : this.#backup) !== undefined)
      throw new CoreError("EEXIST", op, `A ${spec.state} sync daemon is already running`);
    return {
      state: spec.state,
      mcastIfn: ifn,
      syncId: spec.syncId,
      syncMaxLen: syncMaxLen(spec.state, iface.mtu, spec.syncMaxLen, six),
      mcastGroup: group,
      mcastPort: spec.mcastPort || SYNC_MCAST_PORT,
      mcastTtl: spec.mcastTtl || 1,
    };
  }

  /** Start a master or backup daemon (ipvsadm --start-daemon); the sockets open in the background. */
  start(spec: SyncDaemonConfig): void {
    const config = this.check(spec);
    const iface = (this.#o.resolve ?? resolveInterface)(config.mcastIfn, config.mcastGroup.includes(":") ? 6 : 4);
    const base: Running = { config, endpoint: undefined, failed: undefined, timer: undefined };
    if (config.state === "master") {
      const m = {
        ...base,
        sender: new SyncMaster({
          syncId: config.syncId,
          maxLen: config.syncMaxLen,
          send: (msg) => m.endpoint?.send(msg),
        }),
        answering: false,
        answered: 0,
      };
      this.#master = m;
      m.timer = setInterval(() => m.sender.tick(this.#o.now()), SYNC_CHECK_PERIOD_MS);
      this.#o.host.setMaster({
        settings: this.#o.settings,
        emit: (recs) => {
          const now = this.#o.now();
          for (const r of recs) m.sender.push(r, now);
        },
      });
      this.#open(m, iface as ResolvedInterface, (msg) => this.#masterHeard(msg));
    } else {
      const b = {
        ...base,
        receiver: new SyncBackup({ syncId: config.syncId, ingest: this.#o.host.ingest, maxLen: config.syncMaxLen }),
        resync: { nonce: (Math.random() * 0xffffffff) >>> 0, tries: 0, requestedAt: 0, done: undefined },
      };
      this.#backup = b;
      b.receiver.onControl = (c) => this.#backupControl(c);
      this.#open(b, iface as ResolvedInterface, (msg, from) => {
        if (this.#backup !== b) return;
        this.#lastPeer = from;
        b.receiver.receive(msg, this.#o.now());
      });
    }
    this.#o.log.info("Sync daemon started", { ...config });
  }

  #lastPeer = "";

  #open(r: Running, iface: ResolvedInterface, onMessage: (msg: Uint8Array, from: string) => void): void {
    const c = r.config;
    (this.#o.open ?? openUdpEndpoint)({
      iface,
      group: c.mcastGroup,
      port: c.mcastPort,
      ttl: c.mcastTtl,
      onMessage,
      onError: (err) => this.#o.log.warn("Sync socket error", { state: c.state, err: err.message }),
    }).then(
      (ep) => {
        if ((c.state === "master" ? this.#master : this.#backup) !== r) {
          ep.close();
          return;
        }
        r.endpoint = ep;
        if (c.state === "backup") this.#requestResync();
      },
      (err: Error) => {
        r.failed = err.message;
        this.#o.log.error("Cannot open the sync sockets", { state: c.state, err: err.message });
      },
    );
  }

  /** Stop a daemon (ipvsadm --stop-daemon); ESRCH when none of that state runs. */
  stop(state: "master" | "backup"): void {
    const r = state === "master" ? this.#master : this.#backup;
    if (r === undefined) throw new CoreError("ESRCH", "stop-daemon", `No ${state} sync daemon is running`);
    if (state === "master") {
      this.#o.host.setMaster(undefined);
      this.#master?.sender.flush();
      this.#master = undefined;
    } else this.#backup = undefined;
    if (r.timer) clearInterval(r.timer);
    r.endpoint?.close();
    this.#o.log.info("Sync daemon stopped", { state });
  }

  /** The running daemons' configurations, master first (what `-L --daemon` prints). */
  running(): SyncDaemonConfig[] {
    const out: SyncDaemonConfig[] = [];
    if (this.#master) out.push({ ...this.#master.config });
    if (this.#backup) out.push({ ...this.#backup.config });
    return out;
  }

  /** Stop everything (tvsd shutting down). */
  close(): void {
    if (this.#master) this.stop("master");
    if (this.#backup) this.stop("backup");
  }

  /**
   * Whether a backup runs whose bulk resync is still under way (requested, not yet answered, tries
   * left): a director joining a sync mesh waits for it before it attracts flows (announce-host.ts).
   */
  resyncPending(): boolean {
    const b = this.#backup;
    return b !== undefined && b.failed === undefined && b.resync.done === undefined && b.resync.tries < RESYNC_TRIES;
  }

  /** Lines for `tvs status`. */
  status(): string[] {
    const out: string[] = [];
    const m = this.#master;
    if (m) {
      const s = m.sender.stats;
      out.push(
        `Sync master on ${m.config.mcastIfn} (syncid ${m.config.syncId}, ${m.config.mcastGroup}:${m.config.mcastPort})` +
          `${m.failed ? `: sockets failed: ${m.failed}` : ""}: ${s.messages} messages, ${s.records} entries sent` +
          `${m.endpoint?.sendErrors ? `, ${m.endpoint.sendErrors} send errors` : ""}, ${m.answered} resync requests answered`,
      );
    }
    const b = this.#backup;
    if (b) {
      const s = b.receiver.stats;
      const drops = Object.entries({ ...s.dropped, ...s.skipped })
        .map(([k, v]) => `${k} ${v}`)
        .join(", ");
      const r = b.resync;
      const resync = r.done
        ? `resync complete (${r.done.count} entries from ${r.done.from} in ${r.done.ms} ms)`
        : r.tries >= RESYNC_TRIES
          ? "resync not answered (the master may be a kernel, which does not resync)"
          : "resync requested";
      out.push(
        `Sync backup on ${b.config.mcastIfn} (syncid ${b.config.syncId}, ${b.config.mcastGroup}:${b.config.mcastPort})` +
          `${b.failed ? `: sockets failed: ${b.failed}` : ""}: ${s.messages} messages, ${s.records} entries, ` +
          (s.passed > 0
            ? `${s.passed} handed to the packet workers`
            : `${s.created} created, ${s.updated} updated, ${s.refused} refused (connection limit)`) +
          (s.ignored > 0 ? `, ${s.ignored} connections not kept (templates only on this plane)` : "") +
          `${drops ? `; dropped: ${drops}` : ""}; ${resync}`,
      );
    }
    return out;
  }

  /** Counters for metrics and tests. */
  stats(): { master?: SyncMaster["stats"]; backup?: SyncBackup["stats"] } {
    return {
      ...(this.#master ? { master: { ...this.#master.sender.stats } } : {}),
      ...(this.#backup ? { backup: { ...this.#backup.receiver.stats } } : {}),
    };
  }

  /** Each running daemon's counters, for metrics and the dashboard. */
  observed(): (
    | { role: "master"; syncId: number; iface: string; stats: SyncMaster["stats"] }
    | { role: "backup"; syncId: number; iface: string; stats: SyncBackup["stats"] }
  )[] {
    const out: ReturnType<SyncDaemons["observed"]> = [];
    const m = this.#master;
    if (m) out.push({ role: "master", syncId: m.config.syncId, iface: m.config.mcastIfn, stats: m.sender.stats });
    const b = this.#backup;
    if (b) out.push({ role: "backup", syncId: b.config.syncId, iface: b.config.mcastIfn, stats: b.receiver.stats });
    return out;
  }

  // ------------------------------------------------------------ bulk resync

  #requestResync(): void {
    const b = this.#backup;
    if (b === undefined || b.endpoint === undefined || b.resync.done || b.resync.tries >= RESYNC_TRIES) return;
    b.resync.tries++;
    if (b.resync.tries === 1) b.resync.requestedAt = this.#o.now();
    b.endpoint.send(encodeResyncRequest(b.config.syncId, b.resync.nonce));
    b.timer = setTimeout(() => this.#requestResync(), this.#o.resyncIntervalMs ?? RESYNC_INTERVAL_MS);
  }

  #backupControl(c: ResyncControl): void {
    const b = this.#backup;
    if (b === undefined || c.kind !== "end" || c.nonce !== b.resync.nonce || b.resync.done) return;
    b.resync.done = { count: c.count, ms: Math.round(this.#o.now() - b.resync.requestedAt), from: this.#lastPeer };
    if (b.timer) clearTimeout(b.timer);
    this.#o.log.info("Bulk resync complete", { entries: c.count, from: this.#lastPeer });
  }

  #masterHeard(msg: Uint8Array): void {
    const m = this.#master;
    const c = decodeResyncControl(msg);
    if (m === undefined || c === undefined || c.kind !== "request") return;
    if (m.config.syncId !== 0 && c.syncId !== 0 && c.syncId !== m.config.syncId) return;
    if (m.answering) return;
    m.answering = true;
    m.answered++;
    this.#o.host.dump().then(
      (recs) => {
        if (this.#master !== m) return;
        const now = this.#o.now();
        m.sender.flush();
        for (const r of recs) m.sender.push(r, now);
        m.sender.flush();
        m.endpoint?.send(encodeResyncEnd(m.config.syncId, c.nonce, recs.length));
        m.answering = false;
      },
      (err: Error) => {
        m.answering = false;
        this.#o.log.warn("Cannot answer a resync request", { err: err.message });
      },
    );
  }
}
