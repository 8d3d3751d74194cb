// The daemon's composition root: one service table, one connection table, the rate estimator, the
// Director that applies control requests, and a data plane. Every change (tvsadm, a reload, the
// demo) goes the same way: the plane vets it (admitService/admitDest: e.g. -i refused on the socket
// plane), the Director applies it to the tables (all or nothing for a batch), then the plane is told
// which services appeared, changed or went by diffing the table against what it already carries.
//
// Timers live here, not in core: the connection table is expired every second and the estimator
// ticks every 2 s, both on a monotonic clock (performance.now) injected into core.

import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { AnnounceSpec } from "../announce/spec.ts";
import type { DesiredState } from "../config/desired.ts";
import type { DirectorConfig } from "../config/director-config.ts";
import type { Clock } from "../core/clock.ts";
import { ConnTable } from "../core/conn/conn-table.ts";
import { checkSysctl, type Sysctls } from "../core/conn/sysctl.ts";
import type { DestSpec } from "../core/dest.ts";
import { CoreError } from "../core/errors.ts";
import type { FwmarkRule } from "../core/fwmark/rule.ts";
import { MAX_FWMARK_RULES } from "../core/fwmark/rules-text.ts";
import type { Logger } from "../core/log.ts";
import type { SyncDaemonSpec } from "../core/request.ts";
import { BatchError } from "../core/request.ts";
import { createDefaultRegistry } from "../core/sched/all.ts";
import type { SchedEnv } from "../core/sched/types.ts";
import type { ServiceKey, VirtualService } from "../core/service.ts";
import { ServiceTable } from "../core/service-table.ts";
import type { Counters } from "../core/stats/counters.ts";
import { RateEstimator } from "../core/stats/estimator.ts";
import { statelessSynRefusal } from "../dataplane/packet/stateless-syn.ts";
import { EventBus } from "../observe/events.ts";
import { heapUsedFraction } from "../platform/heap-use.ts";
import { TcpProber } from "../platform/tcp-prober.ts";
import type { SyncDaemons } from "../sync/daemons.ts";
import type { VipDriver, VrrpHost } from "../vrrp/io.ts";
import { type PreparedVrrp, VrrpManager } from "../vrrp/manager.ts";
import type { VrrpStateChange } from "../vrrp/status.ts";
import { AnnounceHost, announceSpecFromConfig } from "./announce-host.ts";
import type { ExecRequest, FwmarkView, Snapshot, StatusView, SysctlView } from "./api/protocol.ts";
import type { DataPlane } from "./dataplane.ts";
import { type ConnLike, Director } from "./executor.ts";
import { fwmarkView } from "./fwmark-rules.ts";
import { HealthSupervisor } from "./health-supervisor.ts";
import { LvsSyncDriver } from "./lvs-sync.ts";
import { vrrpStateEvent } from "./observe-source.ts";
import { hostAddresses, pitfallNotes } from "./pitfalls.ts";
import { reconcile } from "./reconcile.ts";
import type { SnapshotRequest } from "./server.ts";
import { createSyncDaemons, SOCKET_PLANE_SYNC_NOTE } from "./sync-host.ts";
import { checkSysctlForPlane } from "./sysctl-plane.ts";

export const EXPIRE_INTERVAL_MS = 1000;
export const ESTIMATOR_INTERVAL_MS = 2000;

const NO_CONNS: SnapshotRequest = { conns: false, service: undefined };

const EVENT_TITLE = {
  "dest-down": "Real server down",
  "dest-up": "Real server up",
  "quorum-lost": "Quorum lost",
  "quorum-gained": "Quorum regained",
} as const;

/** The services a request adds, with their request's position (0 for a single request). */
function plannedServices(req: ExecRequest): { key: ServiceKey; index: number }[] {
  if (req.op === "add-service") return [{ key: req.key, index: 0 }];
  if (req.op !== "batch") return [];
  const out: { key: ServiceKey; index: number }[] = [];
  for (const [index, r] of req.requests.entries()) if (r.op === "add-service") out.push({ key: r.key, index });
  return out;
}

/**
 * Where a reload reads its desired state from: rules file and demo give a DesiredState; a
 * keepalived.conf/ldirectord.cf gives a DirectorConfig, whose health settings drive the health
 * supervisor (checks take failed real servers out, quorum brings the sorry server in).
 */
export type DesiredSource = () => Promise<DesiredState | DirectorConfig>;

function isDirectorConfig(x: DesiredState | DirectorConfig): x is DirectorConfig {
  return "health" in x && "desired" in x;
}

export interface DaemonOptions {
  log: Logger;
  /** Builds the data plane once the tables exist. */
  makePlane: (deps: { services: ServiceTable; conns: ConnTable; clock: Clock; log: Logger }) => Promise<DataPlane>;
  /** The desired state at start and on every reload; none means start empty and refuse reloads. */
  source?: DesiredSource;
  /** Description of the source for status ("rules /etc/tvs.rules"). */
  sourceName?: string;
  /** Connection table limit (entries). */
  connLimit?: number;
  /** Kernel-style sysctls that matter to forwarding. */
  expireNodestConn?: boolean;
  expireQuiescentTemplate?: boolean;
  /** sloppy_tcp / sloppy_sctp: a mid-connection packet with no entry is scheduled (ECMP, failover). */
  sloppyTcp?: boolean;
  sloppySctp?: boolean;
  /** --sysctl NAME=VALUE: the kernel's IPVS sysctls by name (core/conn/sysctl.ts), applied over the flags above. */
  sysctls?: Partial<Sysctls>;
  /**
   * Announce the VIPs over BGP through BIRD (tvsd --announce bird ...). Without it, a configuration's
   * tvs_announce block starts the announcer, with its files under announceRunDir.
   */
  announce?: AnnounceSpec;
  /** Where BIRD's files go for a tvs_announce block; without it the block is ignored (a worker process). */
  announceRunDir?: string;
  /** FULLNAT local addresses (--local-addrs), announced with a tvs_announce block's VIPs. */
  announceLocals?: string[];
  /** Sync daemons to start with tvsd (--sync-daemon), before the configuration and any announcement. */
  syncDaemons?: SyncDaemonSpec[];
  clock?: Clock;
  /**
   * The firewall-mark rules (--fwmark-rule, --fwmark-rules FILE), read at start and on every
   * reload; throws (with every FILE:LINE:COL problem) when a file is unreadable or wrong.
   */
  fwmarkRules?: () => FwmarkRule[];
  /**
   * The system under VRRP (raw sockets, VIP ownership for this plane), made on first use: a
   * configuration with vrrp_instance blocks runs them. Absent: such a configuration is refused.
   */
  vrrp?: (plane: DataPlane) => { host: VrrpHost; vips: VipDriver };
}

export class Daemon {
  readonly clock: Clock;
  readonly services: ServiceTable;
  readonly conns: ConnTable;
  readonly estimator: RateEstimator;
  readonly director: Director;
  /** Connection sync daemons (ipvsadm --start-daemon / --stop-daemon, keepalived's lvs_sync_daemon). */
  readonly sync: SyncDaemons;
  /** keepalived's lvs_sync_daemon: the sync daemons following a VRRP instance's state. */
  readonly lvsSync: LvsSyncDriver;
  readonly log: Logger;
  /** What an operator follows: health transitions, quorum, reloads, services added and removed. */
  readonly events = new EventBus();
  plane!: DataPlane;
  /** The BGP announcer (ECMP), when --announce or a tvs_announce block asks for one. */
  announce: AnnounceHost | undefined;
  /**
   * The VRRP engine (keepalived.conf vrrp_instance blocks); emits "state" (VrrpStateChange) on every
   * transition. Present when the daemon was given a way to reach the network (opts.vrrp).
   */
  readonly vrrp: VrrpManager | undefined;
  /** Runs the configuration's health checks; idle (no checks) without --config. */
  readonly health: HealthSupervisor;
  /** The configuration the supervisor runs now, to roll back to when a reload is refused. */
  #healthConfig: DirectorConfig | undefined;
  readonly #opts: DaemonOptions;
  readonly #started = performance.now();
  /** Services the plane carries, and the counters the estimator follows. */
  readonly #carried = new Set<VirtualService>();
  readonly #estimated = new Set<Counters>();
  #timers: NodeJS.Timeout[] = [];
  #lastReload: { ok: boolean; at: string; message: string } | undefined;
  /** start() has finished: a reload's tvs_announce change restarts BIRD from now on. */
  #running = false;
  #planeConns: readonly ConnLike[] | undefined;
  /** The firewall-mark rules in force (the packet plane classifies with them). */
  #fwmarkRules: readonly FwmarkRule[] = [];

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
    this.log = opts.log;
    this.clock = opts.clock ?? { now: () => performance.now() };
    const env: SchedEnv = { clock: this.clock, random: () => randomInt(0, 0x100000000) >>> 0 };
    const registry = createDefaultRegistry();
    this.services = new ServiceTable(registry, env);
    this.conns = new ConnTable({
      services: this.services,
      ...(opts.connLimit !== undefined ? { limit: opts.connLimit } : {}),
      options: {
        ...(opts.expireNodestConn !== undefined ? { expireNodestConn: opts.expireNodestConn } : {}),
        ...(opts.expireQuiescentTemplate !== undefined
          ? { expireQuiescentTemplate: opts.expireQuiescentTemplate }
          : {}),
        ...(opts.sloppyTcp !== undefined ? { sloppyTcp: opts.sloppyTcp } : {}),
        ...(opts.sloppySctp !== undefined ? { sloppySctp: opts.sloppySctp } : {}),
      },
      ...(opts.sysctls !== undefined ? { sysctls: opts.sysctls } : {}),
    });
    this.estimator = new RateEstimator();
    // The Director lists the daemon's connection table, or, while a snapshot is being taken from
    // a plane that keeps its flows elsewhere (packet workers), the entries the plane returned.
    const conns = this.conns;
    this.sync = createSyncDaemons({
      conns,
      plane: () => this.plane as DataPlane | undefined,
      log: this.log,
      now: () => this.clock.now(),
    });
    this.lvsSync = new LvsSyncDriver(this.sync, this.log.child({ part: "sync" }));
    this.director = new Director({
      sync: this.sync,
      registry,
      env,
      services: this.services,
      conns: {
        entries: () => this.#planeConns ?? conns.entries(),
        timeouts: () => conns.timeouts(),
        setTimeouts: (t) => conns.setTimeouts(t),
      },
      rates: (c) => this.estimator.rates(c),
    });
    if (opts.vrrp) {
      const make = opts.vrrp;
      let made: { host: VrrpHost; vips: VipDriver } | undefined;
      const sys = () => {
        made ??= make(this.plane);
        return made;
      };
      // Built on first use, so a daemon without VRRP never loads raw-socket support.
      const host: VrrpHost = {
        open: (o, rx) => sys().host.open(o, rx),
        interfaceExists: (i) => sys().host.interfaceExists(i),
        linkUp: (i) => sys().host.linkUp(i),
        primaryAddress: (i, f) => sys().host.primaryAddress(i, f),
        announce: (i, a) => sys().host.announce(i, a),
      };
      const vips: VipDriver = {
        own: (v, i) => sys().vips.own(v, i),
        release: (v, i) => sys().vips.release(v, i),
      };
      this.vrrp = new VrrpManager({ host, vips, log: this.log.child({ part: "vrrp" }) });
      this.vrrp.on("state", (e: VrrpStateChange) => {
        this.events.publish(vrrpStateEvent(e));
        this.lvsSync.onState(e);
      });
    } else this.vrrp = undefined;
    const healthLog = this.log.child({ part: "health" });
    this.health = new HealthSupervisor({
      // Through the daemon, so the plane vets and learns of every change the checks make.
      executor: { services: this.services, exec: (r) => this.exec(r) },
      log: healthLog,
      // TCP_CHECK through the native addon's batch prober when it is built; else libuv sockets.
      createProber: () => {
        try {
          return new TcpProber();
        } catch (err) {
          healthLog.info("TCP connect checks use libuv sockets", { reason: (err as Error).message });
          return undefined;
        }
      },
      onEvent: (e) =>
        this.events.publish({
          type: e.type,
          service: e.service,
          ...(e.dest !== undefined ? { dest: e.dest } : {}),
          message: `${EVENT_TITLE[e.type]}${e.dest !== undefined ? ` ${e.dest}` : ""} (${e.service}): ${e.reason}`,
          detail: { reason: e.reason },
        }),
      adaptDest: (key, spec) => {
        try {
          return this.plane.admitDest(key, spec, "add-dest");
        } catch {
          return spec;
        }
      },
    });
  }

  /** Build the plane, apply the initial desired state, start the timers. Throws when a VIP cannot be bound. */
  async start(): Promise<void> {
    this.plane = await this.#opts.makePlane({
      services: this.services,
      conns: this.conns,
      clock: this.clock,
      log: this.log.child({ plane: "dataplane" }),
    });
    await this.plane.start();
    this.#syncCounters();
    for (const d of this.#opts.syncDaemons ?? [])
      try {
        this.sync.start(d);
      } catch (err) {
        throw new Error(`--sync-daemon ${d.state}:${d.mcastIfn}: ${err instanceof Error ? err.message : String(err)}`);
      }
    const got = this.#opts.source ? await this.#opts.source() : undefined;
    // Rules before services: a fwmark service that arrives finds its rules (no spurious warning).
    await this.#setFwmarkRules(this.#wantedFwmarkRules(got));
    if (got) await this.#applySource(got);
    if (this.#opts.announce) this.announce = this.#makeAnnounce(this.#opts.announce);
    if (this.announce) await this.announce.start();
    this.#running = true;
    this.#timers.push(
      setInterval(() => this.#expire(), EXPIRE_INTERVAL_MS),
      setInterval(() => void this.#tickEstimator(), ESTIMATOR_INTERVAL_MS),
    );
  }

  #makeAnnounce(spec: AnnounceSpec): AnnounceHost {
    return new AnnounceHost(spec, {
      services: this.services,
      quorumUp: (id) => this.health.quorumUp(id),
      log: this.log.child({ part: "announce" }),
      // A director joining a sync mesh attracts flows only once it holds their entries.
      hold: () => (this.sync.resyncPending() ? "waiting for the sync backup's bulk resync" : undefined),
    });
  }

  /** The estimator samples the counters; a plane with its own tables refreshes them first. */
  async #tickEstimator(): Promise<void> {
    try {
      await this.plane.collect?.(false);
    } catch (err) {
      this.log.warn("Cannot collect counters from the data plane", { err });
    }
    this.estimator.tick(this.clock.now());
  }

  #expire(): void {
    try {
      this.conns.heapUsed = heapUsedFraction();
      this.conns.expire(this.clock.now());
    } catch (err) {
      this.log.error("Connection expiry failed", { err });
    }
  }

  /** Vet a request with the data plane; returns it with the plane's adaptations (e.g. -g → masq). */
  #admit(req: ExecRequest): ExecRequest {
    const p = this.plane;
    switch (req.op) {
      case "add-service":
      case "edit-service":
        p.admitService(req.key, req.options, req.op);
        return req;
      case "add-dest":
      case "edit-dest":
        return { ...req, dest: p.admitDest(req.key, req.dest, req.op) };
      case "batch": {
        const requests = req.requests.map((r, i) => {
          try {
            return this.#admit(r);
          } catch (err) {
            if (err instanceof CoreError) Object.assign(err, { index: i });
            throw err;
          }
        });
        return { op: "batch", requests };
      }
      default:
        return req;
    }
  }

  /**
   * Apply one control request; throws CoreError (with `index` for a batch) and leaves state as it
   * was. All or nothing: the request is checked against a copy of the tables, then the plane
   * acquires what the new services need (binds their VIPs), and only then do the tables change,
   * so a VIP that cannot be bound refuses the whole change with the index of its request.
   */
  async exec(req: ExecRequest): Promise<void> {
    const admitted = this.#admit(req);
    const planned = plannedServices(admitted);
    let prepared: { release(): void } | undefined;
    if (planned.length > 0 && this.plane.prepare) {
      this.director.check(admitted);
      try {
        prepared = await this.plane.prepare(planned);
      } catch (err) {
        // A single request is not a batch: its error carries no index.
        if (admitted.op !== "batch" && err instanceof BatchError) throw new CoreError(err.code, err.op, err.message);
        throw err;
      }
    }
    try {
      this.director.exec(admitted);
      this.#zeroPlane(admitted);
      await this.#syncPlane();
    } finally {
      prepared?.release();
    }
    this.announce?.update();
    if (admitted.op === "start-daemon") {
      const d = admitted.daemon;
      this.events.publish({
        type: "sync-state",
        message: `Sync ${d.state} daemon started on ${d.mcastIfn} (syncid ${d.syncId})`,
        detail: { role: d.state, interface: d.mcastIfn, syncid: d.syncId, running: true },
      });
    } else if (admitted.op === "stop-daemon")
      this.events.publish({
        type: "sync-state",
        message: `Sync ${admitted.state} daemon stopped`,
        detail: { role: admitted.state, running: false },
      });
  }

  /** Pass ipvsadm -Z (alone or inside a batch) on to a plane that keeps its own counters. */
  #zeroPlane(req: ExecRequest): void {
    if (req.op === "zero") this.plane.zeroed?.(req.key);
    else if (req.op === "batch") for (const r of req.requests) this.#zeroPlane(r);
  }

  /** Make the tables equal `desired` with the fewest changes (start, SIGHUP, POST /v1/reload). */
  async applyDesired(desired: DesiredState): Promise<number> {
    const requests = reconcile(desired, this.services, {
      adaptDest: (key: ServiceKey, spec: DestSpec) => {
        try {
          return this.plane.admitDest(key, spec, "add-dest");
        } catch {
          return spec; // refused again (with its message) when applied
        }
      },
    });
    if (requests.length > 0) await this.exec({ op: "batch", requests });
    return requests.length;
  }

  /** Apply what a source gave: a config's health settings first, then its (health-adjusted) services. */
  async #applySource(got: DesiredState | DirectorConfig): Promise<number> {
    if (!isDirectorConfig(got)) return this.applyDesired(got);
    // tvs_announce drives the announcer unless tvsd's options do (they win) or this is a worker.
    const runDir = this.#opts.announceRunDir;
    const fromConfig = !this.#opts.announce && runDir !== undefined;
    const wanted =
      fromConfig && got.announce
        ? announceSpecFromConfig(got.announce, runDir, this.#opts.announceLocals ?? [])
        : undefined;
    // VRRP first resolves against this host (interfaces, addresses): a problem refuses the whole
    // change before anything moves. Services on its VIPs may then wait for the VIP to arrive.
    let vrrp: PreparedVrrp | undefined;
    if (got.vrrp.instances.length > 0 || this.vrrp?.running) {
      if (!this.vrrp)
        throw new CoreError(
          "EINVAL",
          "reload",
          "This tvsd process does not run VRRP (vrrp_instance blocks need tvsd with one worker)",
        );
      vrrp = this.vrrp.prepare(got.vrrp, got.globals);
      const managed = VrrpManager.managedVips(got.vrrp);
      this.plane.expectVips?.(managed);
      // A plane answers for every VIP until told otherwise: release the ones no MASTER here holds
      // before their services arrive, so a BACKUP never answers ARP/ND for them, not even briefly.
      const held = new Set(
        this.vrrp
          .status()
          .filter((i) => i.vipsOwned)
          .flatMap((i) => i.virtualIpaddresses.map((v) => v.split("/")[0])),
      );
      for (const a of managed) if (!held.has(a)) await this.plane.setVipOwned?.(a, false);
    }
    this.lvsSync.check(got.lvsSyncDaemon);
    const previous = this.#healthConfig;
    await this.health.apply(got);
    let n: number;
    try {
      n = await this.applyDesired(this.health.effective(got.desired));
      this.#healthConfig = got;
    } catch (err) {
      if (previous) await this.health.apply(previous).catch(() => undefined);
      throw err;
    }
    if (vrrp && this.vrrp) await this.vrrp.apply(vrrp);
    this.lvsSync.apply(got.lvsSyncDaemon, this.vrrp);
    if (fromConfig) await this.#applyAnnounceConfig(wanted);
    return n;
  }

  /**
   * Follow the tvs_announce block: at start only record it (start() runs BIRD); on a reload that
   * adds, changes or removes it, stop the running BIRD (its sessions close, the router withdraws)
   * and start one with the new settings. A BIRD that will not start is logged; the table stays.
   */
  async #applyAnnounceConfig(spec: AnnounceSpec | undefined): Promise<void> {
    const current = this.announce;
    if (JSON.stringify(spec) === JSON.stringify(current?.spec)) return;
    if (!this.#running) {
      this.announce = spec ? this.#makeAnnounce(spec) : undefined;
      return;
    }
    this.announce = undefined;
    if (current) await current.stop().catch((err) => this.log.error("BIRD stop failed", { err }));
    if (!spec) return;
    const next = this.#makeAnnounce(spec);
    try {
      await next.start();
      this.announce = next;
      this.log.info("tvs_announce applied: BIRD restarted with the new settings", { peers: spec.peers.length });
    } catch (err) {
      this.log.error("tvs_announce: BIRD did not start; nothing is announced", { err });
      await next.stop().catch(() => undefined);
    }
  }

  /**
   * The firewall-mark rules wanted now: tvsd's own (--fwmark-rule, --fwmark-rules FILE, read
   * again here) first, then a keepalived.conf's tvs_fwmark_rules block. Throws when a file is bad.
   */
  #wantedFwmarkRules(got: DesiredState | DirectorConfig | undefined): FwmarkRule[] {
    const own = this.#opts.fwmarkRules?.() ?? [];
    const fromConfig = got !== undefined && isDirectorConfig(got) ? (got.fwmarkRules ?? []) : [];
    const all = [...own, ...fromConfig];
    if (all.length > MAX_FWMARK_RULES)
      throw new CoreError(
        "EINVAL",
        "reload",
        `Too many firewall-mark rules (${all.length}; at most ${MAX_FWMARK_RULES})`,
      );
    return all;
  }

  /**
   * Hand the plane new firewall-mark rules; refused (CoreError, rules unchanged) when the plane
   * cannot classify frames (the socket plane) or cannot carry these rules.
   */
  async #setFwmarkRules(rules: readonly FwmarkRule[]): Promise<void> {
    const set = this.plane.setFwmarkRules?.bind(this.plane);
    if (!set) {
      if (rules.length > 0)
        throw new CoreError(
          "EOPNOTSUPP",
          "reload",
          `Firewall-mark rules need the packet data plane (--dataplane packet): the ${this.plane.name} plane sees no frames to classify (its fwmark services listen on --fwmark-addr addresses)`,
        );
      return;
    }
    await set(rules);
    this.#fwmarkRules = rules;
  }

  /** GET /v1/fwmark: the rules in force, the fwmark services they feed, and the gaps. */
  fwmark(): Promise<FwmarkView> {
    const keys = this.services.services().map((s) => s.key);
    return Promise.resolve(
      fwmarkView(
        this.#fwmarkRules,
        keys,
        this.plane.setFwmarkRules
          ? { supported: true }
          : {
              supported: false,
              note: `The ${this.plane.name} data plane sees no frames to classify: its fwmark services listen on the addresses tvsd's --fwmark-addr MARK=PROTO:ADDR:PORT gives them`,
            },
      ),
    );
  }

  /**
   * Re-read the source (and the firewall-mark rules files) and reconcile; a broken source or
   * rules file is refused and the running state stays (rules and services both).
   */
  async reload(): Promise<void> {
    const source = this.#opts.source;
    const rulesSource = this.#opts.fwmarkRules;
    if (!source && !rulesSource)
      throw new CoreError("EINVAL", "reload", "Nothing to reload: tvsd was started without --rules or --config");
    const at = new Date().toISOString();
    try {
      // Read everything before anything changes.
      const got = source ? await source() : undefined;
      const rules = this.#wantedFwmarkRules(got);
      const before = this.#fwmarkRules;
      await this.#setFwmarkRules(rules);
      let n = 0;
      try {
        if (got) n = await this.#applySource(got);
      } catch (err) {
        await this.#setFwmarkRules(before).catch(() => undefined);
        throw err;
      }
      if (JSON.stringify(rules) !== JSON.stringify(before)) {
        n++;
        this.log.info("Firewall-mark rules replaced", { rules: rules.length, before: before.length });
      }
      this.#lastReload = { ok: true, at, message: `Applied ${n} change(s)` };
      this.log.info("Reloaded", { source: this.#opts.sourceName, changes: n });
      this.events.publish({
        type: "reload",
        message: `Reloaded ${this.#opts.sourceName ?? ""}: ${n} change(s)`,
        detail: { changes: n },
      });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.#lastReload = { ok: false, at, message };
      this.log.error("Reload refused; the running state is unchanged", { source: this.#opts.sourceName, err: message });
      this.events.publish({ type: "reload-refused", message: `Reload refused: ${message}` });
      if (err instanceof BatchError)
        throw new BatchError({ code: err.code, op: "reload", message: `Reload refused: ${message}` }, err.index);
      if (err instanceof CoreError) throw new CoreError(err.code, "reload", `Reload refused: ${message}`);
      throw new CoreError("EINVAL", "reload", `Reload refused: ${message}`);
    }
  }

  /**
   * Tell the plane what changed. A service it cannot carry (its VIP cannot be bound) is taken out
   * of the table again and the error reported, so the table never shows a service nobody serves.
   */
  async #syncPlane(): Promise<void> {
    const live = new Set(this.services.services());
    for (const svc of [...this.#carried]) {
      if (!live.has(svc)) {
        this.#carried.delete(svc);
        this.plane.serviceRemoved(svc);
        this.events.publish({ type: "service-removed", service: svc.id, message: `Service removed: ${svc.id}` });
      }
    }
    let failure: unknown;
    const added: VirtualService[] = [];
    for (const svc of live) {
      if (this.#carried.has(svc)) this.plane.serviceChanged(svc);
      else added.push(svc);
    }
    // All at once, so a plane can take a batch of new services in one step (packet workers get
    // one table image, not one per service).
    const results = await Promise.allSettled(added.map((svc) => this.plane.serviceAdded(svc)));
    for (const [i, r] of results.entries()) {
      const svc = added[i]!;
      if (r.status === "fulfilled") {
        this.#carried.add(svc);
        this.events.publish({ type: "service-added", service: svc.id, message: `Service added: ${svc.id}` });
        continue;
      }
      const err = r.reason;
      failure ??= err;
      this.log.error("Cannot carry service; removing it", { service: svc.id, err });
      try {
        this.services.deleteService(svc.key);
      } catch {
        // already gone
      }
    }
    this.#syncCounters();
    if (failure !== undefined) throw failure;
  }

  /** Follow exactly the live counters with the estimator (global, services, destinations). */
  #syncCounters(): void {
    const want = new Set<Counters>([this.services.stats]);
    for (const svc of this.services.services()) {
      want.add(svc.stats);
      for (const d of svc.dests) want.add(d.stats);
    }
    for (const c of this.#estimated) {
      if (!want.has(c)) {
        this.estimator.remove(c);
        this.#estimated.delete(c);
      }
    }
    for (const c of want) {
      if (!this.#estimated.has(c)) {
        this.estimator.add(c);
        this.#estimated.add(c);
      }
    }
  }

  async snapshot(q: SnapshotRequest): Promise<Snapshot> {
    const conns = await this.plane.collect?.(q.conns);
    try {
      this.#planeConns = conns;
      return this.director.snapshot({ conns: q.conns, ...(q.service !== undefined ? { service: q.service } : {}) });
    } finally {
      this.#planeConns = undefined;
    }
  }

  /** The control API's sysctl route (server.ts): read all, or set one then read all. */
  sysctl(set?: { name: string; value: unknown }): Promise<SysctlView> {
    return set === undefined ? Promise.resolve(this.sysctlView()) : this.setSysctl(set.name, set.value);
  }

  /** GET /v1/sysctl: every sysctl by its kernel name, and what the defence strategy is doing. */
  sysctlView(): SysctlView {
    return { sysctls: this.conns.sysctls(), defense: this.conns.defense };
  }

  /**
   * POST /v1/sysctl: set one by its kernel name. Refused (table unchanged) when this data plane
   * would ignore it; a plane with its own tables (packet workers) gets it before this resolves.
   */
  async setSysctl(name: string, value: unknown): Promise<SysctlView> {
    const c = checkSysctl(name, value, "sysctl");
    checkSysctlForPlane(c.name, c.value, this.plane?.name ?? "proxy");
    if (c.name === "stateless_syn" && c.value === 1) {
      const refused = statelessSynRefusal(this.services.services());
      if (refused !== undefined) throw new CoreError("EINVAL", "conn", refused);
    }
    this.conns.setSysctl(c.name, c.value);
    await this.plane?.sysctlsChanged?.();
    this.log.info("sysctl set", { name: c.name, value: c.value });
    return this.sysctlView();
  }

  async status(): Promise<StatusView> {
    await this.plane.collect?.(false);
    const notes = [...this.plane.notes()];
    const held = this.plane.connCount?.();
    if (held !== undefined) notes.push(`Connection entries on the data plane: ${held} (the plane's own tables)`);
    else
      notes.push(
        `Connection table: ${this.conns.size} entries (limit ${this.conns.limit}, dropped ${this.conns.dropped}${this.conns.reclaimed > 0 ? `, reclaimed ${this.conns.reclaimed}` : ""})`,
      );
    notes.push(`Open flows on the data plane: ${this.plane.openFlows()}`);
    notes.push(...this.sync.status());
    const applied = this.plane.syncedCounts?.();
    if (applied !== undefined && this.sync.running().some((d) => d.state === "backup"))
      notes.push(
        `Sync records applied by the packet workers: ${applied.created} created, ${applied.updated} updated, ${applied.refused} refused (connection limit)`,
      );
    if (this.plane.syncTemplatesOnly) notes.push(SOCKET_PLANE_SYNC_NOTE);
    notes.push(
      ...pitfallNotes({
        plane: this.plane.name,
        snapshot: await this.snapshot(NO_CONNS),
        hostAddrs: hostAddresses(),
      }),
    );
    if (this.#fwmarkRules.length > 0)
      notes.push(`Firewall-mark rules: ${this.#fwmarkRules.length} (tvs fwmark lists them)`);
    if (this.#lastReload)
      notes.push(
        `Last reload ${this.#lastReload.at}: ${this.#lastReload.ok ? "ok" : "refused"}: ${this.#lastReload.message}`,
      );
    const view: StatusView = {
      dataplane: this.plane.name,
      pid: process.pid,
      uptimeMs: Math.round(performance.now() - this.#started),
      checks: this.health.status(),
      notes,
    };
    if (this.#opts.sourceName !== undefined) view.config = this.#opts.sourceName;
    if (this.vrrp?.running) view.vrrp = this.vrrp.status();
    if (this.announce) view.announce = this.announce.status();
    return view;
  }

  /** Step VRRP down, stop the timers and drain the plane (open connections get up to drainMs). */
  async stop(drainMs: number): Promise<void> {
    for (const t of this.#timers) clearInterval(t);
    this.#timers = [];
    // Withdraw the VIPs first: the router moves new flows to the other directors while the
    // connections open here drain.
    if (this.announce) await this.announce.drain().catch((err) => this.log.error("Withdrawal failed", { err }));
    // Step down first (priority 0, VIPs released) so the peer takes over after its skew while the
    // connections that are open here drain.
    if (this.vrrp) await this.vrrp.stop().catch((err) => this.log.error("VRRP stop failed", { err }));
    this.lvsSync.forget();
    this.sync.close();
    await this.health.stop();
    if (this.plane) await this.plane.stop(drainMs);
    if (this.announce) await this.announce.stop().catch((err) => this.log.error("BIRD stop failed", { err }));
  }
}
