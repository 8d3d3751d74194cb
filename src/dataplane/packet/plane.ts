// The packet data plane as tvsd sees it (the DataPlane shape of src/control/dataplane.ts, matched
// structurally): raw frames on one interface through the native AF_PACKET io, the pipeline on
// the daemon's own ServiceTable and ConnTable (so ipvsadm listings, --stats, --rate and -c see
// every connection without aggregation), the nft guard that keeps the host kernel out of VIP
// traffic, gratuitous ARPs when VIPs come up and ARP probes for real servers.
//
// Threads: this version runs the pipeline on the daemon's main thread (one AF_PACKET socket,
// uv_poll on the main loop). The io already supports PACKET_FANOUT_HASH groups for a worker per
// core; the worker split (per-worker ConnTables, service-table sync messages, aggregated
// listings) is not built yet.

import { networkInterfaces } from "node:os";
import type { Clock } from "../../core/clock.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import type { DestSpec } from "../../core/dest.ts";
import { CoreError } from "../../core/errors.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../../core/service.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import type { PlaneCounterSnapshot } from "./counters.ts";
import { type BatchingIo, PacketEngine } from "./engine.ts";
import { installGuard, removeGuard } from "./host-guard.ts";
import { loadNative, NativePacketIo } from "./native-io.ts";
import { Pipeline } from "./pipeline.ts";

export interface PlaneLogLike {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

export interface PacketDataPlaneOptions {
  /** The interface clients and real servers are reached on (one-arm director). */
  interface: string;
  services: ServiceTable;
  conns: ConnTable;
  clock: Clock;
  log: PlaneLogLike;
  /** Addresses to own besides the services' VIPs (answer ARP/ND, guard from the host). */
  vips?: readonly string[];
  /** FULLNAT local address pool; required for fullnat destinations. */
  localAddrs?: readonly string[];
  /** The director's IPv4 on the interface (tunnel outer source, ARP probes); default: the first one found. */
  addr4?: string;
  addr6?: string;
  /** Worker threads; only 1 is implemented (more logs a warning and uses 1). */
  workers?: number;
  /** Use PACKET_VNET_HDR (offloaded checksums and 64 KB GSO frames pass through); default true. */
  vnetHdr?: boolean;
  /** Install the nft netdev ingress guard; default true. */
  guard?: boolean;
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

export class PacketDataPlane {
  readonly name = "packet";
  readonly #o: PacketDataPlaneOptions;
  #engine: PacketEngine | undefined;
  #pipeline: Pipeline | undefined;
  #io: BatchingIo | undefined;
  #guardError: string | undefined;
  #started = false;

  constructor(o: PacketDataPlaneOptions) {
    this.#o = o;
    if ((o.workers ?? 1) > 1) o.log.warn("Packet plane: only one worker is implemented; using 1", { asked: o.workers });
  }

  admitService(key: ServiceKey, _options: ServiceOptions, op: "add-service" | "edit-service"): void {
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
    if (spec.fwd === "fullnat" && (this.#o.localAddrs ?? []).length === 0)
      throw new CoreError("EINVAL", op, `FULLNAT destination "${spec.addr}" needs local addresses (--local-addrs)`);
    return spec;
  }

  async start(): Promise<void> {
    if (this.#started) return;
    const o = this.#o;
    const io = o.io ?? new NativePacketIo({ ifname: o.interface, vnetHdr: o.vnetHdr ?? true });
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
      tunClampMss: o.tunClampMss ?? false,
    });
    this.#pipeline = pipeline;
    this.#engine = new PacketEngine(io, pipeline, () => o.clock.now(), o.batch ?? 64);
    if (!addr4) o.log.warn(`Interface "${o.interface}" has no IPv4 address: tunnel and ARP probes use 0.0.0.0`);
    this.#refresh();
    this.#engine.start();
    this.#started = true;
    o.log.info("Packet data plane started", { interface: o.interface, addr4, vnetHdr: io.vnetHdr });
  }

  async serviceAdded(_svc: VirtualService): Promise<void> {
    this.#refresh();
  }

  serviceChanged(_svc: VirtualService): void {
    this.#refresh();
  }

  serviceRemoved(_svc: VirtualService): void {
    this.#refresh();
  }

  async stop(_drainMs: number): Promise<void> {
    if (!this.#started) return;
    this.#started = false;
    this.#engine?.stop();
    if (this.#o.guard ?? !this.#o.io) removeGuard(this.#o.interface);
    this.#io?.close();
  }

  openFlows(): number {
    return this.#o.conns.size;
  }

  notes(): string[] {
    const n = [`packet plane on ${this.#o.interface}, 1 thread (main loop)`];
    if (this.#guardError) n.push(`host guard not installed: ${this.#guardError}`);
    const c = this.#pipeline?.counters;
    if (c) n.push(`frames rx ${c.rx} fwd ${c.forwarded} reply ${c.replied} drop ${c.dropped} ignore ${c.ignored}`);
    return n;
  }

  /** Pipeline counters (frames, verdicts, drop reasons). */
  counters(): PlaneCounterSnapshot | undefined {
    return this.#pipeline?.counters.snapshot();
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
    const owned = p.ownedAddresses();
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
        owned,
        natDests: [...natDests],
        self: self.filter((a): a is string => a !== undefined),
      });
      if (this.#guardError)
        this.#o.log.warn("VIP traffic also reaches the host kernel (nft guard not installed)", {
          error: this.#guardError,
        });
    }
    if (owned.some((a) => !before.has(a))) e.announce();
    const next = new Set<string>();
    for (const svc of this.#o.services.services()) for (const d of svc.dests) next.add(d.addr);
    e.resolve([...next]);
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
  log: PlaneLogLike;
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
