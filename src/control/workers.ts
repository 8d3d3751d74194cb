// tvsd --workers N: the socket data plane on several cores. The primary process keeps the control
// socket and forks N worker processes (node:cluster); each worker is a whole Daemon with its own
// service table, connection table and data plane, so no mutable state is shared (docs/architecture.md). Each
// worker listens on its own SO_REUSEPORT socket per TCP and UDP VIP (the kernel hashes new
// connections and flows onto them; dataplane/proxy/reuse-port.ts); a persistent service's group
// is steered by client address instead, so a client meets one worker and its templates
// (dataplane/proxy/worker-steering.ts). Without the addon only worker 1 serves UDP, so each
// client's datagrams meet one flow table.
//
// Control requests fan out: exec and reload go to every worker (validation is deterministic, so
// they agree; the first refusal is returned), snapshots are merged (counters, active/inactive
// counts and rates summed per service and destination, connection entries concatenated), status
// comes from worker 1 with the workers listed.
//
// What differs from one director: each worker schedules on its own, so rr/wrr sequences interleave
// per worker and lc counts per worker; persistence holds because a persistent service's clients
// are steered to one worker each. Use one worker (the default) where exact sequences matter.

import cluster, { type Worker } from "node:cluster";
import { CoreError, type CoreErrorCode, type CoreOp } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { BatchError } from "../core/request.ts";
import type { CountersView, ExecRequest, RatesView, Snapshot, StatusView } from "./api/protocol.ts";
import type { Daemon } from "./daemon.ts";
import type { ControlHandlers, SnapshotRequest } from "./server.ts";

type Method = "exec" | "snapshot" | "status" | "reload" | "stop";
interface Call {
  t: "call";
  id: number;
  method: Method;
  arg: unknown;
}
type ErrorShape = { code: CoreErrorCode; op: CoreOp; message: string; index?: number };
type FromWorker =
  | { t: "ready" }
  | { t: "failed"; message: string }
  | { t: "reply"; id: number; ok: true; value: unknown }
  | { t: "reply"; id: number; ok: false; error: ErrorShape };

/** Worker side: answer the primary's calls with this worker's daemon; resolves once told to stop. */
export function serveWorker(daemon: Daemon, log: Logger): Promise<void> {
  let stopped: () => void = () => {};
  const done = new Promise<void>((r) => {
    stopped = r;
  });
  process.on("message", (m: Call) => {
    if (m?.t !== "call") return;
    const reply = (r: FromWorker) => process.send?.(r);
    (async () => {
      switch (m.method) {
        case "exec":
          await daemon.exec(m.arg as ExecRequest);
          return { ok: true };
        case "snapshot":
          return daemon.snapshot(m.arg as SnapshotRequest);
        case "status":
          return daemon.status();
        case "reload":
          await daemon.reload();
          return { ok: true };
        case "stop":
          await daemon.stop(m.arg as number);
          return { ok: true };
      }
    })().then(
      (value) => {
        reply({ t: "reply", id: m.id, ok: true, value });
        if (m.method === "stop") stopped();
      },
      (err: unknown) => {
        const e =
          err instanceof CoreError ? err : new CoreError("EINVAL", "request", String((err as Error)?.message ?? err));
        const error: ErrorShape = { code: e.code, op: e.op, message: e.message };
        if (e instanceof BatchError) error.index = e.index;
        reply({ t: "reply", id: m.id, ok: false, error });
      },
    );
  });
  log.info("Worker ready", { worker: cluster.worker?.id });
  process.send?.({ t: "ready" });
  return done;
}

function sumCounters(a: CountersView, b: CountersView): CountersView {
  return {
    conns: a.conns + b.conns,
    inPkts: a.inPkts + b.inPkts,
    outPkts: a.outPkts + b.outPkts,
    inBytes: a.inBytes + b.inBytes,
    outBytes: a.outBytes + b.outBytes,
  };
}

function sumRates(a: RatesView, b: RatesView): RatesView {
  return {
    cps: a.cps + b.cps,
    inPps: a.inPps + b.inPps,
    outPps: a.outPps + b.outPps,
    inBps: a.inBps + b.inBps,
    outBps: a.outBps + b.outBps,
  };
}

/** Merge the workers' snapshots: same services and destinations in the same order, numbers summed. */
export function mergeSnapshots(snaps: Snapshot[]): Snapshot {
  const [first, ...rest] = snaps;
  if (!first) throw new Error("No worker snapshots");
  const out: Snapshot = structuredClone(first);
  for (const s of rest) {
    out.stats = sumCounters(out.stats, s.stats);
    out.rates = sumRates(out.rates, s.rates);
    out.services.forEach((svc, i) => {
      const other = s.services[i];
      if (!other) return;
      svc.stats = sumCounters(svc.stats, other.stats);
      svc.rates = sumRates(svc.rates, other.rates);
      svc.dests.forEach((d, j) => {
        const od = other.dests[j];
        if (!od) return;
        d.activeConns += od.activeConns;
        d.inactConns += od.inactConns;
        d.persistConns += od.persistConns;
        d.overloaded ||= od.overloaded;
        d.stats = sumCounters(d.stats, od.stats);
        d.rates = sumRates(d.rates, od.rates);
      });
    });
    if (out.conns && s.conns) out.conns.push(...s.conns);
  }
  return out;
}

/** Primary side: the control handlers over N worker processes. */
export class WorkerPool implements ControlHandlers {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: unknown) => void }>();
  readonly #log: Logger;
  #next = 1;
  #stopping = false;

  constructor(log: Logger) {
    this.#log = log;
  }

  /** Fork n workers (same argv); resolves when all are ready, rejects with the first failure. */
  async start(n: number): Promise<void> {
    cluster.schedulingPolicy = cluster.SCHED_NONE;
    const ready: Promise<void>[] = [];
    for (let i = 0; i < n; i++) {
      const w = cluster.fork({ TVSD_WORKER_INDEX: String(i + 1) });
      this.#workers.push(w);
      ready.push(
        new Promise<void>((resolve, reject) => {
          w.on("message", (m: FromWorker) => {
            if (m.t === "ready") resolve();
            else if (m.t === "failed") reject(new Error(m.message));
            else if (m.t === "reply") {
              const p = this.#pending.get(m.id);
              if (!p) return;
              this.#pending.delete(m.id);
              if (m.ok) p.resolve(m.value);
              else {
                const { index, ...cause } = m.error;
                p.reject(
                  index === undefined
                    ? new CoreError(cause.code, cause.op, cause.message)
                    : new BatchError(cause, index),
                );
              }
            }
          });
          w.once("exit", (code) => {
            reject(new Error(`Worker ${i + 1} exited (${code})`));
            if (this.#stopping) this.#log.info("Worker stopped", { worker: i + 1, code });
            else this.#log.warn("Worker exited", { worker: i + 1, code });
          });
        }),
      );
    }
    await Promise.all(ready);
  }

  #call(w: Worker, method: Method, arg: unknown): Promise<unknown> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      w.send({ t: "call", id, method, arg } satisfies Call);
    });
  }

  async #all(method: Method, arg: unknown): Promise<unknown[]> {
    const results = await Promise.allSettled(this.#workers.map((w) => this.#call(w, method, arg)));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw (failed as PromiseRejectedResult).reason;
    return results.map((r) => (r as PromiseFulfilledResult<unknown>).value);
  }

  async exec(req: ExecRequest): Promise<void> {
    await this.#all("exec", req);
  }

  async reload(): Promise<void> {
    await this.#all("reload", undefined);
  }

  async snapshot(q: SnapshotRequest): Promise<Snapshot> {
    return mergeSnapshots((await this.#all("snapshot", q)) as Snapshot[]);
  }

  async status(): Promise<StatusView> {
    const [first] = (await this.#all("status", undefined)) as StatusView[];
    if (!first) throw new Error("No workers");
    return {
      ...first,
      pid: process.pid,
      notes: [
        `Workers: ${this.#workers.length} (pids ${this.#workers.map((w) => w.process.pid).join(", ")})`,
        ...first.notes,
      ],
    };
  }

  /** Drain every worker and wait for them to exit. */
  async stop(drainMs: number): Promise<void> {
    this.#stopping = true;
    const exits = this.#workers.map((w) => new Promise<void>((r) => (w.isDead() ? r() : w.once("exit", () => r()))));
    await Promise.allSettled(this.#workers.filter((w) => !w.isDead()).map((w) => this.#call(w, "stop", drainMs)));
    await Promise.all(exits);
  }
}
