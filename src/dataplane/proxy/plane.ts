// The socket data plane (tvsd's embedded default; no privilege needed). For every virtual service
// it listens on the VIP and port (TCP: a net.Server, UDP: a datagram socket); fwmark services listen
// on the addresses configured for their mark, since sockets cannot see marks. New connections are
// scheduled through core's connection table and relayed by handle-relay.ts (on libuv's TCP handles,
// with listeners from handle-listener.ts) or, where Node does not expose those handles, by
// tcp-relay.ts (net.Server and net.Socket); UDP by udp-relay.ts.
//
// Forwarding methods: a socket relay is a full proxy, so masq (-m) and fullnat both work and behave
// alike (the real server sees the director's address; PROXY protocol can tell it the client's).
// Direct routing and tunnelling need raw frames: -i is refused with EOPNOTSUPP naming the packet
// data plane. -g is ipvsadm's default forwarding method, so tvsadm sends it whenever no method was
// given; this plane therefore accepts -g and carries it as masq, logging a warning and listing the
// mapping in tvs status (the listing shows "Masq", which is what really happens). Services on port 0
// (all ports) and SCTP services are refused: a socket cannot listen on every port, and Node has no SCTP.
//
// Listeners are endpoints (protocol, address, port) that point at the service they serve. A change
// that adds services is prepared before the tables change (prepare): every new endpoint is bound
// first, and if one cannot be (address in use, not local, no descriptor left) all the new ones are
// closed again and the change is refused with the index of the request that failed, so a refused
// change leaves neither a service nor a listener behind. An endpoint whose service is deleted and
// re-added in the same change passes from the old service to the new one without closing.
//
// Resources the network can consume are bounded (fd-budget.ts, udp-flow-table.ts): sockets come
// from a descriptor budget that keeps a reserve for the control plane, and UDP flows from a capped
// table with shared sockets. pressure() reports both for status and metrics.

import net from "node:net";
import { canonicalIp, formatEndpoint } from "../../core/addr.ts";
import type { Clock } from "../../core/clock.ts";
import { type SyncedConn, syncedConnOf } from "../../core/conn/conn-sync.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import { SyncPolicy, type SyncSettings } from "../../core/conn/sync-policy.ts";
import type { DestSpec } from "../../core/dest.ts";
import { CoreError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import { engineRefusal } from "../../core/pe/persistence-key.ts";
import { BatchError } from "../../core/request.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../../core/service.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import { FdBudget } from "./fd-budget.ts";
import { HandleListener } from "./handle-listener.ts";
import { HandleRelay } from "./handle-relay.ts";
import { type TcpBinding, type TcpHandle, tcpBinding } from "./libuv-tcp.ts";
import { LimitAlarm } from "./limit-alarm.ts";
import { type NativeListener, NativeRelay, NativeRelayEngine } from "./native-relay.ts";
import { defaultProxyOptions, type ListenAddr, type ProxyPlaneOptions } from "./options.ts";
import { listenReusePort, reusePortAvailable, reusePortFd, reusePortUdpFd } from "./reuse-port.ts";
import { type Arrival, type PlaneSlot, TcpRelay, type TcpRelayContext } from "./tcp-relay.ts";
import { UdpFlowTable } from "./udp-flow-table.ts";
import { type UdpContext, UdpListener } from "./udp-relay.ts";
import { steerBySource } from "./worker-steering.ts";

export interface ProxyPlaneDeps {
  services: ServiceTable;
  conns: ConnTable;
  clock: Clock;
  log: Logger;
}

/**
 * A bound VIP socket and the service it serves now (undefined while prepared or between owners);
 * fd is the worker's own SO_REUSEPORT socket (steerable), steered how it is steered now: by client
 * network under "FAMILY/PREFIX" (the persistence netmask), or "" (the kernel's flow hash).
 */
type Endpoint = { id: string; svc: VirtualService | undefined; fd?: number; steered?: string } & (
  | { kind: "tcp"; server: net.Server | HandleListener | NativeListener; arrival: Arrival }
  | { kind: "udp"; udp: UdpListener }
);

/** A service a change will add, and the position of its request (for the error's index). */
export interface PlannedService {
  key: ServiceKey;
  index: number;
}

/** Endpoints bound ahead of a change; release() closes those no service took. */
export interface PreparedChange {
  release(): void;
}

/** Figures for status and metrics: how close the plane is to its limits, and what it refused. */
export type PlanePressure = {
  /** Descriptors the plane may hold (Infinity when the process limit is unknown). */
  fdLimit: number;
  fdUsed: number;
  /** Descriptors kept for the control plane. */
  fdReserve: number;
  /** Sockets refused because the budget was spent (TCP clients reset, UDP datagrams dropped, listeners). */
  fdRefused: number;
  udpFlows: number;
  udpFlowLimit: number;
  udpSockets: number;
  /** UDP flows evicted because the flow table was full. */
  udpEvicted: number;
};

function endpointId(protocol: string, addr: string, port: number): string {
  return `${protocol}|${addr}|${port}`;
}

function serviceText(key: ServiceKey): string {
  if (key.kind === "fwmark") return `fwmark ${key.fwmark}`;
  return `${key.protocol} ${formatEndpoint(key.addr, key.port)}`;
}

/** The UDP flow cap where the descriptor budget is unknown (not Linux). */
const DEFAULT_UDP_FLOW_LIMIT = 16_384;

export class ProxyPlane {
  readonly name = "proxy";
  readonly #deps: ProxyPlaneDeps;
  readonly #options: ProxyPlaneOptions;
  readonly #relayCtx: TcpRelayContext & UdpContext;
  readonly #fds: FdBudget;
  /** Bound endpoints by endpointId. */
  readonly #endpoints = new Map<string, Endpoint>();
  /** Endpoints by the service they serve (a re-added service with the same key is a new object). */
  readonly #byService = new Map<VirtualService, Endpoint[]>();
  /** Endpoints a prepared change will hand to a new service: kept open when their old service goes. */
  readonly #reserved = new Set<Endpoint>();
  /** VIPs VRRP manages, and the services waiting for theirs to arrive. */
  #expected = new Set<string>();
  readonly #waiting = new Map<VirtualService, string>();
  /** -g destinations carried as masq, for the notes: "service -> dest" → where it is. */
  readonly #mapped = new Map<string, { key: ServiceKey; addr: string; port: number }>();
  #stopping = false;

  constructor(deps: ProxyPlaneDeps, options: Partial<ProxyPlaneOptions> = {}) {
    this.#deps = deps;
    this.#options = { ...defaultProxyOptions(), ...options };
    this.#fds = new FdBudget(this.#options.fdReserve !== undefined ? { reserve: this.#options.fdReserve } : {});
    const fdAlarm = new LimitAlarm(
      deps.log,
      "error",
      "Data plane at its file descriptor limit: refusing new connections (the control socket keeps its reserve)",
    );
    const udpLimit =
      this.#options.udpFlowLimit ??
      (Number.isFinite(this.#fds.limit) ? Math.max(16, Math.floor(this.#fds.limit / 4)) : DEFAULT_UDP_FLOW_LIMIT);
    const udpFlows = new UdpFlowTable({
      limit: udpLimit,
      fds: this.#fds,
      fdAlarm,
      fullAlarm: new LimitAlarm(deps.log, "warn", "UDP flow table full: evicting the oldest unanswered flows first"),
      evict: (flow) => {
        if (flow.conn) deps.conns.remove(flow.conn, deps.clock.now());
      },
      onSocketError: (err) => deps.log.debug("UDP flow socket error", { err }),
    });
    this.#relayCtx = {
      conns: deps.conns,
      clock: deps.clock,
      log: deps.log,
      options: this.#options,
      open: new Set(),
      fds: this.#fds,
      fdAlarm,
      udpFlows,
    };
    const prev = deps.conns.onRemove;
    deps.conns.onRemove = (c) => {
      (c.plane as PlaneSlot | undefined)?.closeFromTable?.();
      prev?.(c);
    };
  }

  /**
   * A sync master started (settings, and where selected entries go) or stopped: every client
   * packet (a chunk or datagram here) goes through core's SyncPolicy, as the kernel's ip_vs_in.
   * The socket plane cannot hand a TCP connection to another host (its sockets end here), so what
   * a backup can use from it are the persistence templates; connections are sent all the same,
   * for a backup on the packet plane or a kernel.
   */
  setSync(sync: { settings: SyncSettings; emit: (recs: SyncedConn[]) => void } | undefined): void {
    if (sync === undefined) {
      this.#relayCtx.syncIn = undefined;
      return;
    }
    const policy = new SyncPolicy(sync.settings);
    const emit = sync.emit;
    const pick = (c: Parameters<Parameters<SyncPolicy["inPacket"]>[2]>[0]) => emit([syncedConnOf(c)]);
    this.#relayCtx.syncIn = (c, now) => policy.inPacket(c, now, pick);
  }

  /** What a sync backup may put in the table here: templates only (see setSync). */
  readonly syncTemplatesOnly = true;

  admitService(key: ServiceKey, options: ServiceOptions, op: "add-service" | "edit-service"): void {
    const engine = engineRefusal(key, options);
    if (engine !== undefined) throw new CoreError("EOPNOTSUPP", op, engine);
    if (key.kind === "vip" && key.protocol === "sctp")
      throw new CoreError("EOPNOTSUPP", op, `SCTP service "${serviceText(key)}" needs the packet data plane`);
    if (key.kind === "vip" && key.port === 0)
      throw new CoreError(
        "EOPNOTSUPP",
        op,
        `Port 0 service "${serviceText(key)}" (all ports) needs the packet data plane; the socket data plane listens on one port per service`,
      );
    if (key.kind === "fwmark" && !this.#options.fwmarkAddrs.has(key.fwmark))
      throw new CoreError(
        "EOPNOTSUPP",
        op,
        `Firewall mark ${key.fwmark} has no addresses on the socket data plane (start tvsd with --fwmark-addr ${key.fwmark}=tcp:ADDR:PORT)`,
      );
  }

  admitDest(key: ServiceKey, spec: DestSpec, op: "add-dest" | "edit-dest"): DestSpec {
    if (spec.fwd === "tunnel")
      throw new CoreError(
        "EOPNOTSUPP",
        op,
        `Forwarding method tunnel (-i) for "${spec.addr}" needs the packet data plane (tvsd --dataplane packet); the socket data plane supports masq (-m) and fullnat`,
      );
    // A destination on one of the service's own listening endpoints (port 0 is the client's
    // destination port, so the listening port) would have every connection connect to the plane
    // again, each taking descriptors until the budget is spent.
    const daddr = canonicalIp(spec.addr) ?? spec.addr;
    const self = this.#listenAddrs(key).find((a) => a.addr === daddr && (spec.port === a.port || spec.port === 0));
    if (self !== undefined)
      throw new CoreError(
        "EINVAL",
        op,
        `Destination "${spec.addr}:${spec.port}" is the virtual service itself${spec.port === 0 ? ` (port 0 is the service's port, ${self.port})` : ""}; the socket data plane would forward to itself${spec.fwd === "droute" ? " (-g keeps the service port: give -m and the real server's port)" : ""}`,
      );
    if (spec.fwd === "droute") {
      const id = `${serviceText(key)} -> ${formatEndpoint(spec.addr, spec.port)}`;
      if (!this.#mapped.has(id)) {
        this.#mapped.set(id, { key, addr: spec.addr, port: spec.port });
        this.#deps.log.warn("Direct routing is carried as masq on the socket data plane", {
          service: serviceText(key),
          dest: formatEndpoint(spec.addr, spec.port),
        });
      }
      return { ...spec, fwd: "masq" };
    }
    return spec;
  }

  async start(): Promise<void> {
    // A relay named on purpose (tvsd --tcp-relay) must be the one that runs, or the start fails.
    const relay = this.#options.relay;
    if (relay === "native" && NativeRelayEngine.get() === undefined)
      throw new Error(
        "--tcp-relay native needs the native addon with its TCP pump (npm run build:native); without it, leave --tcp-relay out",
      );
    if (relay === "handle" && tcpBinding() === undefined)
      throw new Error(
        "--tcp-relay handle needs Node's TCP handles, which this Node does not expose; use --tcp-relay stream",
      );
    this.#stopping = false;
  }

  #arrival(svc: VirtualService | ServiceKey, a: ListenAddr): Arrival {
    const key = "key" in svc ? svc.key : svc;
    return { vaddr: a.addr, vport: a.port, fwmark: key.kind === "fwmark" ? key.fwmark : 0 };
  }

  /** The endpoints a service listens on (UDP ones only where this process serves UDP). */
  #listenAddrs(key: ServiceKey): ListenAddr[] {
    const all: ListenAddr[] =
      key.kind === "vip"
        ? [{ protocol: key.protocol, addr: canonicalIp(key.addr) ?? key.addr, port: key.port }]
        : (this.#options.fwmarkAddrs.get(key.fwmark) ?? []);
    return all.filter((a) => a.protocol !== "udp" || this.#options.udp);
  }

  /** Bind one endpoint (taking its descriptor); rejects with a message naming the address. */
  async #bind(id: string, a: ListenAddr, arrival: Arrival): Promise<Endpoint> {
    if (!this.#fds.take(1, true)) {
      this.#relayCtx.fdAlarm.hit({ what: "listener", listen: `${a.protocol} ${a.addr}:${a.port}` });
      throw new Error("no file descriptor left for the data plane");
    }
    try {
      if (a.protocol === "udp") {
        const udp = new UdpListener(this.#relayCtx, undefined, arrival);
        const ep: Endpoint = { id, svc: undefined, kind: "udp", udp };
        try {
          const fd = this.#options.sharedListen ? reusePortUdpFd(a.addr, a.port) : undefined;
          if (fd !== undefined) ep.fd = fd;
          await udp.bind(fd);
        } catch (err) {
          udp.closeVip();
          throw err;
        }
        return ep;
      }
      const pump = this.#pump();
      if (pump !== undefined) {
        // The fastest path: the addon's pump accepts, connects and relays (native-relay.ts), on
        // this worker's own SO_REUSEPORT socket when workers share the VIP.
        const fd = reusePortFd(a.addr, a.port, this.#options.sharedListen);
        if (fd !== undefined) {
          const ep = { id, svc: undefined, kind: "tcp", arrival } as Endpoint & { kind: "tcp" };
          ep.server = pump.listen(fd, {
            accept: (client, addr, port) => this.#acceptNative(pump, ep, client, addr, port),
            acceptFailed: (errno) =>
              this.#relayCtx.fdAlarm.hit({ what: "accept", listen: `tcp ${a.addr}:${a.port}`, errno }),
          });
          ep.fd = fd;
          return ep;
        }
      }
      const uv = this.#handles();
      if (uv !== undefined) {
        // The fast path: a bare handle listener, on this worker's own SO_REUSEPORT socket when
        // workers share the VIP (undefined without the addon: then node:cluster's socket below).
        const fd = this.#options.sharedListen ? reusePortFd(a.addr, a.port) : undefined;
        if (!this.#options.sharedListen || fd !== undefined) {
          const ep = { id, svc: undefined, kind: "tcp", arrival } as Endpoint & { kind: "tcp" };
          ep.server = HandleListener.listen(uv, a.addr, a.port, (h) => this.#acceptHandle(ep, h), fd);
          if (fd !== undefined) ep.fd = fd;
          return ep;
        }
      }
      const ep: Endpoint = {
        id,
        svc: undefined,
        kind: "tcp",
        server: net.createServer({ allowHalfOpen: true }),
        arrival,
      };
      const server = ep.server as net.Server;
      server.on("connection", (sock: net.Socket) => this.#accept(ep, sock));
      try {
        await listen(server, a.addr, a.port, this.#options.sharedListen);
      } catch (err) {
        server.close();
        throw err;
      }
      return ep;
    } catch (err) {
      this.#fds.give(1);
      const e = err as NodeJS.ErrnoException;
      throw Object.assign(new Error(e.code ?? e.message), { code: e.code });
    }
  }

  /** A VIP VRRP manages that is not on this host now: the service waits for it instead of failing. */
  #awaitsVrrp(key: ServiceKey, err: NodeJS.ErrnoException): boolean {
    return err.code === "EADDRNOTAVAIL" && key.kind === "vip" && this.#expected.has(key.addr);
  }

  #accept(ep: Endpoint & { kind: "tcp" }, sock: net.Socket): void {
    const svc = ep.svc;
    if (!svc) {
      // Prepared but not live yet, or its service just went: refuse like a closed port.
      sock.on("error", () => {});
      sock.resetAndDestroy();
      return;
    }
    try {
      TcpRelay.accept(this.#relayCtx, svc, ep.arrival, sock);
    } catch (err) {
      // A bug must cost one connection, never the daemon.
      this.#deps.log.error("Connection dropped", { service: svc.id, err });
      sock.on("error", () => {});
      sock.resetAndDestroy();
    }
  }

  /** Which TCP relay runs, and why when it is not the fastest (tvs status). */
  #relayNote(): string {
    const asked = this.#options.relay !== undefined ? ` (--tcp-relay ${this.#options.relay})` : "";
    if (this.#pump() !== undefined) return `TCP relay: the native addon's pump, no JavaScript call per read${asked}`;
    if (this.#handles() !== undefined)
      return `TCP relay: libuv handles, no stream objects per connection${asked || " (the native addon is not built)"}`;
    return `TCP relay: net.Socket streams${asked || " (this Node does not expose its TCP handles)"}`;
  }

  /** The addon's pump when the native relay is in use, else undefined. */
  #pump(): NativeRelayEngine | undefined {
    const r = this.#options.relay;
    const pump = r === undefined || r === "native" ? NativeRelayEngine.get() : undefined;
    if (pump !== undefined) pump.onBug = (err) => this.#deps.log.error("Connection dropped", { err });
    return pump;
  }

  /** The libuv handle API when the handle relay is in use, else undefined (net.Socket relay). */
  #handles(): TcpBinding | undefined {
    return this.#options.relay === "stream" ? undefined : tcpBinding();
  }

  #acceptNative(pump: NativeRelayEngine, ep: Endpoint & { kind: "tcp" }, fd: number, addr: string, port: number): void {
    const svc = ep.svc;
    if (!svc) {
      // Prepared but not live yet, or its service just went: refuse like a closed port.
      pump.addon.relayReset(fd);
      return;
    }
    try {
      NativeRelay.accept(pump, this.#relayCtx, svc, ep.arrival, fd, addr, port);
    } catch (err) {
      // A bug must cost one connection, never the daemon.
      this.#deps.log.error("Connection dropped", { service: svc.id, err });
    }
  }

  #acceptHandle(ep: Endpoint & { kind: "tcp" }, client: TcpHandle): void {
    const svc = ep.svc;
    const uv = this.#handles();
    if (!svc || uv === undefined) {
      // Prepared but not live yet, or its service just went: refuse like a closed port.
      if (typeof client.reset !== "function" || client.reset() !== 0) client.close();
      return;
    }
    try {
      HandleRelay.accept(uv, this.#relayCtx, svc, ep.arrival, client);
    } catch (err) {
      // A bug must cost one connection, never the daemon.
      this.#deps.log.error("Connection dropped", { service: svc.id, err });
    }
  }

  #close(ep: Endpoint): void {
    if (this.#endpoints.get(ep.id) === ep) this.#endpoints.delete(ep.id);
    this.#reserved.delete(ep);
    if (ep.kind === "tcp") {
      if (ep.server.listening) ep.server.close();
      else return;
    } else ep.udp.closeVip();
    this.#fds.give(1);
  }

  /**
   * Bind, before the tables change, every endpoint the services a change adds will need. An
   * endpoint already bound for the same service key (deleted and re-added in one change) is kept
   * for the new service. On failure every endpoint bound here is closed again and a BatchError
   * (EBUSY) is thrown carrying `index`, the position of the first request that could not be served.
   */
  async prepare(planned: readonly PlannedService[]): Promise<PreparedChange> {
    const made: Endpoint[] = [];
    const kept: Endpoint[] = [];
    const jobs: { index: number; key: ServiceKey; a: ListenAddr; job: Promise<Endpoint> }[] = [];
    const seen = new Set<string>();
    for (const p of planned) {
      for (const a of this.#listenAddrs(p.key)) {
        const id = endpointId(a.protocol, a.addr, a.port);
        if (seen.has(id)) continue;
        seen.add(id);
        const live = this.#endpoints.get(id);
        if (live) {
          // Bound already: usable when it serves this same key (or nothing); otherwise the address
          // is taken by another service and the bind below reports it.
          if (live.svc === undefined || serviceText(live.svc.key) === serviceText(p.key)) {
            this.#reserved.add(live);
            kept.push(live);
            continue;
          }
        }
        jobs.push({ index: p.index, key: p.key, a, job: this.#bind(id, a, this.#arrival(p.key, a)) });
      }
    }
    const results = await Promise.allSettled(jobs.map((j) => j.job));
    let failed: { index: number; key: ServiceKey; a: ListenAddr; why: string } | undefined;
    for (const [i, r] of results.entries()) {
      const j = jobs[i] as (typeof jobs)[number];
      if (r.status === "fulfilled") made.push(r.value);
      else if (this.#awaitsVrrp(j.key, r.reason as NodeJS.ErrnoException)) {
        // Not a failure: serviceAdded puts the service in the waiting list.
      } else if (failed === undefined || j.index < failed.index)
        failed = { index: j.index, key: j.key, a: j.a, why: (r.reason as Error).message };
    }
    const releaseAll = () => {
      for (const ep of made) if (ep.svc === undefined) this.#close(ep);
      for (const ep of kept) {
        this.#reserved.delete(ep);
        if (ep.svc === undefined) this.#close(ep);
      }
    };
    if (failed) {
      for (const ep of made) this.#close(ep);
      for (const ep of kept) this.#reserved.delete(ep);
      const where =
        failed.key.kind === "vip"
          ? serviceText(failed.key)
          : `${serviceText(failed.key)} (${failed.a.protocol} ${failed.a.addr}:${failed.a.port})`;
      throw new BatchError(
        { code: "EBUSY", op: "add-service", message: `Cannot listen on ${where}: ${failed.why}` },
        failed.index,
      );
    }
    for (const ep of made) {
      this.#endpoints.set(ep.id, ep);
      this.#reserved.add(ep);
    }
    return { release: releaseAll };
  }

  /** VIPs VRRP manages: a listen on one that is not configured yet waits for setVipOwned. */
  expectVips(addrs: readonly string[]): void {
    this.#expected = new Set(addrs);
    for (const [svc, addr] of [...this.#waiting]) if (!this.#expected.has(addr)) this.#waiting.delete(svc);
  }

  /** The VIP is on the interface now (owned) or gone (released: bound listeners simply idle). */
  async setVipOwned(addr: string, owned: boolean): Promise<void> {
    if (!owned) return;
    const due = [...this.#waiting].filter(([, a]) => a === addr).map(([svc]) => svc);
    for (const svc of due) {
      this.#waiting.delete(svc);
      try {
        await this.serviceAdded(svc);
      } catch (err) {
        this.#deps.log.error("Cannot listen on a VIP that just arrived", { service: svc.id, err });
      }
    }
  }

  async serviceAdded(svc: VirtualService): Promise<void> {
    if (this.#stopping) return;
    const mine: Endpoint[] = [];
    const made: Endpoint[] = [];
    try {
      for (const a of this.#listenAddrs(svc.key)) {
        const id = endpointId(a.protocol, a.addr, a.port);
        let ep = this.#endpoints.get(id);
        if (ep && ep.svc !== undefined && ep.svc !== svc) ep = undefined; // taken: the bind below says so
        if (!ep) {
          ep = await this.#bind(id, a, this.#arrival(svc, a));
          made.push(ep);
        }
        mine.push(ep);
      }
    } catch (err) {
      for (const ep of made) this.#close(ep);
      const e = err as NodeJS.ErrnoException;
      if (this.#awaitsVrrp(svc.key, e)) {
        // VRRP holds this VIP on another director for now: listen when it arrives here.
        this.#waiting.set(svc, (svc.key as { addr: string }).addr);
        this.#deps.log.info("Waiting for VRRP to bring the VIP before listening", { service: svc.id });
        return;
      }
      throw new CoreError("EBUSY", "add-service", `Cannot listen on ${serviceText(svc.key)}: ${e.message}`);
    }
    for (const ep of mine) {
      ep.svc = svc;
      this.#endpoints.set(ep.id, ep);
      this.#reserved.delete(ep);
      if (ep.kind === "udp") ep.udp.svc = svc;
    }
    this.#byService.set(svc, mine);
    this.#steer(svc);
    this.#deps.log.info("Listening", { service: svc.id });
  }

  serviceChanged(svc: VirtualService): void {
    // Options and destinations are read from the service at each new connection; only the
    // workers' steering follows persistence here.
    this.#steer(svc);
    this.#pruneMapped();
  }

  /**
   * With several workers, a persistent service's sockets are steered by client network (its
   * persistence netmask), so each client network meets one worker and its templates
   * (worker-steering.ts); others keep the flow hash. A changed netmask re-steers.
   */
  #steer(svc: VirtualService): void {
    const workers = this.#options.workers ?? 1;
    if (workers < 2) return;
    const on = svc.options.persistent;
    const want = on ? `${svc.family}/${svc.options.netmask}` : "";
    for (const ep of this.#byService.get(svc) ?? []) {
      if (ep.fd === undefined || (ep.steered ?? "") === want) continue;
      try {
        if (steerBySource(ep.fd, workers, on, svc.family, svc.options.netmask)) ep.steered = want;
      } catch (err) {
        this.#deps.log.warn("Cannot steer a VIP's workers by client address", { service: svc.id, err });
      }
    }
  }

  serviceRemoved(svc: VirtualService): void {
    this.#waiting.delete(svc);
    const eps = this.#byService.get(svc);
    this.#pruneMapped();
    if (!eps) return;
    this.#byService.delete(svc);
    for (const ep of eps) {
      if (ep.svc !== svc) continue;
      ep.svc = undefined;
      if (ep.kind === "udp") ep.udp.svc = undefined;
      // A prepared change hands this endpoint to the service's successor: keep it open.
      if (!this.#reserved.has(ep)) this.#close(ep);
    }
    this.#deps.log.info("Stopped listening", { service: svc.id });
  }

  /** Forget -g mappings whose service or destination is gone, so the notes list only live ones. */
  #pruneMapped(): void {
    for (const [id, m] of this.#mapped) {
      const svc = this.#deps.services.get(m.key);
      if (!svc?.findDest(m.addr, m.port)) this.#mapped.delete(id);
    }
  }

  pressure(): PlanePressure {
    const u = this.#relayCtx.udpFlows;
    return {
      fdLimit: this.#fds.limit,
      fdUsed: this.#fds.used,
      fdReserve: this.#fds.reserve,
      fdRefused: this.#fds.refused,
      udpFlows: u.size,
      udpFlowLimit: u.limit,
      udpSockets: u.sockets,
      udpEvicted: u.evicted,
    };
  }

  openFlows(): number {
    return this.#relayCtx.open.size;
  }

  notes(): string[] {
    const out = [
      "Socket data plane: masq and fullnat are relayed through sockets; -g is carried as masq; -i needs --dataplane packet",
      "Packets and bytes count socket reads and payload bytes (no TCP handshakes or headers)",
      this.#relayNote(),
    ];
    if (this.#options.sharedListen)
      out.push(
        reusePortAvailable()
          ? `Workers: each listens on its own SO_REUSEPORT socket (the kernel spreads new connections by hash; persistent services by client address${this.#options.udp ? "; every worker serves UDP" : ""})`
          : "Workers: one listening socket shared through node:cluster (the native addon is missing, so no SO_REUSEPORT)",
      );
    this.#pruneMapped();
    for (const m of this.#mapped.keys()) out.push(`Direct routing carried as masq: ${m}`);
    for (const [svc, vip] of this.#waiting) out.push(`Waiting for VRRP to bring ${vip} before listening: ${svc.id}`);
    const p = this.pressure();
    const fdLimit = Number.isFinite(p.fdLimit) ? String(p.fdLimit) : "unbounded";
    out.push(
      `File descriptors on the data plane: ${p.fdUsed} of ${fdLimit} (reserve ${p.fdReserve} for control; refused ${p.fdRefused})`,
      `UDP flows: ${p.udpFlows} of ${p.udpFlowLimit} on ${p.udpSockets} socket(s) (evicted ${p.udpEvicted})`,
    );
    return out;
  }

  async stop(drainMs: number): Promise<void> {
    this.#stopping = true;
    const closing: Promise<void>[] = [];
    for (const ep of this.#endpoints.values()) {
      if (ep.kind === "tcp") closing.push(new Promise((r) => ep.server.close(() => r())));
      else ep.udp.closeVip();
    }
    const open = this.#relayCtx.open;
    const deadline = Date.now() + drainMs;
    while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    if (open.size > 0) {
      this.#deps.log.warn("Drain time is up; resetting open connections", { open: open.size });
      for (const relay of [...open]) {
        this.#deps.log.debug("Reset at drain", relay.describe());
        relay.abort();
      }
    }
    for (const ep of this.#endpoints.values()) if (ep.kind === "udp") ep.udp.closeAll();
    this.#relayCtx.udpFlows.closeAll();
    this.#endpoints.clear();
    this.#byService.clear();
    this.#reserved.clear();
    await Promise.all(closing);
  }
}

/**
 * Listen on a VIP. A worker (shared) takes its own SO_REUSEPORT socket when the native addon is
 * there (reuse-port.ts), else node:cluster's socket shared by all workers; one process listens
 * exclusively.
 */
async function listen(server: net.Server, addr: string, port: number, shared: boolean): Promise<void> {
  if (shared && (await listenReusePort(server, addr, port))) return;
  return listenNode(server, addr, port, !shared);
}

function listenNode(server: net.Server, addr: string, port: number, exclusive: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ host: addr, port, exclusive }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}
