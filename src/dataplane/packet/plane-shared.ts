// What both packet data planes share (the single loop, loop-plane.ts, and the worker pool,
// pool-plane.ts): their options, the admission rules (what the packet plane can carry), the
// host guard, and the interface's own addresses.

import { networkInterfaces } from "node:os";
import { canonicalIp } from "../../core/addr.ts";
import type { Clock } from "../../core/clock.ts";
import type { SyncedConn } from "../../core/conn/conn-sync.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import type { SyncSettings } from "../../core/conn/sync-policy.ts";
import type { DestSpec } from "../../core/dest.ts";
import { CoreError } from "../../core/errors.ts";
import { fwmarkServiceSet, guardRules, marksWithoutRules } from "../../core/fwmark/coverage.ts";
import { type FwmarkRule, formatFwmarkRule, hostAddress } from "../../core/fwmark/rule.ts";
import type { Logger } from "../../core/log.ts";
import { engineRefusal } from "../../core/pe/persistence-key.ts";
import type { ServiceKey, ServiceOptions } from "../../core/service.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import type { BatchingIo } from "./engine.ts";
import { installGuard } from "./host-guard.ts";
import type { WorkerPoolPort } from "./workers/pool.ts";

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
  /** Firewall-mark rules at start (setFwmarkRules replaces them). */
  fwmarkRules?: readonly FwmarkRule[];
  /** Make the worker pool (tests: a fake with the same face); default: PacketWorkerPool's threads. */
  workerPool?: (log: Logger, onLost: (err: Error) => void) => WorkerPoolPort;
}

export function firstAddress(ifname: string, family: "IPv4" | "IPv6"): string | undefined {
  const list = networkInterfaces()[ifname] ?? [];
  return list.find((a) => a.family === family && !(family === "IPv6" && a.address.startsWith("fe80")))?.address;
}

/** This daemon's PACKET_FANOUT group id (groups are per network namespace; one daemon per namespace and interface). */
export function fanoutGroupId(): number {
  return (process.pid ^ 0x7651) & 0xffff;
}

/** A sync master's hook into a plane: its settings and where selected entries go. */
export interface PlaneSync {
  settings: SyncSettings;
  emit: (recs: SyncedConn[]) => void;
}

/** The daemon's dependencies (DataPlaneDeps in src/control/dataplane.ts, matched structurally). */
export interface PacketPlaneDeps {
  services: ServiceTable;
  conns: ConnTable;
  clock: Clock;
  log: Logger;
}

/** How many threads the options ask for (an injected io is always one). */
export function workerCount(o: PacketDataPlaneOptions): number {
  return o.io ? 1 : Math.max(1, o.workers ?? 1);
}

/** Several workers sharing by the kernel's flow hash: a reply or a persistent client may reach another worker. */
export function hashShared(o: PacketDataPlaneOptions): boolean {
  return workerCount(o) > 1 && o.fanout === "hash";
}

/**
 * Vet a service for the packet plane (DataPlane.admitService). Every kind is carried: address
 * services of TCP, UDP and SCTP, and fwmark services (the firewall-mark rules classify frames).
 */
export function admitPacketService(
  o: PacketDataPlaneOptions,
  key: ServiceKey,
  options: ServiceOptions,
  op: "add-service" | "edit-service",
): void {
  if (hashShared(o) && options.persistent)
    throw new CoreError(
      "EOPNOTSUPP",
      op,
      `Persistent services need the steered fanout (--fanout cbpf): with "hash" a client's connections reach different workers`,
    );
  const engine = engineRefusal(key, options);
  if (engine !== undefined) throw new CoreError("EOPNOTSUPP", op, engine);
}

/** Vet a destination for the packet plane (DataPlane.admitDest). */
export function admitPacketDest(
  o: PacketDataPlaneOptions,
  key: ServiceKey,
  spec: DestSpec,
  op: "add-dest" | "edit-dest",
): DestSpec {
  const vport = key.kind === "vip" ? key.port : 0;
  if (spec.fwd === "local")
    throw new CoreError("EOPNOTSUPP", op, `Forwarding method "local" is not supported by the packet data plane`);
  if ((spec.fwd === "droute" || spec.fwd === "tunnel") && vport !== 0 && spec.port !== vport)
    throw new CoreError(
      "EINVAL",
      op,
      `Real server port ${spec.port} differs from virtual port ${vport}: ${spec.fwd === "droute" ? "direct routing" : "tunnelling"} cannot map ports`,
    );
  if (hashShared(o) && (spec.fwd === "masq" || spec.fwd === "fullnat"))
    throw new CoreError(
      "EOPNOTSUPP",
      op,
      `Forwarding method "${spec.fwd}" needs the steered fanout (--fanout cbpf): with "hash" replies reach other workers`,
    );
  if (spec.fwd === "fullnat" && (o.localAddrs ?? []).length === 0)
    throw new CoreError("EINVAL", op, `FULLNAT destination "${spec.addr}" needs local addresses (--local-addrs)`);
  return spec;
}

/** setVipOwned's argument, checked where it enters: canonical text, or EINVAL. */
export function vipArgument(addr: unknown): string {
  const a = typeof addr === "string" ? canonicalIp(addr) : undefined;
  if (a === undefined) throw new CoreError("EINVAL", "request", `Invalid address "${String(addr)}"`);
  return a;
}

/** Every real server's address (probed so their MACs are known before traffic). */
export function destAddresses(services: ServiceTable): string[] {
  const next = new Set<string>();
  for (const svc of services.services()) for (const d of svc.dests) next.add(d.addr);
  return [...next];
}

/**
 * Keep the host kernel out of VIP traffic (nft netdev guard), unless told not to. Returns the
 * reason it could not be installed (also logged), or undefined.
 */
export function guardHost(
  o: PacketDataPlaneOptions,
  owned: readonly string[],
  fwmarkRules: readonly FwmarkRule[] = [],
): string | undefined {
  if (!(o.guard ?? !o.io)) return undefined;
  const natDests = new Set<string>();
  for (const svc of o.services.services()) for (const d of svc.dests) if (d.fwd === "masq") natDests.add(d.addr);
  const self = [o.addr4 ?? firstAddress(o.interface, "IPv4"), o.addr6 ?? firstAddress(o.interface, "IPv6")];
  const error = installGuard({
    ifname: o.interface,
    owned: [...owned],
    natDests: [...natDests],
    self: self.filter((a): a is string => a !== undefined),
    marked: guardRules(fwmarkRules, fwmarkServiceSet(o.services.services().map((s) => s.key))),
  });
  if (error) o.log.warn("VIP traffic also reaches the host kernel (nft guard not installed)", { error });
  return error;
}

/**
 * Check firewall-mark rules against this plane's shape (DataPlane.setFwmarkRules); throws a
 * CoreError naming the rule. Several workers steered by the cbpf program: the program tells a
 * client's frame from a reply by its destination, and matches IPv4 prefixes but only single
 * IPv6 addresses, so an IPv6 rule's destination must be one address.
 */
export function admitFwmarkRules(o: PacketDataPlaneOptions, rules: readonly FwmarkRule[]): void {
  if (workerCount(o) <= 1 || o.fanout === "hash") return;
  for (const r of rules)
    if (r.dst.family === 6 && hostAddress(r.dst) === undefined)
      throw new CoreError(
        "EOPNOTSUPP",
        "request",
        `Firewall-mark rule "${formatFwmarkRule(r)}" (${r.origin}): with ${workerCount(o)} packet workers steered by --fanout cbpf an IPv6 rule's destination must be one address (the steering program matches IPv6 addresses, not prefixes); use --workers 1 or one rule per address`,
      );
}

/** tvs status lines (and warnings) for fwmark services no rule feeds. */
export function fwmarkNotes(services: ServiceTable, rules: readonly FwmarkRule[]): string[] {
  return marksWithoutRules(
    services.services().map((s) => s.key),
    rules,
  ).map(
    (m) =>
      `FWM ${m.fwmark}${m.family === 6 ? " IPv6" : ""}: no firewall-mark rule sets mark ${m.fwmark} for IPv${m.family}, so no traffic reaches this service (add one: tvsd --fwmark-rule 'tcp ADDR PORTS mark ${m.fwmark}'; tvs fwmark lists the rules)`,
  );
}

/** Log each fwmark-without-rule note once (again only after it went away); returns the current notes. */
export function warnFwmarkGaps(o: PacketDataPlaneOptions, rules: readonly FwmarkRule[], warned: Set<string>): string[] {
  const notes = fwmarkNotes(o.services, rules);
  for (const n of notes) if (!warned.has(n)) o.log.warn(n);
  warned.clear();
  for (const n of notes) warned.add(n);
  return notes;
}
