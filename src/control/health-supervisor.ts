// The health supervisor: connects health-check results to the director, as keepalived's check
// subsystem does. It owns one HealthRunner (per-checker up/down with retry, alpha, delay_loop) and
// one ServerHealth (all checkers of a real server must be up; misc_dynamic / FILE_CHECK weights),
// and turns their per-server transitions into add-dest / edit-dest / del-dest requests through the
// executor's exec(), so counters and connections follow the normal rules (a removed destination
// with open connections goes to the trash and finishes them).
//
// Per service it keeps keepalived's quorum state (ipwrapper.c update_quorum_state): with
// threshold = quorum - hysteresis while the quorum is up and quorum + hysteresis while it is down,
// the quorum is lost when the live weight (sum of the effective weights of alive real servers) is 0
// or below the threshold, and gained when it reaches the threshold. Losing it runs quorum_down and,
// with a sorry server, puts the sorry server in and takes every real server out (see
// health/pool.ts); gaining it runs quorum_up, takes the sorry server out (weight 0 with
// sorry_server_inhibit) and puts the alive real servers back. While the sorry server is in use,
// real servers' transitions change only their flags (and run their notify scripts).
//
// Each transition is a diff of two pools (before, after), so only the destinations whose place
// changed are touched and a destination an operator edited by hand with tvsadm is left alone until
// its server changes. When a request fails because the table no longer matches (an operator removed
// or added the destination), the supervisor logs it and tries the equivalent request (add for a
// missing edit, edit for an existing add) and otherwise carries on. apply() (start and reload)
// converges the whole managed part of each live service to the pool.
//
// Reload: a real server whose checker specs are unchanged keeps its checkers and state; changed
// specs restart its checkers (state from the new specs: up, or down with alpha); removed servers
// and services stop being checked, and with omega (virtual_server omega or a checker's omega) an
// alive server's notify_down runs (and a service's quorum_down when its quorum was up), as on stop().

import type { DesiredService, DesiredState } from "../config/desired.ts";
import type { DirectorConfig, NotifyScript, RealServerHealth, ServiceHealth } from "../config/director-config.ts";
import { formatEndpoint } from "../core/addr.ts";
import type { Clock } from "../core/clock.ts";
import { type DestSpec, destSpec } from "../core/dest.ts";
import { diffDests } from "../core/dest-diff.ts";
import { isCoreError } from "../core/errors.ts";
import type { LogFields, Logger } from "../core/log.ts";
import { type ServiceKey, serviceKeyId, type VirtualService } from "../core/service.ts";
import { normalizeKey } from "../core/service-table.ts";
import type { Checker } from "../health/checker.ts";
import type { CheckerSpec } from "../health/checker-spec.ts";
import { type HealthEvent, HealthRunner, type HealthRunnerOptions, type TimerSource } from "../health/runner.ts";
import { ServerHealth, type ServerHealthEvent } from "../health/server-health.ts";
import type { CheckView, ExecRequest } from "./api/protocol.ts";
import { destKey, liveWeight, type PoolServer, type PoolSorry, poolDests, sorryInUse } from "./health/pool.ts";
import { DEFAULT_NOTIFY_TIMEOUT_MS, NotifyRunner } from "./notify.ts";

/** What the supervisor needs from the director: Director fits, and so does the daemon's wrapper. */
export interface HealthExecutor {
  readonly services: { services(): VirtualService[] };
  exec(req: ExecRequest): void | Promise<void>;
}

export interface HealthSupervisorOptions {
  executor: HealthExecutor;
  log: Logger;
  clock?: Clock;
  timers?: TimerSource;
  random?: () => number;
  /** Checker factory (tests pass fakes; default the built-in checkers). */
  createChecker?: (spec: CheckerSpec) => Checker;
  /** Engine for plain TCP connects (the daemon's native batch prober); see HealthRunnerOptions. */
  createProber?: HealthRunnerOptions["createProber"];
  /** delay_loop jitter in the runner (default true). */
  jitter?: boolean;
  /**
   * Adapt a destination as the data plane will on add (the daemon passes plane.admitDest, e.g. the
   * socket plane's -g → masq), so converging compares like with like and sends no needless edits.
   */
  adaptDest?: (key: ServiceKey, spec: DestSpec) => DestSpec;
  /** Time limit of a notify script (default 10 s); stop() waits for scripts at most this long. */
  notifyTimeoutMs?: number;
  /** Told of every real server down/up and quorum lost/gained (the daemon's event bus). */
  onEvent?: (e: SupervisorEvent) => void;
}

/** A transition the supervisor acted on, for the event feed. */
export interface SupervisorEvent {
  type: "dest-down" | "dest-up" | "quorum-lost" | "quorum-gained";
  service: string;
  /** "ADDR:PORT" of the real server (dest-down, dest-up). */
  dest?: string;
  reason: string;
}

interface Server {
  id: string;
  rs: RealServerHealth;
  dest: DestSpec;
  checkerIds: string[];
  /** JSON of the checker specs, to tell unchanged servers on reload. */
  specs: string;
  alive: boolean;
  weight: number;
}

interface Service {
  id: string;
  health: ServiceHealth;
  servers: Map<string, Server>;
  quorumUp: boolean;
}

export class HealthSupervisor {
  readonly #exec: HealthExecutor;
  readonly #log: Logger;
  readonly #runner: HealthRunner;
  readonly #serverHealth: ServerHealth;
  readonly #notify: NotifyRunner;
  readonly #adapt: ((key: ServiceKey, spec: DestSpec) => DestSpec) | undefined;
  readonly #services = new Map<string, Service>();
  readonly #serverIndex = new Map<string, { svc: Service; srv: Server }>();
  /** checker id → server, for status(). */
  readonly #checkerOf = new Map<string, { svc: Service; srv: Server }>();
  #chain: Promise<void> = Promise.resolve();
  #applying = false;
  #stopped = false;
  #ops = 0;
  readonly #clock: Clock;
  readonly #onEvent: ((e: SupervisorEvent) => void) | undefined;

  constructor(opts: HealthSupervisorOptions) {
    this.#clock = opts.clock ?? { now: () => performance.now() };
    this.#onEvent = opts.onEvent;
    this.#exec = opts.executor;
    this.#adapt = opts.adaptDest;
    this.#log = opts.log;
    this.#notify = new NotifyRunner({
      timeoutMs: opts.notifyTimeoutMs ?? DEFAULT_NOTIFY_TIMEOUT_MS,
      log: opts.log,
    });
    this.#serverHealth = new ServerHealth((e) => this.#onServer(e));
    this.#runner = new HealthRunner({
      onEvent: (e: HealthEvent) => this.#serverHealth.handle(e),
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.timers ? { timers: opts.timers } : {}),
      ...(opts.random ? { random: opts.random } : {}),
      ...(opts.createChecker ? { createChecker: opts.createChecker } : {}),
      ...(opts.jitter !== undefined ? { jitter: opts.jitter } : {}),
      ...(opts.createProber ? { createProber: opts.createProber } : {}),
    });
  }

  /** A supervised service's quorum state by serviceKeyId; undefined when it has no health settings. */
  quorumUp(serviceId: string): boolean | undefined {
    return this.#services.get(serviceId)?.quorumUp;
  }

  /** Requests sent to the executor so far (for tests and status notes). */
  get requests(): number {
    return this.#ops;
  }

  /**
   * Take a configuration (at start and on every reload): start, keep or stop checkers, carry
   * state over, re-evaluate quorums, and converge the live services it manages. Services not yet in
   * the table are left to the daemon's reconcile (give it effective(config.desired)). Resolves
   * when the resulting requests have been applied.
   */
  async apply(config: DirectorConfig): Promise<void> {
    if (this.#stopped) throw new Error("Health supervisor stopped: cannot apply a configuration");
    this.#applying = true;
    try {
      const seen = new Set<string>();
      config.health.forEach((h, i) => {
        const desired = config.desired.services[i];
        if (!desired) return;
        const id = serviceKeyId(normalizeKey(h.key, "add-service"));
        seen.add(id);
        this.#applyService(id, h, desired);
      });
      for (const [id, svc] of [...this.#services])
        if (!seen.has(id)) this.#dropService(svc, "Removed from the configuration");
    } finally {
      this.#applying = false;
    }
    for (const svc of this.#services.values()) this.#enqueue(() => this.#converge(svc));
    await this.idle();
  }

  /** Resolves once every queued request has been applied. */
  async idle(): Promise<void> {
    let last: Promise<void> | undefined;
    while (last !== this.#chain) {
      last = this.#chain;
      await last;
    }
  }

  /** Resolves once all notify scripts started so far have ended (each is time-limited). */
  notifyIdle(): Promise<void> {
    return this.#notify.idle();
  }

  /**
   * The desired state with health applied: health-checked services hold what their pool says
   * (dead servers absent or at weight 0, the sorry server during a quorum loss). Give this, not
   * config.desired, to the daemon's reconcile so a reload does not re-add dead servers.
   */
  effective(desired: DesiredState): DesiredState {
    return {
      services: desired.services.map((s): DesiredService => {
        const svc = this.#services.get(serviceKeyId(normalizeKey(s.key, "add-service")));
        if (!svc) return s;
        const pool = this.#pool(svc);
        const dests: DestSpec[] = [];
        for (const d of s.dests) {
          const p = pool.get(destKey(d.addr, d.port));
          if (p) dests.push(p);
          pool.delete(destKey(d.addr, d.port));
        }
        dests.push(...pool.values());
        return { ...s, dests };
      }),
    };
  }

  /**
   * Stop checking. With omega, alive servers' notify_down and (quorum up) quorum_down run; the
   * table is left as it is. Resolves when queued requests are applied and the scripts have ended.
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    for (const svc of [...this.#services.values()]) this.#dropService(svc, "Stopping");
    this.#stopped = true;
    this.#runner.stop();
    await this.idle();
    await this.#notify.idle();
  }

  /** One line per checker (and per unchecked real server and sorry server) for GET /v1/status. */
  status(): CheckView[] {
    const out: CheckView[] = [];
    const byChecker = new Map(this.#runner.status().map((s) => [s.id, s]));
    for (const svc of this.#services.values()) {
      for (const srv of svc.servers.values()) {
        const dest = formatEndpoint(srv.dest.addr, srv.dest.port);
        if (srv.checkerIds.length === 0) {
          out.push({
            service: svc.id,
            dest,
            checker: "none",
            state: "up",
            lastResult: "none",
            reason: "No checker: always up",
            sinceChangeMs: 0,
          });
          continue;
        }
        for (const cid of srv.checkerIds) {
          const s = byChecker.get(cid);
          if (!s) continue;
          out.push({
            service: svc.id,
            dest,
            checker: s.checker,
            state: s.pending && !s.lastResult ? (s.state === "down" ? "down" : "unknown") : s.state,
            lastResult: s.lastResult ? (s.lastResult.ok ? "ok" : "failed") : "none",
            reason:
              s.lastResult?.reason ?? (s.state === "down" ? "Waiting for the first check (alpha)" : "Not checked yet"),
            sinceChangeMs: Math.round(s.sinceChangeMs),
            checks: s.checks,
            ...(s.lastResult ? { latencyMs: s.lastResult.latencyMs } : {}),
            ...(s.lastCheckAt !== undefined
              ? { lastCheckAgoMs: Math.max(0, Math.round(this.#clock.now() - s.lastCheckAt)) }
              : {}),
          });
        }
      }
      const sorry = svc.health.sorryServer;
      if (sorry) {
        const inUse = sorryInUse(sorry, svc.quorumUp);
        out.push({
          service: svc.id,
          dest: formatEndpoint(sorry.dest.addr, sorry.dest.port),
          checker: "sorry_server",
          state: inUse ? "up" : "down",
          lastResult: "none",
          reason: inUse ? "Quorum lost: sorry server in use" : "Quorum up: sorry server not in use",
          sinceChangeMs: 0,
        });
      }
    }
    return out;
  }

  // ---- configuration ----

  #applyService(id: string, h: ServiceHealth, desired: DesiredService): void {
    let svc = this.#services.get(id);
    const isNew = svc === undefined;
    if (!svc) {
      svc = { id, health: h, servers: new Map(), quorumUp: true };
      this.#services.set(id, svc);
    }
    svc.health = h;
    const dests = new Map(desired.dests.map((d) => [destKey(d.addr, d.port), d]));
    const wanted = new Map<string, Server>();
    for (const rs of h.realServers) {
      const k = destKey(rs.addr, rs.port);
      const dest = dests.get(k) ?? destSpec(rs.addr, rs.port, { weight: rs.weight });
      const specs = JSON.stringify(rs.checkers);
      const old = svc.servers.get(k);
      if (old && old.specs === specs) {
        old.rs = rs;
        old.dest = dest;
        this.#serverHealth.setConfiguredWeight(old.id, rs.weight);
        const st = this.#serverHealth.state(old.id);
        if (st) {
          old.alive = st.up;
          old.weight = st.weight;
        }
        wanted.set(k, old);
        continue;
      }
      if (old) this.#dropServer(svc, old, false, "Checkers changed");
      wanted.set(k, this.#addServer(svc, k, rs, dest, specs));
    }
    for (const [k, old] of svc.servers)
      if (!wanted.has(k)) this.#dropServer(svc, old, true, "Removed from the configuration");
    svc.servers = wanted;
    if (isNew) {
      svc.quorumUp = liveWeight(this.#poolServers(svc)) >= h.quorum + h.hysteresis;
      if (!svc.quorumUp) {
        this.#log.info("Starting with quorum down", this.#quorumFields(svc));
        if (h.quorumDown) this.#run(h.quorumDown, svc.id, "quorum_down");
      }
    } else this.#updateQuorum(svc);
  }

  #addServer(svc: Service, k: string, rs: RealServerHealth, dest: DestSpec, specs: string): Server {
    const id = `${svc.id}|${k}`;
    const srv: Server = { id, rs, dest, checkerIds: [], specs, alive: true, weight: rs.weight };
    const checkers: { id: string; up: boolean }[] = [];
    rs.checkers.forEach((spec, i) => {
      const cid = `${id}|${i}`;
      try {
        this.#runner.add({ id: cid, address: rs.addr, port: rs.port, spec });
        srv.checkerIds.push(cid);
        this.#checkerOf.set(cid, { svc, srv });
        checkers.push({ id: cid, up: this.#runner.state(cid) === "up" });
      } catch (err) {
        this.#log.error("Cannot start health check; the real server is treated as down", {
          service: svc.id,
          dest: formatEndpoint(rs.addr, rs.port),
          checker: spec.type,
          err,
        });
        checkers.push({ id: cid, up: false });
      }
    });
    this.#serverHealth.addServer(id, rs.weight, checkers);
    const st = this.#serverHealth.state(id);
    srv.alive = st?.up ?? true;
    srv.weight = st?.weight ?? rs.weight;
    this.#serverIndex.set(id, { svc, srv });
    return srv;
  }

  #omega(svc: Service, srv: Server): boolean {
    return svc.health.omega || srv.rs.checkers.some((c) => c.omega);
  }

  /** Stop checking a server (its events are ignored from here on); omega runs notify_down. */
  #dropServer(svc: Service, srv: Server, omega: boolean, why: string): void {
    this.#serverHealth.removeServer(srv.id);
    this.#serverIndex.delete(srv.id);
    for (const cid of srv.checkerIds) {
      this.#checkerOf.delete(cid);
      this.#runner.remove(cid);
    }
    if (omega && srv.alive && this.#omega(svc, srv)) {
      this.#log.info("Real server down (omega)", {
        service: svc.id,
        dest: formatEndpoint(srv.dest.addr, srv.dest.port),
        why,
      });
      if (srv.rs.notifyDown) this.#run(srv.rs.notifyDown, svc.id, "notify_down");
    }
  }

  #dropService(svc: Service, why: string): void {
    for (const srv of svc.servers.values()) this.#dropServer(svc, srv, true, why);
    if (svc.health.omega && svc.quorumUp && svc.health.quorumDown)
      this.#run(svc.health.quorumDown, svc.id, "quorum_down");
    svc.servers.clear();
    this.#services.delete(svc.id);
  }

  // ---- transitions ----

  #poolServers(svc: Service): PoolServer[] {
    return [...svc.servers.values()].map((s) => ({
      dest: s.dest,
      alive: s.alive,
      weight: s.weight,
      inhibit: s.rs.inhibitOnFailure,
    }));
  }

  #sorry(svc: Service): PoolSorry | undefined {
    return svc.health.sorryServer;
  }

  #pool(svc: Service): Map<string, DestSpec> {
    return poolDests(this.#poolServers(svc), this.#sorry(svc), svc.quorumUp);
  }

  #onServer(e: ServerHealthEvent): void {
    const loc = this.#serverIndex.get(e.server);
    if (!loc || this.#stopped) return;
    const { svc, srv } = loc;
    const before = this.#applying ? undefined : this.#pool(svc);
    const dest = formatEndpoint(srv.dest.addr, srv.dest.port);
    if (e.type === "down") {
      srv.alive = false;
      this.#log.info(srv.rs.inhibitOnFailure ? "Disabling real server" : "Removing real server", {
        service: svc.id,
        dest,
        reason: e.reason,
      });
      this.#emit({ type: "dest-down", service: svc.id, dest, reason: e.reason });
      if (srv.rs.notifyDown) this.#run(srv.rs.notifyDown, svc.id, "notify_down");
    } else {
      const wasAlive = srv.alive;
      srv.alive = true;
      srv.weight = e.weight;
      if (e.type === "up" || !wasAlive) {
        this.#log.info(srv.rs.inhibitOnFailure ? "Enabling real server" : "Adding real server", {
          service: svc.id,
          dest,
          reason: e.reason,
          weight: e.weight,
        });
        this.#emit({ type: "dest-up", service: svc.id, dest, reason: e.reason });
        if (srv.rs.notifyUp) this.#run(srv.rs.notifyUp, svc.id, "notify_up");
      } else
        this.#log.info("Changing real server weight", { service: svc.id, dest, weight: e.weight, reason: e.reason });
    }
    if (this.#applying || !before) return;
    this.#updateQuorum(svc);
    const after = this.#pool(svc);
    this.#enqueue(() => this.#applyDiff(svc, before, after));
  }

  #emit(e: SupervisorEvent): void {
    try {
      this.#onEvent?.(e);
    } catch (err) {
      this.#log.warn("Event listener failed", { err });
    }
  }

  #quorumFields(svc: Service): LogFields {
    return {
      service: svc.id,
      quorum: svc.health.quorum,
      hysteresis: svc.health.hysteresis,
      liveWeight: liveWeight(this.#poolServers(svc)),
    };
  }

  /** keepalived's update_quorum_state: gain at quorum + hysteresis, lose below quorum - hysteresis (or at 0). */
  #updateQuorum(svc: Service): void {
    const h = svc.health;
    const sum = liveWeight(this.#poolServers(svc));
    const threshold = h.quorum + (svc.quorumUp ? -1 : 1) * h.hysteresis;
    if (!svc.quorumUp && sum >= threshold) {
      svc.quorumUp = true;
      this.#log.info("Gained quorum", this.#quorumFields(svc));
      this.#emit({
        type: "quorum-gained",
        service: svc.id,
        reason: `Live weight ${sum} (quorum ${h.quorum}, hysteresis ${h.hysteresis})`,
      });
      if (h.sorryServer)
        this.#log.info(h.sorryServer.inhibit ? "Disabling sorry server" : "Removing sorry server", { service: svc.id });
      if (h.quorumUp) this.#run(h.quorumUp, svc.id, "quorum_up");
    } else if (svc.quorumUp && (sum === 0 || sum < threshold)) {
      svc.quorumUp = false;
      this.#log.info("Lost quorum", this.#quorumFields(svc));
      this.#emit({
        type: "quorum-lost",
        service: svc.id,
        reason: `Live weight ${sum} (quorum ${h.quorum}, hysteresis ${h.hysteresis})`,
      });
      if (h.sorryServer)
        this.#log.info(h.sorryServer.inhibit ? "Enabling sorry server" : "Adding sorry server", { service: svc.id });
      if (h.quorumDown) this.#run(h.quorumDown, svc.id, "quorum_down");
    }
  }

  #run(script: NotifyScript, service: string, kind: string): void {
    this.#log.debug("Running notify script", { service, kind, command: script.command });
    void this.#notify.run(script);
  }

  // ---- requests ----

  #enqueue(step: () => Promise<void>): void {
    this.#chain = this.#chain.then(step).catch((err: unknown) => {
      this.#log.error("Health supervisor step failed", { err });
    });
  }

  #live(svc: Service): VirtualService | undefined {
    return this.#exec.services.services().find((s) => s.id === svc.id);
  }

  /** Apply the difference between two pools of a service (core's destination diff). */
  async #applyDiff(svc: Service, before: Map<string, DestSpec>, after: Map<string, DestSpec>): Promise<void> {
    const live = this.#live(svc);
    if (!live) {
      this.#log.warn("Health-checked service is not in the table; nothing changed", { service: svc.id });
      return;
    }
    for (const req of diffDests(live.key, before.values(), after.values())) await this.#send(svc, req);
  }

  /** Bring the managed destinations of a live service to its pool (start, reload). */
  async #converge(svc: Service): Promise<void> {
    const live = this.#live(svc);
    if (!live) return;
    const pool = [...this.#pool(svc).values()].map((d) => this.#adapted(live.key, d));
    const managed = new Set([...svc.servers.keys()]);
    const sorry = svc.health.sorryServer;
    if (sorry) managed.add(destKey(sorry.dest.addr, sorry.dest.port));
    const have = live.dests.map((d) => d.spec());
    const owned = (d: DestSpec) => managed.has(destKey(d.addr, d.port));
    for (const req of diffDests(live.key, have, pool, owned)) await this.#send(svc, req);
  }

  #adapted(key: ServiceKey, d: DestSpec): DestSpec {
    if (!this.#adapt) return d;
    try {
      return this.#adapt(key, d);
    } catch {
      return d; // refused again, with its message, when sent
    }
  }

  /**
   * One request; when the table no longer matches (an operator changed it by hand) the equivalent
   * request is tried once (edit for an existing add, add for a missing edit), otherwise logged.
   */
  async #send(svc: Service, req: ExecRequest): Promise<void> {
    try {
      this.#ops++;
      await this.#exec.exec(req);
      return;
    } catch (err) {
      const code = isCoreError(err) ? err.code : undefined;
      let retry: ExecRequest | undefined;
      if (req.op === "add-dest" && code === "EEXIST") retry = { ...req, op: "edit-dest" };
      else if (req.op === "edit-dest" && code === "ENOENT") retry = { ...req, op: "add-dest" };
      const where =
        req.op === "del-dest"
          ? formatEndpoint(req.addr, req.port)
          : "dest" in req
            ? formatEndpoint(req.dest.addr, req.dest.port)
            : "";
      if (req.op === "del-dest" && code === "ENOENT") {
        this.#log.warn("Destination already removed (changed by hand?)", { service: svc.id, dest: where });
        return;
      }
      if (!retry) {
        this.#log.warn("Health change refused by the director", { service: svc.id, dest: where, op: req.op, err });
        return;
      }
      this.#log.warn("Destination changed by hand; retrying", { service: svc.id, dest: where, op: retry.op });
      try {
        this.#ops++;
        await this.#exec.exec(retry);
      } catch (err2) {
        this.#log.warn("Health change refused by the director", {
          service: svc.id,
          dest: where,
          op: retry.op,
          err: err2,
        });
      }
    }
  }
}
