// The main thread's side of the packet plane's worker threads: starts them one after another (a
// fanout group numbers its members in join order, and the steering program's worker index is
// that number), sends each the service-table image after every change and waits for every ack,
// installs the steering program through worker 0, relays neighbours one worker learned to the
// others, and gathers reports for the daemon's aggregated listings.
//
// Losing a worker (it exits, throws, or does not answer within the time allowed) is fatal for the
// whole plane: its socket may stay in the fanout group with nobody reading it, and if it left, the
// kernel would renumber the members, so every flow's worker (and FULLNAT's port shares) would
// change. The pool reports the loss once through `onLost`; the plane then stops the daemon, so a
// supervisor restarts it with a fresh group. Restarting one worker in place is not possible.

import { extname } from "node:path";
import { Worker } from "node:worker_threads";
import type { SyncedConn } from "../../../core/conn/conn-sync.ts";
import type { Timeouts } from "../../../core/conn/conn-table.ts";
import type { SyncSettings } from "../../../core/conn/sync-policy.ts";
import type { Sysctls } from "../../../core/conn/sysctl.ts";
import type { FwmarkRule } from "../../../core/fwmark/rule.ts";
import type { Logger } from "../../../core/log.ts";
import type { ServiceKey } from "../../../core/service.ts";
import type { ServiceImage } from "../../../core/table-image.ts";
import type { TableSerials } from "./incarnations.ts";
import type { FromWorker, ToWorker, WorkerReport, WorkerSetup } from "./messages.ts";

/** How long a worker may take to start, or to answer a table/collect message. */
const START_TIMEOUT_MS = 30_000;
const ANSWER_TIMEOUT_MS = 5_000;
/** A listing of every connection entry can be large (structured clone of up to a million entries). */
const LISTING_TIMEOUT_MS = 60_000;

interface Member {
  index: number;
  worker: Worker;
  alive: boolean;
  waiting: Map<number, { resolve: (m: FromWorker) => void; reject: (e: Error) => void }>;
}

export class PacketWorkerPool {
  readonly #log: Logger;
  readonly #onLost: (error: Error) => void;
  readonly #members: Member[] = [];
  #seq = 0;
  #stopping = false;
  #failed = false;
  mac: Uint8Array | undefined;
  /** Records the workers' sync policies selected (a sync master runs). */
  onSynced: ((recs: SyncedConn[]) => void) | undefined = undefined;
  mtu = 1500;
  vnetHdr = true;

  constructor(log: Logger, onLost: (error: Error) => void = () => undefined) {
    this.#log = log;
    this.#onLost = onLost;
  }

  get size(): number {
    return this.#members.filter((m) => m.alive).length;
  }

  /** Start `setups.length` workers in order; throws (after stopping those started) if one fails. */
  async start(setups: readonly WorkerSetup[]): Promise<void> {
    try {
      for (const setup of setups) await this.#startOne(setup);
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  #startOne(setup: WorkerSetup): Promise<void> {
    const worker = new Worker(new URL("./boot.mjs", import.meta.url), {
      // The same extension as this module: .ts from the sources (tsx), .js from the compiled dist/.
      workerData: { entry: new URL(`./worker-thread${extname(import.meta.url)}`, import.meta.url).href, setup },
    });
    const member: Member = { index: setup.index, worker, alive: false, waiting: new Map() };
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`Packet worker ${setup.index} did not start within ${START_TIMEOUT_MS} ms`));
        void worker.terminate();
      }, START_TIMEOUT_MS);
      worker.on("message", (m: FromWorker) => {
        if (m.t === "ready") {
          clearTimeout(timer);
          member.alive = true;
          this.mac ??= m.mac;
          this.mtu = m.mtu;
          this.vnetHdr = m.vnetHdr;
          this.#members.push(member);
          resolve();
        } else if (m.t === "failed") {
          clearTimeout(timer);
          void worker.terminate();
          reject(new Error(m.message));
        } else this.#onMessage(member, m);
      });
      worker.on("error", (e) => {
        clearTimeout(timer);
        this.#log.error("Packet worker failed", { worker: setup.index, err: e.message });
        this.#lost(member, e);
        reject(e);
      });
      worker.on("exit", (code) => {
        clearTimeout(timer);
        if (member.alive) this.#log.warn("Packet worker exited", { worker: setup.index, code });
        this.#lost(member, new Error(`Packet worker ${setup.index} exited (${code})`));
        reject(new Error(`Packet worker ${setup.index} exited (${code}) before it was ready`));
      });
    });
  }

  #lost(member: Member, e: Error): void {
    const wasAlive = member.alive;
    member.alive = false;
    for (const w of member.waiting.values()) w.reject(e);
    member.waiting.clear();
    if (wasAlive && !this.#stopping && !this.#failed) {
      this.#failed = true;
      this.#onLost(e);
    }
  }

  #onMessage(member: Member, m: FromWorker): void {
    switch (m.t) {
      case "synced":
        this.onSynced?.(m.recs);
        break;
      case "ack":
      case "dumped":
      case "report": {
        const w = member.waiting.get(m.seq);
        if (w) {
          member.waiting.delete(m.seq);
          w.resolve(m);
        }
        break;
      }
      case "learned":
        for (const other of this.#members)
          if (other !== member && other.alive) other.worker.postMessage({ t: "neighbour", addr: m.addr, mac: m.mac });
        break;
      case "handoff": {
        const to = this.#members.find((x) => x.index === m.to);
        if (to?.alive) to.worker.postMessage({ t: "datagram", datagram: m.datagram });
        break;
      }
      case "log":
        this.#log[m.level](m.msg, { worker: member.index, ...(m.fields ?? {}) });
        break;
      default:
        break;
    }
  }

  /** Post `msg(seq)` to one member and wait for the answer carrying that seq; no answer in time loses the member. */
  #ask(member: Member, msg: (seq: number) => ToWorker, timeoutMs = ANSWER_TIMEOUT_MS): Promise<FromWorker> {
    const seq = ++this.#seq;
    return new Promise<FromWorker>((resolve, reject) => {
      const timer = setTimeout(() => {
        member.waiting.delete(seq);
        const e = new Error(`Packet worker ${member.index} did not answer within ${timeoutMs} ms`);
        reject(e);
        this.#lost(member, e);
        void member.worker.terminate();
      }, timeoutMs);
      member.waiting.set(seq, {
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      member.worker.postMessage(msg(seq));
    });
  }

  #alive(): Member[] {
    return this.#members.filter((m) => m.alive);
  }

  /** Make every worker's table equal the image; resolves when all have applied it. */
  async table(
    image: ServiceImage[],
    serials: TableSerials,
    timeouts: Timeouts,
    sysctls: Partial<Sysctls>,
    fwmarkRules: readonly FwmarkRule[] = [],
  ): Promise<void> {
    const acks = await Promise.all(
      this.#alive().map((m) =>
        this.#ask(m, (seq) => ({ t: "table", seq, image, serials, timeouts, sysctls, fwmarkRules: [...fwmarkRules] })),
      ),
    );
    // A worker whose table differs from the daemon's forwards by rules nobody asked for: the
    // caller (the plane) treats this as fatal.
    for (const a of acks)
      if (a.t === "ack" && a.error) throw new Error(`A packet worker could not apply the table: ${a.error}`);
  }

  /** Install the fanout steering program (one member sets it for the whole group). */
  async steer(program: Uint8Array): Promise<void> {
    const first = this.#alive()[0];
    if (!first) return;
    const a = await this.#ask(first, (seq) => ({ t: "steer", seq, program }));
    if (a.t === "ack" && a.error) throw new Error(`Cannot install the fanout steering program: ${a.error}`);
  }

  /**
   * Own or release an address on every worker (each answers ARP/ND and takes traffic on its own
   * socket); the first one announces it. Resolves when all have applied it.
   */
  async own(addr: string, owned: boolean): Promise<void> {
    const acks = await Promise.all(
      this.#alive().map((m, i) => this.#ask(m, (seq) => ({ t: "own", seq, addr, owned, announce: i === 0 }))),
    );
    for (const a of acks)
      if (a.t === "ack" && a.error) throw new Error(`A packet worker could not switch ${addr}: ${a.error}`);
  }

  /** Gratuitous ARPs and neighbour probes go out from the first worker (one copy is enough). */
  refresh(announce: boolean, resolve: string[]): void {
    this.#alive()[0]?.worker.postMessage({ t: "refresh", announce, resolve } satisfies ToWorker);
  }

  zero(key?: ServiceKey): void {
    const msg: ToWorker = key ? { t: "zero", key } : { t: "zero" };
    for (const m of this.#alive()) m.worker.postMessage(msg);
  }

  /** Every live worker's report (with its connection entries when `conns`). */
  async collect(conns: boolean): Promise<WorkerReport[]> {
    const answers = await Promise.all(
      this.#alive().map((m) =>
        this.#ask(m, (seq) => ({ t: "collect", seq, conns }), conns ? LISTING_TIMEOUT_MS : ANSWER_TIMEOUT_MS),
      ),
    );
    return answers.flatMap((a) => (a.t === "report" ? [a.report] : []));
  }

  /** Start (settings) or stop (null) the sync policy on every worker. */
  sync(settings: SyncSettings | null): void {
    for (const m of this.#alive()) m.worker.postMessage({ t: "sync", settings } satisfies ToWorker);
  }

  /** Hand sync records to the worker that owns their flows. */
  ingest(index: number, recs: SyncedConn[]): void {
    this.#alive()
      .find((m) => m.index === index)
      ?.worker.postMessage({ t: "ingest", recs } satisfies ToWorker);
  }

  /** Every worker's entries as sync records. */
  async dump(): Promise<SyncedConn[]> {
    const answers = await Promise.all(
      this.#alive().map((m) => this.#ask(m, (seq) => ({ t: "dump", seq }), LISTING_TIMEOUT_MS)),
    );
    return answers.flatMap((a) => (a.t === "dumped" ? a.recs : []));
  }

  /** Ask every worker to close its socket and end; terminate the ones that do not. */
  async stop(): Promise<void> {
    this.#stopping = true;
    const members = this.#members.splice(0);
    await Promise.all(
      members.map(async (m) => {
        if (!m.alive) return;
        m.worker.postMessage({ t: "stop" } satisfies ToWorker);
        const exited = new Promise<void>((r) => m.worker.once("exit", () => r()));
        const t = setTimeout(() => void m.worker.terminate(), 2000);
        await exited;
        clearTimeout(t);
      }),
    );
  }
}

/** What PoolPacketPlane uses of a worker pool (a test can hand in a fake). */
export type WorkerPoolPort = Pick<
  PacketWorkerPool,
  | "start"
  | "table"
  | "steer"
  | "refresh"
  | "own"
  | "zero"
  | "collect"
  | "stop"
  | "sync"
  | "ingest"
  | "dump"
  | "size"
  | "onSynced"
>;
