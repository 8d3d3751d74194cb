// The Director: owner of the service table (and, once wired, the connection table and the sync
// daemons) that applies control API requests. `exec(req)` applies one ExecRequest or throws a
// CoreError carrying the kernel's errno for the same request; `snapshot(query)` reads the tables
// into the protocol's plain-data Snapshot. Transport-free: tvsd's HTTP server calls these, tests
// call them directly.
//
// A batch (ipvsadm -R) is all or nothing: it is first dry-run on a shadow ServiceTable rebuilt from
// the live specs (same services, options and destinations in the same kernel list order), so any
// request the live table would refuse is found before anything changes; only then is it applied
// for real. The live apply cannot then fail on validation, because the shadow saw identical state.

import type { ConnEntry } from "../core/conn/conn-entry.ts";
import type { Dest } from "../core/dest.ts";
import { CoreError, type CoreErrorCode, type CoreOp, isCoreError } from "../core/errors.ts";
import { BatchError, type ExecRequest, type SyncDaemonSpec, type Timeouts } from "../core/request.ts";
import type { SchedulerRegistry } from "../core/sched/registry.ts";
import type { SchedEnv } from "../core/sched/types.ts";
import type { VirtualService } from "../core/service.ts";
import { ServiceTable } from "../core/service-table.ts";
import type { Counters } from "../core/stats/counters.ts";
import type { ApiErrorBody, RatesView, Snapshot } from "./api/protocol.ts";
import { buildSnapshot, type SnapshotQuery } from "./snapshot.ts";

/** What the Director needs from a connection entry (core's ConnEntry; a Conn is one). */
export type ConnLike = ConnEntry;

/** What the Director needs from the connection table (src/core/conn/conn-table.ts's ConnTable). */
export interface ConnTableLike {
  entries(): Iterable<ConnLike>;
  timeouts(): Timeouts;
  /** ipvsadm --set: 0 keeps the current value. */
  setTimeouts(t: Timeouts): void;
}

/** The sync daemons (src/sync); absent until sync lands, then start/stop answer EOPNOTSUPP. */
export interface SyncControl {
  /** Throw the CoreError start() would throw, without starting anything (used by batch dry runs). */
  check?(spec: SyncDaemonSpec): void;
  start(spec: SyncDaemonSpec): void;
  stop(state: "master" | "backup"): void;
  running(): SyncDaemonSpec[];
}

/** The estimator's read-out for a set of counters (src/core/stats/estimator.ts's RateEstimator.rates). */
export type RatesOf = (c: Counters) => RatesView;

export interface DirectorOptions {
  registry: SchedulerRegistry;
  env: SchedEnv;
  /** An existing table to own; a new one is made from registry and env otherwise. */
  services?: ServiceTable;
  conns?: ConnTableLike;
  sync?: SyncControl;
  rates?: RatesOf;
  /** The kernel's connection hash table size as ipvsadm prints it ("size=4096"). */
  connTabSize?: number;
}

/** The kernel's default timeouts (seconds) while no connection table is attached. */
export const DEFAULT_TIMEOUTS: Timeouts = { tcp: 900, tcpfin: 120, udp: 300 };

export class Director {
  readonly services: ServiceTable;
  readonly registry: SchedulerRegistry;
  readonly env: SchedEnv;
  readonly connTabSize: number;
  conns: ConnTableLike | undefined;
  sync: SyncControl | undefined;
  rates: RatesOf | undefined;
  #timeouts: Timeouts = { ...DEFAULT_TIMEOUTS };

  constructor(opts: DirectorOptions) {
    this.registry = opts.registry;
    this.env = opts.env;
    this.services = opts.services ?? new ServiceTable(opts.registry, opts.env);
    this.conns = opts.conns;
    this.sync = opts.sync;
    this.rates = opts.rates;
    this.connTabSize = opts.connTabSize ?? 4096;
  }

  /** Apply one request; throws CoreError (BatchError for a batch) and then nothing has changed. */
  exec(req: ExecRequest): void {
    if (req.op === "batch") {
      this.#batch(req.requests);
      return;
    }
    applyTo(this.services, req, this, false);
  }

  timeouts(): Timeouts {
    return this.conns ? this.conns.timeouts() : { ...this.#timeouts };
  }

  /** Used by exec for set-timeout. */
  setTimeouts(t: Timeouts): void {
    validateTimeouts(t);
    if (this.conns) {
      this.conns.setTimeouts(t);
      return;
    }
    this.#timeouts = {
      tcp: t.tcp || this.#timeouts.tcp,
      tcpfin: t.tcpfin || this.#timeouts.tcpfin,
      udp: t.udp || this.#timeouts.udp,
    };
  }

  snapshot(query: SnapshotQuery = {}): Snapshot {
    return buildSnapshot(this, query);
  }

  /**
   * Throw what exec(req) would throw for a batch that the tables refuse, changing nothing (a dry
   * run on a shadow table). The daemon calls this before binding VIPs, so a batch refused anyway
   * binds nothing and its error names the first bad request. Single requests validate as they apply.
   */
  check(req: ExecRequest): void {
    if (req.op === "batch") this.#dryRun(req.requests);
  }

  #batch(requests: readonly ExecRequest[]): void {
    this.#dryRun(requests);
    // Requests outside the service table (timeouts, sync daemons) can fail for reasons the shadow
    // cannot see (the connection table's own limits, a missing interface), so they go first: if
    // one fails, the table has not been touched. The table requests cannot fail after the dry run.
    const outside = (r: ExecRequest) => r.op === "set-timeout" || r.op === "start-daemon" || r.op === "stop-daemon";
    const order = requests.map((r, i) => ({ r, i })).sort((a, b) => Number(outside(b.r)) - Number(outside(a.r)));
    for (const { r, i } of order) {
      try {
        applyTo(this.services, r, this, false);
      } catch (e) {
        if (isCoreError(e)) throw new BatchError(e, i);
        throw e;
      }
    }
  }

  #dryRun(requests: readonly ExecRequest[]): void {
    const shadow = this.#shadow();
    const daemons = new Set((this.sync?.running() ?? []).map((d) => d.state));
    requests.forEach((r, i) => {
      try {
        if (r.op === "batch") throw new CoreError("EINVAL", "flush", "A batch cannot contain a batch");
        if (r.op === "start-daemon" || r.op === "stop-daemon") {
          dryRunDaemon(r, daemons, this.sync !== undefined);
          if (r.op === "start-daemon") this.sync?.check?.(r.daemon);
          return;
        }
        applyTo(shadow, r, undefined, true);
      } catch (e) {
        if (isCoreError(e)) throw new BatchError(e, i);
        throw e;
      }
    });
  }

  /** A ServiceTable holding the same services and destinations, in the same order, as the live one. */
  #shadow(): ServiceTable {
    const quiet: SchedEnv = { clock: this.env.clock, random: () => 0 };
    const shadow = new ServiceTable(this.registry, quiet);
    for (const svc of this.services.services()) {
      shadow.addService(svc.key, svc.options);
      for (let i = svc.dests.length - 1; i >= 0; i--) shadow.addDest(svc.key, (svc.dests[i] as Dest).spec());
    }
    return shadow;
  }
}

function dryRunDaemon(
  r: Extract<ExecRequest, { op: "start-daemon" | "stop-daemon" }>,
  running: Set<string>,
  haveSync: boolean,
): void {
  if (!haveSync) throw new CoreError("EOPNOTSUPP", r.op, "Connection sync is not supported by this tvsd yet");
  if (r.op === "start-daemon") {
    if (running.has(r.daemon.state)) throw new CoreError("EEXIST", r.op, `A ${r.daemon.state} sync daemon is running`);
    running.add(r.daemon.state);
  } else {
    if (!running.has(r.state)) throw new CoreError("ESRCH", r.op, `No ${r.state} sync daemon is running`);
    running.delete(r.state);
  }
}

function validateTimeouts(t: Timeouts): void {
  for (const [name, v] of Object.entries(t)) {
    if (!Number.isInteger(v) || v < 0 || v > 0x7fffffff)
      throw new CoreError("EINVAL", "set-timeout", `Invalid ${name} timeout "${String(v)}"`);
  }
}

/** One non-batch request against a table; `director` is set for the live table (timeouts, sync). */
function applyTo(table: ServiceTable, req: ExecRequest, director: Director | undefined, dryRun: boolean): void {
  switch (req.op) {
    case "add-service":
      table.addService(req.key, req.options);
      return;
    case "edit-service":
      table.editService(req.key, req.options);
      return;
    case "del-service":
      table.deleteService(req.key);
      return;
    case "flush":
      table.flush();
      return;
    case "add-dest":
      table.addDest(req.key, req.dest);
      return;
    case "edit-dest":
      table.editDest(req.key, req.dest);
      return;
    case "del-dest":
      table.deleteDest(req.key, req.addr, req.port);
      return;
    case "zero":
      if (req.key) table.zero(req.key);
      else {
        table.zero();
      }
      return;
    case "set-timeout":
      if (dryRun || !director) validateTimeouts(req.timeouts);
      else director.setTimeouts(req.timeouts);
      return;
    case "start-daemon":
    case "stop-daemon": {
      if (!director?.sync)
        throw new CoreError("EOPNOTSUPP", req.op, "Connection sync is not supported by this tvsd yet");
      if (req.op === "start-daemon") director.sync.start(req.daemon);
      else director.sync.stop(req.state);
      return;
    }
    case "batch":
      throw new CoreError("EINVAL", "flush", "A batch cannot contain a batch");
  }
}

/** The HTTP status for an error code (the server's choice; tvsadm reads only the body). */
export function httpStatusFor(code: CoreErrorCode): number {
  switch (code) {
    case "ENOENT":
    case "ESRCH":
      return 404;
    case "EEXIST":
    case "EBUSY":
      return 409;
    case "ENOMEM":
      return 503;
    case "EOPNOTSUPP":
      return 501;
    default:
      return 400;
  }
}

/** The API error body for anything exec/snapshot threw (non-CoreErrors become EINVAL with `op`). */
export function errorBody(e: unknown, op: CoreOp = "flush"): ApiErrorBody {
  if (e instanceof BatchError) return { error: { code: e.code, op: e.op, message: e.message, index: e.index } };
  if (isCoreError(e)) return { error: { code: e.code, op: e.op, message: e.message } };
  return { error: { code: "EINVAL", op, message: e instanceof Error ? e.message : String(e) } };
}

/** Find a live service by its serviceKeyId ("tcp 10.0.0.1:80", "fwmark 1 ipv4"). */
export function findServiceById(table: ServiceTable, id: string): VirtualService | undefined {
  return table.services().find((s) => s.id === id);
}
