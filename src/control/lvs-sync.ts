// keepalived's lvs_sync_daemon in tvsd: the sync daemons follow one VRRP instance, as keepalived
// drives the kernel's (ipvs_syncd_master / ipvs_syncd_backup): while the instance is MASTER the
// master daemon runs, in every other state (INIT, BACKUP, FAULT) the backup daemon; a switch stops
// one and starts the other. syncid defaults to the instance's virtual_router_id. A reload that
// changes or removes lvs_sync_daemon restarts or stops the daemons this file started.

import type { LvsSyncDaemonSpec } from "../config/keepalived/lvs-sync-daemon.ts";
import { CoreError, isCoreError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { SyncDaemonConfig, SyncDaemons } from "../sync/daemons.ts";
import type { VrrpStateChange } from "../vrrp/status.ts";

/** What is needed of the VRRP engine: each instance's name, state and VRID. */
export interface VrrpStates {
  status(): { name: string; state: string; vrid: number }[];
}

function same(a: LvsSyncDaemonSpec | undefined, b: LvsSyncDaemonSpec | undefined): boolean {
  const strip = (s: LvsSyncDaemonSpec | undefined) => (s ? { ...s, origin: undefined } : undefined);
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}

export class LvsSyncDriver {
  readonly #sync: SyncDaemons;
  readonly #log: Logger;
  #spec: LvsSyncDaemonSpec | undefined;
  #vrid = 0;
  /** The daemon this driver runs now. */
  #role: "master" | "backup" | undefined;

  constructor(sync: SyncDaemons, log: Logger) {
    this.#sync = sync;
    this.#log = log;
  }

  get spec(): LvsSyncDaemonSpec | undefined {
    return this.#spec;
  }

  /** A configuration was applied: start, restart or stop as lvs_sync_daemon now says. Throws on a daemon that cannot start. */
  apply(spec: LvsSyncDaemonSpec | undefined, vrrp: VrrpStates | undefined): void {
    if (same(spec, this.#spec)) return;
    this.#stopOwn();
    this.#spec = spec;
    if (!spec) return;
    const inst = vrrp?.status().find((i) => i.name === spec.instance);
    this.#vrid = inst?.vrid ?? 0;
    this.#switchTo(inst?.state === "MASTER" ? "master" : "backup", true);
  }

  /**
   * Throw the CoreError apply() would throw for `spec` (an unknown interface, a group that is not
   * multicast), without starting or stopping anything: a reload checks this before it changes the
   * tables, so a refused lvs_sync_daemon leaves everything as it was.
   */
  check(spec: LvsSyncDaemonSpec | undefined): void {
    if (!spec || same(spec, this.#spec)) return;
    const saved = this.#spec;
    this.#spec = spec;
    try {
      this.#sync.check(this.#config("backup"), true);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      throw new CoreError(isCoreError(err) ? err.code : "EINVAL", "reload", `lvs_sync_daemon: ${message}`);
    } finally {
      this.#spec = saved;
    }
  }

  /** A VRRP instance changed state. */
  onState(e: VrrpStateChange): void {
    if (!this.#spec || e.instance !== this.#spec.instance) return;
    this.#switchTo(e.to === "MASTER" ? "master" : "backup", false);
  }

  /** tvsd stops: the daemons stop with it (SyncDaemons.close does that). */
  forget(): void {
    this.#role = undefined;
    this.#spec = undefined;
  }

  #config(state: "master" | "backup"): SyncDaemonConfig {
    const s = this.#spec as LvsSyncDaemonSpec;
    return {
      state,
      mcastIfn: s.interface,
      syncId: s.syncId ?? this.#vrid,
      syncMaxLen: s.maxLen ?? 0,
      mcastGroup: s.group ?? "",
      mcastPort: s.port ?? 0,
      mcastTtl: s.ttl ?? 0,
    };
  }

  #switchTo(role: "master" | "backup", throwOnError: boolean): void {
    if (this.#role === role) return;
    this.#stopOwn();
    try {
      // Like keepalived: a daemon of that role started by hand gives way to the configured one.
      if (this.#sync.running().some((d) => d.state === role)) this.#sync.stop(role);
      this.#sync.start(this.#config(role));
      this.#role = role;
      this.#log.info("lvs_sync_daemon follows VRRP", { instance: this.#spec?.instance, daemon: role });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#log.error("lvs_sync_daemon: cannot start the sync daemon", { daemon: role, err: message });
      if (throwOnError)
        throw new CoreError(isCoreError(err) ? err.code : "EINVAL", "reload", `lvs_sync_daemon: ${message}`);
    }
  }

  #stopOwn(): void {
    const r = this.#role;
    this.#role = undefined;
    if (r && this.#sync.running().some((d) => d.state === r)) this.#sync.stop(r);
  }
}
