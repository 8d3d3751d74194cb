// The packet data plane on one thread (the default, --workers 1): raw frames on one interface
// through the native AF_PACKET io, the pipeline on the daemon's own ServiceTable and ConnTable
// (so ipvsadm listings, --stats, --rate and -c see every connection without aggregation), polled
// on the main loop. The nft guard keeps the host kernel out of VIP traffic; gratuitous ARPs go
// out when VIPs come up and ARP probes for real servers.

import { type SyncedConn, syncedConnOf } from "../../core/conn/conn-sync.ts";
import { SyncPolicy } from "../../core/conn/sync-policy.ts";
import type { DestSpec } from "../../core/dest.ts";
import type { FwmarkRule } from "../../core/fwmark/rule.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../../core/service.ts";
import type { PlaneCounterSnapshot } from "./counters.ts";
import { type BatchingIo, PacketEngine } from "./engine.ts";
import { removeGuard } from "./host-guard.ts";
import { reassemblyNote } from "./ipv6-defrag.ts";
import { kernelNextHop } from "./kernel-routes.ts";
import { NativePacketIo } from "./native-io.ts";
import { Pipeline } from "./pipeline.ts";
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
} from "./plane-shared.ts";

export class LoopPacketPlane {
  readonly name = "packet";
  readonly workers = 1;
  readonly #o: PacketDataPlaneOptions;
  #engine: PacketEngine | undefined;
  #pipeline: Pipeline | undefined;
  #io: BatchingIo | undefined;
  #guardError: string | undefined;
  #started = false;
  #sync: PlaneSync | undefined;
  /** Addresses released by setVipOwned (canonical text). */
  readonly #released = new Set<string>();
  #fwmarkRules: readonly FwmarkRule[];
  /** fwmark services no rule feeds, as last warned (tvs status shows them). */
  readonly #fwmarkGaps = new Set<string>();

  constructor(o: PacketDataPlaneOptions) {
    this.#o = o;
    this.#fwmarkRules = o.fwmarkRules ?? [];
  }

  /** Replace the firewall-mark rules (refused, rules unchanged, when this plane cannot carry them). */
  async setFwmarkRules(rules: readonly FwmarkRule[]): Promise<void> {
    admitFwmarkRules(this.#o, rules);
    this.#fwmarkRules = rules;
    this.#pipeline?.setFwmarkRules(rules);
    this.#refresh();
  }

  admitService(key: ServiceKey, options: ServiceOptions, op: "add-service" | "edit-service"): void {
    admitPacketService(this.#o, key, options, op);
  }

  admitDest(key: ServiceKey, spec: DestSpec, op: "add-dest" | "edit-dest"): DestSpec {
    return admitPacketDest(this.#o, key, spec, op);
  }

  async start(): Promise<void> {
    if (this.#started) return;
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
      fwmarkRules: this.#fwmarkRules,
      clientNextHop: kernelNextHop(o.interface),
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
    this.#refresh();
  }

  serviceChanged(_svc: VirtualService): void {
    this.#refresh();
  }

  serviceRemoved(_svc: VirtualService): void {
    this.#refresh();
  }

  /**
   * VRRP's switch: own a VIP (answer ARP/ND for it, take its traffic, announce it with a
   * gratuitous ARP / unsolicited NA) or release it (never answered for, its frames left to the
   * host). Every address starts owned.
   */
  async setVipOwned(addr: string, owned: boolean): Promise<void> {
    const a = vipArgument(addr);
    if (owned) this.#released.delete(a);
    else this.#released.add(a);
    this.#engine?.setOwned(a, owned);
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

  /** The daemon's table is the live one: nothing held elsewhere. */
  connCount(): number | undefined {
    return undefined;
  }

  connRefused(): number | undefined {
    return undefined;
  }

  /** The daemon's tables are the live ones: nothing to gather. */
  async collect(_conns: boolean): Promise<undefined> {
    return undefined;
  }

  /**
   * A sync master started (settings, and where selected entries go) or stopped (undefined): the
   * pipeline runs core's SyncPolicy after each forwarded client packet.
   */
  setSync(sync: PlaneSync | undefined): void {
    this.#sync = sync;
    this.#applySync();
  }

  /** A sync backup's records go to the daemon's own table (the live one): false. */
  ingestSynced(_recs: readonly SyncedConn[]): boolean {
    return false;
  }

  async dumpSynced(): Promise<undefined> {
    return undefined;
  }

  syncedCounts(): undefined {
    return undefined;
  }

  zeroed(_key?: ServiceKey): void {}

  notes(): string[] {
    const n = [`packet plane on ${this.#o.interface}, 1 thread (main loop)`];
    if (this.#guardError) n.push(`host guard not installed: ${this.#guardError}`);
    n.push(...this.#fwmarkGaps);
    const c = this.#pipeline?.counters;
    if (c) n.push(`frames rx ${c.rx} fwd ${c.forwarded} reply ${c.replied} drop ${c.dropped} ignore ${c.ignored}`);
    if (c && c.fragmentsIn > 0) n.push(reassemblyNote(c));
    return n;
  }

  /** Pipeline counters (frames, verdicts, drop reasons). */
  counters(): PlaneCounterSnapshot | undefined {
    const c = this.#pipeline?.counters;
    if (c) c.rxSocketDrops += this.#io?.socketDrops?.() ?? 0;
    return c?.snapshot();
  }

  /** The pipeline (tests and the lab read its neighbour cache and verdicts). */
  get pipeline(): Pipeline | undefined {
    return this.#pipeline;
  }

  get engine(): PacketEngine | undefined {
    return this.#engine;
  }

  #applySync(): void {
    const p = this.#pipeline;
    const sync = this.#sync;
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

  /** Owned addresses changed or destinations appeared: guard, announce, resolve. */
  #refresh(): void {
    const p = this.#pipeline;
    const e = this.#engine;
    if (!p || !e) return;
    const before = new Set(p.ownedAddresses());
    p.refreshVips();
    // The guard covers released VIPs too (the host must not take them either); only owned ones are announced.
    this.#guardError = guardHost(this.#o, p.responder.configured(), this.#fwmarkRules);
    warnFwmarkGaps(this.#o, this.#fwmarkRules, this.#fwmarkGaps);
    if (p.ownedAddresses().some((a) => !before.has(a))) e.announce();
    e.resolve(destAddresses(this.#o.services));
  }
}
