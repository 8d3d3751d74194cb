// The socket data plane (tvsd's embedded default; no privilege needed). For every virtual service
// it listens on the VIP and port (TCP: a net.Server, UDP: a datagram socket); fwmark services listen
// on the addresses configured for their mark, since sockets cannot see marks. New connections are
// scheduled through core's connection table and relayed by tcp-relay.ts / udp-relay.ts.
//
// Forwarding methods: a socket relay is a full proxy, so masq (-m) and fullnat both work and behave
// alike (the real server sees the director's address; PROXY protocol can tell it the client's).
// Direct routing and tunnelling need raw frames: -i is refused with EOPNOTSUPP naming the packet
// data plane. -g is ipvsadm's default forwarding method, so tvsadm sends it whenever no method was
// given; this plane therefore accepts -g and carries it as masq, logging a warning and listing the
// mapping in tvs status (the listing shows "Masq", which is what really happens). Services on port 0
// (all ports) and SCTP services are refused: a socket cannot listen on every port, and Node has no SCTP.

import net from "node:net";
import { canonicalIp, formatEndpoint } from "../../core/addr.ts";
import type { Clock } from "../../core/clock.ts";
import { type SyncedConn, syncedConnOf } from "../../core/conn/conn-sync.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import { SyncPolicy, type SyncSettings } from "../../core/conn/sync-policy.ts";
import type { DestSpec } from "../../core/dest.ts";
import { CoreError } from "../../core/errors.ts";
import type { Logger } from "../../core/log.ts";
import type { ServiceKey, ServiceOptions, VirtualService } from "../../core/service.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import { defaultProxyOptions, type ListenAddr, type ProxyPlaneOptions } from "./options.ts";
import { type Arrival, type PlaneSlot, TcpRelay, type TcpRelayContext } from "./tcp-relay.ts";
import { UdpListener } from "./udp-relay.ts";

export interface ProxyPlaneDeps {
  services: ServiceTable;
  conns: ConnTable;
  clock: Clock;
  log: Logger;
}

type Listener = { kind: "tcp"; server: net.Server; arrival: Arrival } | { kind: "udp"; udp: UdpListener };

function serviceText(key: ServiceKey): string {
  if (key.kind === "fwmark") return `fwmark ${key.fwmark}`;
  return `${key.protocol} ${formatEndpoint(key.addr, key.port)}`;
}

export class ProxyPlane {
  readonly name = "proxy";
  readonly #deps: ProxyPlaneDeps;
  readonly #options: ProxyPlaneOptions;
  readonly #relayCtx: TcpRelayContext;
  /** Listeners by service object (a re-added service with the same key is a new object). */
  readonly #listeners = new Map<VirtualService, Listener[]>();
  /** VIPs VRRP manages, and the services waiting for theirs to arrive. */
  #expected = new Set<string>();
  readonly #waiting = new Map<VirtualService, string>();
  readonly #mapped = new Set<string>();
  #stopping = false;

  constructor(deps: ProxyPlaneDeps, options: Partial<ProxyPlaneOptions> = {}) {
    this.#deps = deps;
    this.#options = { ...defaultProxyOptions(), ...options };
    this.#relayCtx = {
      conns: deps.conns,
      clock: deps.clock,
      log: deps.log,
      options: this.#options,
      open: new Set(),
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

  admitService(key: ServiceKey, _options: ServiceOptions, op: "add-service" | "edit-service"): void {
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
    if (key.kind === "vip" && spec.port === key.port && canonicalIp(spec.addr) === key.addr)
      throw new CoreError(
        "EINVAL",
        op,
        `Destination "${spec.addr}:${spec.port}" is the virtual service itself; the socket data plane would forward to itself${spec.fwd === "droute" ? " (-g keeps the service port: give -m and the real server's port)" : ""}`,
      );
    if (spec.fwd === "droute") {
      const id = `${serviceText(key)} -> ${formatEndpoint(spec.addr, spec.port)}`;
      if (!this.#mapped.has(id)) {
        this.#mapped.add(id);
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
    this.#stopping = false;
  }

  #arrivals(svc: VirtualService): ListenAddr[] {
    const k = svc.key;
    if (k.kind === "vip") return [{ protocol: k.protocol, addr: k.addr, port: k.port }];
    return this.#options.fwmarkAddrs.get(k.fwmark) ?? [];
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
    const made: Listener[] = [];
    try {
      for (const a of this.#arrivals(svc)) {
        const arrival: Arrival = {
          vaddr: a.addr,
          vport: a.port,
          fwmark: svc.key.kind === "fwmark" ? svc.key.fwmark : 0,
        };
        if (a.protocol === "udp" && !this.#options.udp) continue;
        if (a.protocol === "udp") {
          const udp = new UdpListener(this.#relayCtx, svc, arrival);
          made.push({ kind: "udp", udp });
          await udp.bind();
        } else {
          const server = net.createServer({ allowHalfOpen: true }, (sock) => {
            try {
              TcpRelay.accept(this.#relayCtx, svc, arrival, sock);
            } catch (err) {
              // A bug or a refused table operation must cost one connection, never the daemon.
              this.#deps.log.error("Connection dropped", { service: svc.id, err });
              sock.on("error", () => {});
              sock.resetAndDestroy();
            }
          });
          made.push({ kind: "tcp", server, arrival });
          await listen(server, a.addr, a.port, !this.#options.sharedListen);
        }
      }
    } catch (err) {
      for (const l of made) closeListener(l);
      const e = err as NodeJS.ErrnoException;
      const vip = svc.key.kind === "vip" ? svc.key.addr : undefined;
      if (e.code === "EADDRNOTAVAIL" && vip !== undefined && this.#expected.has(vip)) {
        // VRRP holds this VIP on another director for now: listen when it arrives here.
        this.#waiting.set(svc, vip);
        this.#deps.log.info("Waiting for VRRP to bring the VIP before listening", { service: svc.id });
        return;
      }
      throw new CoreError("EBUSY", "add-service", `Cannot listen on ${serviceText(svc.key)}: ${e.code ?? e.message}`);
    }
    this.#listeners.set(svc, made);
    this.#deps.log.info("Listening", { service: svc.id });
  }

  serviceChanged(_svc: VirtualService): void {
    // Options and destinations are read from the service at each new connection.
  }

  serviceRemoved(svc: VirtualService): void {
    this.#waiting.delete(svc);
    const ls = this.#listeners.get(svc);
    if (!ls) return;
    this.#listeners.delete(svc);
    for (const l of ls) closeListener(l);
    this.#deps.log.info("Stopped listening", { service: svc.id });
  }

  openFlows(): number {
    return this.#relayCtx.open.size;
  }

  notes(): string[] {
    const out = [
      "Socket data plane: masq and fullnat are relayed through sockets; -g is carried as masq; -i needs --dataplane packet",
      "Packets and bytes count socket reads and payload bytes (no TCP handshakes or headers)",
    ];
    for (const m of this.#mapped) out.push(`Direct routing carried as masq: ${m}`);
    for (const [svc, vip] of this.#waiting) out.push(`Waiting for VRRP to bring ${vip} before listening: ${svc.id}`);
    return out;
  }

  async stop(drainMs: number): Promise<void> {
    this.#stopping = true;
    const closing: Promise<void>[] = [];
    for (const [, ls] of this.#listeners) {
      for (const l of ls) {
        if (l.kind === "tcp") closing.push(new Promise((r) => l.server.close(() => r())));
        else l.udp.closeVip();
      }
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
    for (const [, ls] of this.#listeners) for (const l of ls) if (l.kind === "udp") l.udp.closeAll();
    this.#listeners.clear();
    await Promise.all(closing);
  }
}

function listen(server: net.Server, addr: string, port: number, exclusive: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once("error", onError);
    server.listen({ host: addr, port, exclusive }, () => {
      server.off("error", onError);
      resolve();
    });
  });
}

function closeListener(l: Listener): void {
  if (l.kind === "tcp") {
    if (l.server.listening) l.server.close();
  } else l.udp.closeAll();
}
