// The packet data plane on N worker threads (--workers N > 1): each worker (workers/) has its own
// AF_PACKET socket in one PACKET_FANOUT group, its own replica of the service table and its own
// connection table; the fanout steering program (steering.ts) keeps both directions of every
// flow on one worker. The main thread only sends table images and gathers reports: collect()
// writes the workers' summed counters into the daemon's tables and returns their connection
// entries, so listings show everything.
//
// A worker that cannot take a table image (or is lost) leaves the plane in a state nobody can
// describe: the error is logged and handed to onFatal (tvsd exits non-zero and a supervisor
// restarts it), never swallowed.

import type { SyncedConn } from "../../core/conn/conn-sync.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import type { Sysctls } from "../../core/conn/sysctl.ts";
import type { DestSpec } from "../../core/dest.ts";
import type { FwmarkRule } from "../../core/fwmark/rule.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../../core/service.ts";
import { imageOf } from "../../core/table-image.ts";
import type { PlaneCounterSnapshot } from "./counters.ts";
import { removeGuard } from "./host-guard.ts";
import { reassemblyNote } from "./ipv6-defrag.ts";
import { type OwnedAddresses, ownedAddresses } from "./owned-addresses.ts";
import {
  admitFwmarkRules,
  admitPacketDest,
  admitPacketService,
  destAddresses,
  fanoutGroupId,
  firstAddress,
  guardHost,
  type PacketDataPlaneOptions,
  type PlaneSync,
  vipArgument,
  warnFwmarkGaps,
  workerCount,
} from "./plane-shared.ts";
import { steeringFallback, steeringProgram, steerTuple } from "./steering.ts";
import { steeringPlanOf } from "./steering-plan.ts";
import { type Aggregate, type MergedConn, mergeConns, mergeReports } from "./workers/aggregate.ts";
import { Incarnations } from "./workers/incarnations.ts";
import type { WorkerSetup } from "./workers/messages.ts";
import { PacketWorkerPool, type WorkerPoolPort } from "./workers/pool.ts";

export class PoolPacketPlane {
  readonly name = "packet";
  readonly #o: PacketDataPlaneOptions;
  #guardError: string | undefined;
  #started = false;
  #sync: PlaneSync | undefined;
  #syncedByWorkers = { created: 0, updated: 0, refused: 0 };
  #pool: WorkerPoolPort | undefined;
  /** What the workers last reported. */
  #agg: Aggregate | undefined;
  #pushing: Promise<void> | undefined;
  #program: string | undefined;
  #steerKey: string | undefined;
  readonly #incarnations = new Incarnations();
  #owned = new Set<string>();
  /** Addresses released by setVipOwned (canonical text). */
  readonly #released = new Set<string>();
  #zeroEpoch = 0;
  #fatal = false;
  #fwmarkRules: readonly FwmarkRule[];
  /** fwmark services no rule feeds, as last warned (tvs status shows them). */
  readonly #fwmarkGaps = new Set<string>();

  constructor(o: PacketDataPlaneOptions) {
    this.#o = o;
    this.#fwmarkRules = o.fwmarkRules ?? [];
  }

  /** Replace the firewall-mark rules; every worker has them when this resolves. */
  async setFwmarkRules(rules: readonly FwmarkRule[]): Promise<void> {
    admitFwmarkRules(this.#o, rules);
    this.#fwmarkRules = rules;
    await this.#push();
  }

  get workers(): number {
    return workerCount(this.#o);
  }

  admitService(key: ServiceKey, options: ServiceOptions, op: "add-service" | "edit-service"): void {
    admitPacketService(this.#o, key, options, op);
  }

  admitDest(key: ServiceKey, spec: DestSpec, op: "add-dest" | "edit-dest"): DestSpec {
    return admitPacketDest(this.#o, key, spec, op);
  }

  /** Start the worker threads one by one (fanout member i is worker i), then give them the table. */
  async start(): Promise<void> {
    if (this.#started) return;
    const o = this.#o;
    const addr4 = o.addr4 ?? firstAddress(o.interface, "IPv4");
    const addr6 = o.addr6 ?? firstAddress(o.interface, "IPv6");
    const n = this.workers;
    const conns = o.conns;
    const base: Omit<WorkerSetup, "index"> = {
      workers: n,
      ifname: o.interface,
      vnetHdr: o.vnetHdr ?? true,
      fanoutGroup: fanoutGroupId(),
      fanoutMode: o.fanout ?? "cbpf",
      ...(addr4 ? { addr4 } : {}),
      ...(addr6 ? { addr6 } : {}),
      vips: [...(o.vips ?? [])],
      localAddrs: [...(o.localAddrs ?? [])],
      released: [...this.#released],
      tunClampMss: o.tunClampMss ?? false,
      batch: o.batch ?? 64,
      connLimit: Math.max(1, Math.ceil(conns.limit / n)),
      connOptions: { ...conns.options },
      sysctls: sysctlsForWorkers(conns, n),
    };
    const lost = (err: Error) =>
      this.#die("A packet worker was lost: its flows are gone and the fanout group no longer matches the workers", err);
    const pool = o.workerPool ? o.workerPool(o.log, lost) : new PacketWorkerPool(o.log, lost);
    await pool.start(Array.from({ length: n }, (_, index) => ({ ...base, index })));
    this.#pool = pool;
    this.#applySync();
    this.#started = true;
    if (!addr4) o.log.warn(`Interface "${o.interface}" has no IPv4 address: tunnel and ARP probes use 0.0.0.0`);
    await this.#push();
    o.log.info("Packet data plane started", { interface: o.interface, addr4, workers: n, fanout: base.fanoutMode });
  }

  /** A sysctl changed (POST /v1/sysctl): every worker has it when this resolves. */
  sysctlsChanged(): Promise<void> {
    return this.#push();
  }

  /** Resolves once every worker has the new table; a failed push is fatal (and rejects). */
  serviceAdded(_svc: VirtualService): Promise<void> {
    return this.#push();
  }

  serviceChanged(_svc: VirtualService): void {
    void this.#push().catch(() => undefined); // already logged and fatal in #push
  }

  serviceRemoved(_svc: VirtualService): void {
    void this.#push().catch(() => undefined); // already logged and fatal in #push
  }

  /**
   * VRRP's switch (see LoopPacketPlane.setVipOwned), applied by every worker before this
   * resolves; the first one announces an owned address.
   */
  async setVipOwned(addr: string, owned: boolean): Promise<void> {
    const a = vipArgument(addr);
    if (owned) this.#released.delete(a);
    else this.#released.add(a);
    await this.#pool?.own(a, owned);
  }

  async stop(_drainMs: number): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    await this.#pool?.stop();
    if (this.#o.guard ?? !this.#o.io) removeGuard(this.#o.interface);
  }

  openFlows(): number {
    return this.#agg?.connections ?? 0;
  }

  /** Connection entries across all workers as of the last collect. */
  connCount(): number | undefined {
    return this.#agg?.connections ?? 0;
  }

  /** New connections the workers refused because their tables were full (as of the last collect). */
  connRefused(): number | undefined {
    return this.#agg?.dropped ?? 0;
  }

  /**
   * Gather every worker's report, write the summed counters and connection counts into the
   * daemon's tables and return all connection entries when `conns`.
   */
  async collect(conns: boolean): Promise<MergedConn[] | undefined> {
    const pool = this.#pool;
    if (!pool) return undefined;
    const epoch = this.#zeroEpoch;
    const reports = await pool.collect(conns);
    // Reports taken before an -Z that happened meanwhile would put the old totals back.
    if (epoch === this.#zeroEpoch) this.#agg = mergeReports(this.#o.services, reports);
    const synced = { created: 0, updated: 0, refused: 0 };
    for (const r of reports)
      if (r.synced) for (const k of ["created", "updated", "refused"] as const) synced[k] += r.synced[k];
    this.#syncedByWorkers = synced;
    return conns ? mergeConns(reports, this.#o.clock.now()) : undefined;
  }

  /** A sync master started or stopped: every worker runs core's SyncPolicy after each forwarded client packet. */
  setSync(sync: PlaneSync | undefined): void {
    this.#sync = sync;
    this.#applySync();
  }

  /**
   * Records a sync backup received: each goes to the worker the steering program sends its
   * client's packets to (see steerTuple; with the kernel's hash fanout ("hash") every
   * worker gets a copy, since the kernel's flow hash cannot be computed here).
   */
  ingestSynced(recs: readonly SyncedConn[]): boolean {
    const pool = this.#pool;
    if (!pool) return false;
    const n = this.workers;
    const byWorker: SyncedConn[][] = Array.from({ length: n }, () => []);
    if (this.#o.fanout === "hash") for (const list of byWorker) list.push(...recs);
    else {
      const plan = this.#steeringPlan(
        ownedAddresses(this.#o.services, this.#o.vips ?? [], this.#o.localAddrs ?? [], this.#fwmarkRules),
      );
      for (const r of recs) {
        let w = 0;
        try {
          w = steerTuple(plan, r.caddr, r.cport, r.vaddr, r.vport) % n;
        } catch {
          w = 0;
        }
        byWorker[w]?.push(r);
      }
    }
    byWorker.forEach((list, i) => {
      if (list.length > 0) pool.ingest(i, list);
    });
    return true;
  }

  /** Every entry as a sync record (bulk resync). */
  async dumpSynced(): Promise<SyncedConn[] | undefined> {
    return this.#pool?.dump();
  }

  /** Sync records the workers ingested (as of the last collect). */
  syncedCounts(): { created: number; updated: number; refused: number } | undefined {
    return { ...this.#syncedByWorkers };
  }

  /** ipvsadm -Z reached the daemon's table; the workers zero their own counters too. */
  zeroed(key?: ServiceKey): void {
    this.#zeroEpoch++;
    this.#pool?.zero(key);
  }

  notes(): string[] {
    const n = [
      `packet plane on ${this.#o.interface}, ${this.#pool?.size ?? 0} worker threads (fanout ${this.#o.fanout ?? "cbpf"})`,
      `connections across workers: ${this.#agg?.connections ?? 0} (refused when full: ${this.#agg?.dropped ?? 0})`,
      ...(this.#agg?.perWorker ?? []).map((w) => `worker ${w.index}: ${w.rx} frames, ${w.connections} connections`),
    ];
    if (this.#guardError) n.push(`host guard not installed: ${this.#guardError}`);
    n.push(...this.#fwmarkGaps);
    const c = this.#agg?.plane;
    if (c) n.push(`frames rx ${c.rx} fwd ${c.forwarded} reply ${c.replied} drop ${c.dropped} ignore ${c.ignored}`);
    if (c && c.fragmentsIn > 0) n.push(reassemblyNote(c));
    return n;
  }

  /** Pipeline counters summed over workers as of the last collect. */
  counters(): PlaneCounterSnapshot | undefined {
    return this.#agg?.plane.snapshot();
  }

  #applySync(): void {
    const pool = this.#pool;
    if (!pool) return;
    pool.onSynced = this.#sync?.emit;
    pool.sync(this.#sync ? this.#sync.settings : null);
  }

  /** Log, then stop the daemon through onFatal (once). */
  #die(msg: string, err: Error): void {
    this.#o.log.error(msg, { err: err.message });
    if (this.#fatal) return;
    this.#fatal = true;
    (this.#o.onFatal ?? (() => undefined))(err);
  }

  /**
   * Bring every worker up to the daemon's table (one image for all changes made in the same
   * tick), then the steering program, the host guard, announcements and probes. A failure is
   * logged and fatal, and the promise rejects with it.
   */
  #push(): Promise<void> {
    if (!this.#pushing)
      this.#pushing = Promise.resolve().then(async () => {
        this.#pushing = undefined;
        try {
          await this.#pushTable();
        } catch (e) {
          const err = e instanceof Error ? e : new Error(String(e));
          this.#die("The packet workers could not take the table: they no longer match the daemon's", err);
          throw err;
        }
      });
    return this.#pushing;
  }

  async #pushTable(): Promise<void> {
    const pool = this.#pool;
    if (!pool || !this.#started) return;
    const o = this.#o;
    // Image, owned addresses and steering plan all from this one moment of the table.
    const image = imageOf(o.services);
    const serials = this.#incarnations.serials(o.services);
    const rules = this.#fwmarkRules;
    const mine = ownedAddresses(o.services, o.vips ?? [], o.localAddrs ?? [], rules);
    const owned = [...mine.vips, ...mine.locals];
    const plan = this.#steeringPlan(mine);
    await pool.table(image, serials, o.conns.timeouts(), sysctlsForWorkers(o.conns, this.workers), rules);
    if (o.fanout !== "hash") {
      const program = steeringProgram(plan);
      const id = Buffer.from(program).toString("base64");
      if (id !== this.#program) {
        const key = `${plan.byAddress ? `address/${plan.mask >>> 0}` : "address+port"} ${plan.byAddress6 ? `address6/${plan.prefix6}` : "address6+port"}`;
        if (this.#steerKey !== undefined && key !== this.#steerKey && (this.#agg?.connections ?? 0) > 0)
          o.log.warn(
            "Persistence changed how flows are steered to workers: open connections may reach a worker that does not know them",
            { was: this.#steerKey, now: key },
          );
        this.#steerKey = key;
        await pool.steer(program);
        this.#program = id;
        if (steeringFallback(plan))
          o.log.warn("Too many addresses for the fanout steering program: every flow goes to worker 0", {
            vips: plan.vips.length,
            locals: plan.locals.length,
          });
      }
    }
    if (!this.#started) return;
    this.#guardError = guardHost(o, owned, rules);
    warnFwmarkGaps(o, rules, this.#fwmarkGaps);
    const fresh = owned.some((a) => !this.#owned.has(a));
    this.#owned = new Set(owned);
    pool.refresh(fresh, destAddresses(o.services));
  }

  /** The steering program's view: frames to a VIP come from a client, to a local address are FULLNAT replies. */
  #steeringPlan(owned: OwnedAddresses) {
    return steeringPlanOf(this.#o.services, owned, this.#fwmarkRules);
  }
}

/**
 * The daemon's sysctls as each worker applies them to its own table: the connection limit is
 * shared out among the workers, and so is amemthresh, so a worker's defences react to its share.
 */
export function sysctlsForWorkers(conns: ConnTable, workers: number): Partial<Sysctls> {
  const s: Partial<Sysctls> = { ...conns.sysctls() };
  s.amemthresh = Math.ceil((s.amemthresh ?? 0) / Math.max(1, workers));
  return s;
}
