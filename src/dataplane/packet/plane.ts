// The packet data plane as tvsd sees it (the DataPlane shape of src/control/dataplane.ts, matched
// structurally): raw frames on one interface through the native AF_PACKET io, the pipeline on
// the daemon's own ServiceTable and ConnTable (so ipvsadm listings, --stats, --rate and -c see
// every connection without aggregation), the nft guard that keeps the host kernel out of VIP
// traffic, gratuitous ARPs when VIPs come up and ARP probes for real servers.
//
// Threads: with one worker (the default) the pipeline runs on the daemon's main thread on the
// daemon's own tables, one AF_PACKET socket polled on the main loop. With --workers N > 1 it runs
// in N worker threads (workers/), each with its own socket in one PACKET_FANOUT group, its own
// replica of the service table and its own connection table; the fanout steering program
// (steering.ts) keeps both directions of every flow on one worker. The main thread then only
// sends table images and gathers reports: collect() writes the workers' summed counters into the
// daemon's tables and returns their connection entries, so listings show everything.

import { networkInterfaces } from "node:os";
import { canonicalIp } from "../../core/addr.ts";
import type { Clock } from "../../core/clock.ts";
import { type SyncedConn, syncedConnOf } from "../../core/conn/conn-sync.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import { SyncPolicy, type SyncSettings } from "../../core/conn/sync-policy.ts";
import type { DestSpec } from "../../core/dest.ts";
import { CoreError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../../core/service.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import { imageOf } from "../../core/table-image.ts";
import { loadNative } from "../../platform/native-addon.ts";
import type { PlaneCounterSnapshot } from "./counters.ts";
import { type BatchingIo, PacketEngine } from "./engine.ts";
import { installGuard, removeGuard } from "./host-guard.ts";
import { NativePacketIo } from "./native-io.ts";
import { type OwnedAddresses, ownedAddresses } from "./owned-addresses.ts";
import { Pipeline } from "./pipeline.ts";
import { steeringFallback, steeringProgram, steerTuple } from "./steering.ts";
import { type Aggregate, type MergedConn, mergeConns, mergeReports } from "./workers/aggregate.ts";
import { Incarnations } from "./workers/incarnations.ts";
import type { WorkerSetup } from "./workers/messages.ts";
import { PacketWorkerPool } from "./workers/pool.ts";

export interface PacketDataPlaneOptions {
  /** The interface clients and real servers are reached on (one-arm director). */
  interface: string;
  services: ServiceTable;
  conns: ConnTable;
  clock: Clock;
  log: Logger;
  /** Addresses to own besides the services' VIPs (answer ARP/ND, guard from the host). */
  vips?: readonly string[];
  /** FULLNAT local address pool; required for fullnat destinations. */
  localAddrs?: readonly string[];
  /** The director's IPv4 on the interface (tunnel outer source, ARP probes); default: the first one found. */
  addr4?: string;
  addr6?: string;
  /** Packet worker threads (default 1: the pipeline runs on the main thread). */
  workers?: number;
  /**
   * How several workers share the interface: "cbpf" (default; the steering program keeps NAT and
   * FULLNAT replies and a persistent client's connections on one worker) or "hash" (the kernel's
   * PACKET_FANOUT_HASH: DR/TUN without persistence only).
   */
  fanout?: "cbpf" | "hash";
  /** Use PACKET_VNET_HDR (offloaded checksums and 64 KB GSO frames pass through); default true. */
  vnetHdr?: boolean;
  /** Install the nft netdev ingress guard; default true. */
  guard?: boolean;
  /**
   * Called once when a packet worker is lost (exited, threw, stopped answering): the plane cannot
   * go on correctly, and tvsd stops so that a supervisor restarts it.
   */
  onFatal?: (error: Error) => void;
  /** Clamp the MSS of tunnelled SYNs (IPVS does not); default false. */
  tunClampMss?: boolean;
  /** Batch size per receive call (32..64 recommended); default 64. */
  batch?: number;
  /** An io to use instead of opening the interface (tests: MemoryPacketIo). */
  io?: BatchingIo & { mac?: Uint8Array; mtu?: number };
  /** MAC to use with an injected io. */
  mac?: Uint8Array;
}

function firstAddress(ifname: string, family: "IPv4" | "IPv6"): string | undefined {
  const list = networkInterfaces()[ifname] ?? [];
  return list.find((a) => a.family === family && !(family === "IPv6" && a.address.startsWith("fe80")))?.address;
}

/** This daemon's PACKET_FANOUT group id (groups are per network namespace; one daemon per namespace and interface). */
function fanoutGroupId(): number {
  return (process.pid ^ 0x7651) & 0xffff;
}

/** A sync master's hook into a plane: its settings and where selected entries go. */
export interface PlaneSync {
  settings: SyncSettings;
  emit: (recs: SyncedConn[]) => void;
}

export class PacketDataPlane {
  readonly name = "packet";
  #sync: PlaneSync | undefined;
  #syncedByWorkers = { created: 0, updated: 0, refused: 0 };
  readonly #o: PacketDataPlaneOptions;
  #engine: PacketEngine | undefined;
  #pipeline: Pipeline | undefined;
  #io: BatchingIo | undefined;
  #guardError: string | undefined;
  #started = false;
  /** Worker threads (workers > 1), and what they last reported. */
  #pool: PacketWorkerPool | undefined;
  #agg: Aggregate | undefined;
  #syncing: Promise<void> | undefined;
  #program: string | undefined;
  #steerKey: string | undefined;
  readonly #incarnations = new Incarnations();
  #owned = new Set<string>();
  /** Addresses released by setVipOwned (canonical text). */
  readonly #released = new Set<string>();

  constructor(o: PacketDataPlaneOptions) {
    this.#o = o;
  }

  get workers(): number {
    return this.#o.io ? 1 : Math.max(1, this.#o.workers ?? 1);
  }

  /** Several workers sharing by the kernel's flow hash: a reply or a persistent client may reach another worker. */
  get #hashShared(): boolean {
    return this.workers > 1 && this.#o.fanout === "hash";
  }

  admitService(key: ServiceKey, options: ServiceOptions, op: "add-service" | "edit-service"): void {
    if (this.#hashShared && options.persistent)
      throw new CoreError(
        "EOPNOTSUPP",
        op,
        `Persistent services need the steered fanout (--fanout cbpf): with "hash" a client's connections reach different workers`,
      );
    if (key.kind === "fwmark")
      throw new CoreError("EOPNOTSUPP", op, `Firewall-mark services are not supported by the packet data plane`);
    if (key.protocol === "sctp")
      throw new CoreError("EOPNOTSUPP", op, `Protocol "sctp" is not supported by the packet data plane`);
  }

  admitDest(key: ServiceKey, spec: DestSpec, op: "add-dest" | "edit-dest"): DestSpec {
    const vport = key.kind === "vip" ? key.port : 0;
    if (spec.fwd === "local")
      throw new CoreError("EOPNOTSUPP", op, `Forwarding method "local" is not supported by the packet data plane`);
    if ((spec.fwd === "droute" || spec.fwd === "tunnel") && vport !== 0 && spec.port !== vport)
      throw new CoreError(
        "EINVAL",
        op,
        `Real server port ${spec.port} differs from virtual port ${vport}: ${spec.fwd === "droute" ? "direct routing" : "tunnelling"} cannot map ports`,
      );
    if (spec.fwd === "tunnel" && spec.tun.type !== "ipip")
      throw new CoreError(
        "EOPNOTSUPP",
        op,
        `Tunnel type "${spec.tun.type}" is not supported by the packet data plane (ipip only)`,
      );
    if (this.#hashShared && (spec.fwd === "masq" || spec.fwd === "fullnat"))
      throw new CoreError(
        "EOPNOTSUPP",
        op,
        `Forwarding method "${spec.fwd}" needs the steered fanout (--fanout cbpf): with "hash" replies reach other workers`,
      );
    if (spec.fwd === "fullnat" && (this.#o.localAddrs ?? []).length === 0)
      throw new CoreError("EINVAL", op, `FULLNAT destination "${spec.addr}" needs local addresses (--local-addrs)`);
    return spec;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    if (this.workers > 1) return this.#startWorkers();
    const o = this.#o;
    // A fanout group of one: its DEFRAG flag has the kernel reassemble IPv4 fragments for us.
    const io =
      o.io ??
      new NativePacketIo({
        ifname: o.interface,
        vnetHdr: o.vnetHdr ?? true,
        fanoutGroup: fanoutGroupId(),
        fanoutMode: "hash",
      });
    this.#io = io;
    const mac = o.mac ?? (io as { mac?: Uint8Array }).mac ?? new Uint8Array(6);
    const mtu = (io as { mtu?: number }).mtu ?? 1500;
    const addr4 = o.addr4 ?? firstAddress(o.interface, "IPv4");
    const addr6 = o.addr6 ?? firstAddress(o.interface, "IPv6");
    const pipeline = new Pipeline({
      services: o.services,
      conns: o.conns,
      mac,
      mtu,
      ...(addr4 ? { addr4 } : {}),
      ...(addr6 ? { addr6 } : {}),
      vips: o.vips ?? [],
      localAddrs: o.localAddrs ?? [],
      released: [...this.#released],
      tunClampMss: o.tunClampMss ?? false,
    });
    this.#pipeline = pipeline;
    this.#applySync();
    this.#engine = new PacketEngine(io, pipeline, () => o.clock.now(), o.batch ?? 64);
    if (!addr4) o.log.warn(`Interface "${o.interface}" has no IPv4 address: tunnel and ARP probes use 0.0.0.0`);
    this.#refresh();
    this.#engine.start();
    this.#started = true;
    o.log.info("Packet data plane started", { interface: o.interface, addr4, vnetHdr: io.vnetHdr });
  }

  async serviceAdded(_svc: VirtualService): Promise<void> {
    if (this.#pool) return this.#syncWorkers();
    this.#refresh();
  }

  serviceChanged(_svc: VirtualService): void {
    if (this.#pool) void this.#syncWorkers().catch(() => undefined);
    else this.#refresh();
  }

  serviceRemoved(_svc: VirtualService): void {
    if (this.#pool) void this.#syncWorkers().catch(() => undefined);
    else this.#refresh();
  }

  /**
   * VRRP's switch: own a VIP (answer ARP/ND for it, take its traffic, announce it with a
   * gratuitous ARP / unsolicited NA) or release it (never answered for, its frames left to the
   * host). Every address starts owned. With workers, every worker applies it before this resolves.
   */
  async setVipOwned(addr: string, owned: boolean): Promise<void> {
    const a = typeof addr === "string" ? canonicalIp(addr) : undefined;
    if (a === undefined) throw new CoreError("EINVAL", "request", `Invalid address "${String(addr)}"`);
    if (owned) this.#released.delete(a);
    else this.#released.add(a);
    if (this.#pool) await this.#pool.own(a, owned);
    else this.#engine?.setOwned(a, owned);
  }

  async stop(_drainMs: number): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#engine?.stop();
    await this.#pool?.stop();
    if (this.#o.guard ?? !this.#o.io) removeGuard(this.#o.interface);
    this.#io?.close();
  }

  openFlows(): number {
    return this.#pool ? (this.#agg?.connections ?? 0) : this.#o.conns.size;
  }

  /** Connection entries across all workers as of the last collect; undefined with one worker (the daemon's table). */
  connCount(): number | undefined {
    return this.#pool ? (this.#agg?.connections ?? 0) : undefined;
  }

  /** New connections the workers refused because their tables were full (as of the last collect); undefined with one worker. */
  connRefused(): number | undefined {
    return this.#pool ? (this.#agg?.dropped ?? 0) : undefined;
  }

  /**
   * With several workers: gather every worker's report, write the summed counters and connection
   * counts into the daemon's tables and return all connection entries when `conns`. With one
   * worker the daemon's tables are the live ones and this does nothing.
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

  // ------------------------------------------------------------ connection sync

  /**
   * A sync master started (settings, and where selected entries go) or stopped (undefined): the
   * pipeline, or every worker, runs core's SyncPolicy after each forwarded client packet.
   */
  setSync(sync: PlaneSync | undefined): void {
    this.#sync = sync;
    this.#applySync();
  }

  #applySync(): void {
    const sync = this.#sync;
    if (this.#pool) {
      this.#pool.onSynced = sync?.emit;
      this.#pool.sync(sync ? sync.settings : null);
      return;
    }
    const p = this.#pipeline;
    if (!p) return;
    if (!sync) {
      p.onInbound = undefined;
      return;
    }
    const policy = new SyncPolicy(sync.settings);
    const emit = sync.emit;
    const pick = (c: Parameters<Parameters<SyncPolicy["inPacket"]>[2]>[0]) => emit([syncedConnOf(c)]);
    p.onInbound = (c, now) => policy.inPacket(c, now, pick);
  }

  /**
   * Records a sync backup received: with workers, each goes to the worker the steering program
   * sends its client's packets to (IPv6 and the kernel's hash fanout: see steerTuple; with
   * "hash" every worker gets a copy, since the kernel's flow hash cannot be computed here).
   * Returns false with one thread: the daemon's own table is the live one.
   */
  ingestSynced(recs: readonly SyncedConn[]): boolean {
    const pool = this.#pool;
    if (!pool) return false;
    const n = this.workers;
    const byWorker: SyncedConn[][] = Array.from({ length: n }, () => []);
    if (this.#o.fanout === "hash") for (const list of byWorker) list.push(...recs);
    else {
      const plan = this.#steeringPlan(ownedAddresses(this.#o.services, this.#o.vips ?? [], this.#o.localAddrs ?? []));
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

  /** Every entry as a sync record (bulk resync); undefined with one thread (the daemon's table). */
  async dumpSynced(): Promise<SyncedConn[] | undefined> {
    return this.#pool?.dump();
  }

  /** Sync records the workers ingested (as of the last collect); undefined with one thread. */
  syncedCounts(): { created: number; updated: number; refused: number } | undefined {
    return this.#pool ? { ...this.#syncedByWorkers } : undefined;
  }

  /** ipvsadm -Z reached the daemon's table; the workers zero their own counters too. */
  zeroed(key?: ServiceKey): void {
    this.#zeroEpoch++;
    this.#pool?.zero(key);
  }

  #zeroEpoch = 0;

  notes(): string[] {
    const pool = this.#pool;
    const n = pool
      ? [
          `packet plane on ${this.#o.interface}, ${pool.size} worker threads (fanout ${this.#o.fanout ?? "cbpf"})`,
          `connections across workers: ${this.#agg?.connections ?? 0} (refused when full: ${this.#agg?.dropped ?? 0})`,
          ...(this.#agg?.perWorker ?? []).map((w) => `worker ${w.index}: ${w.rx} frames, ${w.connections} connections`),
        ]
      : [`packet plane on ${this.#o.interface}, 1 thread (main loop)`];
    if (this.#guardError) n.push(`host guard not installed: ${this.#guardError}`);
    const c = pool ? this.#agg?.plane : this.#pipeline?.counters;
    if (c) n.push(`frames rx ${c.rx} fwd ${c.forwarded} reply ${c.replied} drop ${c.dropped} ignore ${c.ignored}`);
    return n;
  }

  /** Pipeline counters (frames, verdicts, drop reasons); summed over workers as of the last collect. */
  counters(): PlaneCounterSnapshot | undefined {
    return this.#pool ? this.#agg?.plane.snapshot() : this.#pipeline?.counters.snapshot();
  }

  /** Start the worker threads one by one (fanout member i is worker i), then give them the table. */
  async #startWorkers(): Promise<void> {
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
    };
    const pool = new PacketWorkerPool(o.log, (err) => {
      o.log.error("A packet worker was lost: its flows are gone and the fanout group no longer matches the workers", {
        err: err.message,
      });
      (o.onFatal ?? (() => undefined))(err);
    });
    await pool.start(Array.from({ length: n }, (_, index) => ({ ...base, index })));
    this.#pool = pool;
    this.#applySync();
    this.#started = true;
    if (!addr4) o.log.warn(`Interface "${o.interface}" has no IPv4 address: tunnel and ARP probes use 0.0.0.0`);
    await this.#syncWorkers();
    o.log.info("Packet data plane started", { interface: o.interface, addr4, workers: n, fanout: base.fanoutMode });
  }

  /**
   * Bring every worker up to the daemon's table (one image for all changes made in the same
   * tick), then the steering program, the host guard, announcements and probes.
   */
  #syncWorkers(): Promise<void> {
    if (!this.#syncing)
      this.#syncing = Promise.resolve().then(async () => {
        this.#syncing = undefined;
        await this.#pushTable();
      });
    return this.#syncing;
  }

  async #pushTable(): Promise<void> {
    const pool = this.#pool;
    if (!pool || !this.#started) return;
    const o = this.#o;
    // Image, owned addresses and steering plan all from this one moment of the table.
    const image = imageOf(o.services);
    const serials = this.#incarnations.serials(o.services);
    const mine = ownedAddresses(o.services, o.vips ?? [], o.localAddrs ?? []);
    const owned = [...mine.vips, ...mine.locals];
    const plan = this.#steeringPlan(mine);
    await pool.table(image, serials, o.conns.timeouts());
    if (this.#o.fanout !== "hash") {
      const program = steeringProgram(plan);
      const id = Buffer.from(program).toString("base64");
      if (id !== this.#program) {
        const key = plan.byAddress ? `address/${plan.mask >>> 0}` : "address+port";
        if (this.#steerKey !== undefined && key !== this.#steerKey && (this.#agg?.connections ?? 0) > 0)
          o.log.warn(
            "Persistence changed how flows are steered to workers: open connections may reach a worker that does not know them",
            {
              was: this.#steerKey,
              now: key,
            },
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
    this.#guard(owned);
    const fresh = owned.some((a) => !this.#owned.has(a));
    this.#owned = new Set(owned);
    pool.refresh(fresh, this.#destAddresses());
  }

  /** The steering program's view: frames to a VIP come from a client, to a local address are FULLNAT replies. */
  #steeringPlan(owned: OwnedAddresses) {
    let byAddress = false;
    let prefix = 32;
    for (const svc of this.#o.services.services()) {
      if (!svc.options.persistent || svc.key.kind !== "vip" || svc.key.addr.includes(":")) continue;
      byAddress = true;
      prefix = Math.min(prefix, svc.options.netmask);
    }
    return {
      vips: owned.vips,
      locals: owned.locals,
      byAddress,
      mask: prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0,
    };
  }

  #destAddresses(): string[] {
    const next = new Set<string>();
    for (const svc of this.#o.services.services()) for (const d of svc.dests) next.add(d.addr);
    return [...next];
  }

  /** The pipeline (tests and the lab read its neighbour cache and verdicts). */
  get pipeline(): Pipeline | undefined {
    return this.#pipeline;
  }

  get engine(): PacketEngine | undefined {
    return this.#engine;
  }

  /** Owned addresses changed or destinations appeared: guard, announce, resolve. */
  #refresh(): void {
    const p = this.#pipeline;
    const e = this.#engine;
    if (!p || !e) return;
    const before = new Set(p.ownedAddresses());
    p.refreshVips();
    // The guard covers released VIPs too (the host must not take them either); only owned ones are announced.
    this.#guard(p.responder.configured());
    if (p.ownedAddresses().some((a) => !before.has(a))) e.announce();
    e.resolve(this.#destAddresses());
  }

  /** Keep the host kernel out of VIP traffic (nft netdev guard), unless told not to. */
  #guard(owned: readonly string[]): void {
    if (this.#o.guard ?? !this.#o.io) {
      const natDests = new Set<string>();
      for (const svc of this.#o.services.services())
        for (const d of svc.dests) if (d.fwd === "masq") natDests.add(d.addr);
      const self = [
        this.#o.addr4 ?? firstAddress(this.#o.interface, "IPv4"),
        this.#o.addr6 ?? firstAddress(this.#o.interface, "IPv6"),
      ];
      this.#guardError = installGuard({
        ifname: this.#o.interface,
        owned: [...owned],
        natDests: [...natDests],
        self: self.filter((a): a is string => a !== undefined),
      });
      if (this.#guardError)
        this.#o.log.warn("VIP traffic also reaches the host kernel (nft guard not installed)", {
          error: this.#guardError,
        });
    }
  }
}

/**
 * Create the packet data plane. Throws NativeUnavailableError (saying why and what to do) when
 * the native addon cannot load; start() throws when the interface cannot be opened (no such
 * interface, no CAP_NET_RAW).
 */
export function createPacketDataPlane(options: PacketDataPlaneOptions): PacketDataPlane {
  if (!options.io) loadNative(); // fail now, with the reason and the remedy, if the addon is missing
  return new PacketDataPlane(options);
}

/** The daemon's dependencies (DataPlaneDeps in src/control/dataplane.ts, matched structurally). */
export interface PacketPlaneDeps {
  services: ServiceTable;
  conns: ConnTable;
  clock: Clock;
  log: Logger;
}

/**
 * The form tvsd-main loads: `createPacketPlane(deps, { interface, ... })`. Same as
 * createPacketDataPlane with the daemon's dependencies and the plane's options kept apart.
 */
export function createPacketPlane(
  deps: PacketPlaneDeps,
  opts: Omit<PacketDataPlaneOptions, keyof PacketPlaneDeps>,
): PacketDataPlane {
  return createPacketDataPlane({ ...opts, ...deps });
}
