// One client connection carried by the socket data plane: the client's socket (accepted on the VIP)
// and the socket to the chosen real server, piped both ways with backpressure and half-close, with
// the connection-table entry driven the way the kernel's TCP state table would move it:
//
//   accept                       → SYN_RECV   (inactive: the kernel has seen the SYN only)
//   the real server accepts      → ESTABLISHED (active)
//   client sends FIN first       → CLOSE_WAIT  (the kernel's INPUT fin in ES)
//   real server sends FIN first  → FIN_WAIT    (OUTPUT fin in ES)
//   both FINs seen               → TIME_WAIT   (the entry lingers and expires, counted inactive)
//   a reset either way, or the real server refuses / times out → CLOSE (the client gets a RST)
//
// Every read is counted as one packet with its payload bytes ("in" = client → server, "out" =
// server → client): a socket cannot see segments, so packets here are reads, and bytes are payload
// bytes without IP/TCP headers. Each read also refreshes the entry's timeout, as each packet does in
// the kernel. When the table removes the entry while the sockets are open (idle timeout, or
// expire_nodest_conn after the destination was deleted) both sockets are reset.

import net from "node:net";
import { formatEndpoint } from "../../core/addr.ts";
import type { Clock } from "../../core/clock.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import {
  TCP_S_CLOSE,
  TCP_S_CLOSE_WAIT,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_SYN_RECV,
  TCP_S_TIME_WAIT,
} from "../../core/conn/tcp-states.ts";
import type { Logger } from "../../core/log.ts";
import type { Flow } from "../../core/sched/types.ts";
import type { VirtualService } from "../../core/service.ts";
import type { FdBudget } from "./fd-budget.ts";
import type { LimitAlarm } from "./limit-alarm.ts";
import { type ProxyPlaneOptions, proxyProtocolFor } from "./options.ts";
import { proxyHeader } from "./proxy-protocol.ts";

export interface TcpRelayContext {
  conns: ConnTable;
  clock: Clock;
  log: Logger;
  options: ProxyPlaneOptions;
  /** Relays still carrying bytes; the plane drains these on stop. */
  open: Set<OpenRelay>;
  /**
   * Set while a sync master runs: called after each chunk a client sent (the socket plane's
   * incoming packet) and the client's handshake completion and FIN.
   */
  syncIn?: ((conn: BoundConn, now: number) => void) | undefined;
  /** The plane's descriptor budget: a relay holds two (client and real server). */
  fds: FdBudget;
  /** Logged (rate-limited, error level) when a client is refused for lack of descriptors. */
  fdAlarm: LimitAlarm;
}

/** Where a client connected: the VIP socket's address (for fwmark services, one of the listed addresses). */
export interface Arrival {
  vaddr: string;
  vport: number;
  fwmark: number;
}

/** "::ffff:1.2.3.4" → "1.2.3.4" (a dual-stack listener reports IPv4 peers mapped). */
export function plainAddr(a: string | undefined): string | undefined {
  if (a === undefined) return undefined;
  return a.startsWith("::ffff:") && a.includes(".") ? a.slice(7) : a;
}

/** A TCP relay of either kind, as the plane's drain sees it. */
export interface OpenRelay {
  describe(): Record<string, unknown>;
  abort(): void;
}

/** Something the conn table's onRemove can close (TCP relays and UDP flows). */
export interface PlaneSlot {
  closeFromTable(): void;
}

/**
 * Admission of a new client connection, shared by both relays (this one and handle-relay.ts):
 * two descriptors from the budget (the client's, already accepted, and the real server's), a
 * lingering entry of the same client port replaced, and the service's scheduler asked. Returns
 * the new entry holding both descriptors, or why the client must be reset (nothing held then).
 */
export function admitTcpClient(
  ctx: TcpRelayContext,
  svc: VirtualService,
  arrival: Arrival,
  caddr: string,
  cport: number,
): BoundConn | "no-descriptor" | "no-destination" {
  if (!ctx.fds.take(2)) {
    ctx.fdAlarm.hit({ service: svc.id, fdLimit: ctx.fds.limit, fdUsed: ctx.fds.used });
    return "no-descriptor";
  }
  const flow: Flow = {
    family: svc.family,
    protocol: "tcp",
    saddr: caddr,
    sport: cport,
    daddr: arrival.vaddr,
    dport: arrival.vport,
  };
  const now = ctx.clock.now();
  // A new connection from a client port whose previous entry still lingers (TIME_WAIT, CLOSE):
  // as the kernel does for a SYN with conn_reuse_mode, the old entry goes and the flow is
  // scheduled anew. The socket layer guarantees the old connection is over (same 4-tuple).
  const old = ctx.conns.lookupIn("tcp", caddr, cport, arrival.vaddr, arrival.vport);
  if (old !== undefined) {
    (old.plane as PlaneSlot | undefined)?.closeFromTable();
    old.plane = undefined;
    ctx.conns.remove(old, now);
  }
  const r = ctx.conns.schedule(svc, flow, now, arrival.fwmark ? { fwmark: arrival.fwmark } : undefined);
  if ("error" in r) {
    ctx.log.debug("Connection refused: no destination", {
      service: svc.id,
      client: formatEndpoint(caddr, cport),
      why: r.error,
    });
    ctx.fds.give(2);
    return "no-destination";
  }
  return r;
}

/**
 * --retry-connect (an extension), shared by both relays: after `failed` did not accept, give the
 * connection to another destination. The failed entry goes first so it no longer counts against
 * its destination, then the flow is scheduled again. Returns the new entry, bound to `slot`, with
 * `retry` true when its destination was not tried yet (connect to it, in SYN_RECV) and false when
 * the scheduler chose a tried one again (finish it with the client); undefined when retrying is
 * off, exhausted, the client is gone, or nothing could be scheduled.
 */
export function rescheduleFailed(
  ctx: TcpRelayContext,
  svc: VirtualService,
  arrival: Arrival,
  client: { addr: string; port: number; open: boolean },
  failed: BoundConn,
  attempts: number,
  tried: ReadonlySet<string>,
  slot: PlaneSlot,
): { conn: BoundConn; retry: boolean } | undefined {
  if (!ctx.options.retryConnect || attempts >= svc.dests.length || !client.open) return undefined;
  const now = ctx.clock.now();
  failed.plane = undefined;
  ctx.conns.remove(failed, now);
  const flow: Flow = {
    family: svc.family,
    protocol: "tcp",
    saddr: client.addr,
    sport: client.port,
    daddr: arrival.vaddr,
    dport: arrival.vport,
  };
  const r = ctx.conns.schedule(svc, flow, now, arrival.fwmark ? { fwmark: arrival.fwmark } : undefined);
  if ("error" in r) return undefined;
  r.plane = slot;
  const retry = !tried.has(`${r.daddr}|${r.dport}`);
  if (retry) ctx.conns.setState(r, TCP_S_SYN_RECV, now);
  return { conn: r, retry };
}

export class TcpRelay implements PlaneSlot {
  readonly #ctx: TcpRelayContext;
  readonly #svc: VirtualService;
  readonly #arrival: Arrival;
  readonly #client: net.Socket;
  readonly #caddr: string;
  readonly #cport: number;
  #conn: BoundConn;
  #backend: net.Socket | undefined;
  #clientEnded = false;
  #backendEnded = false;
  #done = false;
  /** Both directions are wired (the real server accepted). */
  #piped = false;
  #attempts = 1;
  #tried = new Set<string>();
  /** The descriptor taken at accept for the first real-server socket is still unused. */
  #backendFdTaken = true;

  constructor(
    ctx: TcpRelayContext,
    svc: VirtualService,
    arrival: Arrival,
    client: net.Socket,
    caddr: string,
    cport: number,
    conn: BoundConn,
  ) {
    this.#ctx = ctx;
    this.#svc = svc;
    this.#arrival = arrival;
    this.#client = client;
    this.#caddr = caddr;
    this.#cport = cport;
    this.#conn = conn;
    conn.plane = this;
    ctx.open.add(this);
    client.setNoDelay(true);
    client.on("error", (err) => this.#onClientError(err));
    client.on("close", () => this.#onSocketClose());
    client.on("end", () => this.#onEnd("in"));
    ctx.conns.setState(conn, TCP_S_SYN_RECV, ctx.clock.now());
    this.#connect();
  }

  get conn(): BoundConn {
    return this.#conn;
  }

  /** Schedule a new client connection on a service and start relaying it (or reset the client). */
  static accept(ctx: TcpRelayContext, svc: VirtualService, arrival: Arrival, client: net.Socket): void {
    const caddr = plainAddr(client.remoteAddress);
    const cport = client.remotePort;
    if (caddr === undefined || cport === undefined) {
      client.destroy();
      return;
    }
    const r = admitTcpClient(ctx, svc, arrival, caddr, cport);
    if (typeof r === "string") {
      client.on("error", () => {});
      client.resetAndDestroy();
      return;
    }
    client.once("close", () => ctx.fds.give(1));
    new TcpRelay(ctx, svc, arrival, client, caddr, cport, r);
  }

  #connect(): void {
    const conn = this.#conn;
    this.#tried.add(`${conn.daddr}|${conn.dport}`);
    // The first connect uses the descriptor taken at accept; a retry takes one of its own.
    if (this.#backendFdTaken) this.#backendFdTaken = false;
    else if (!this.#ctx.fds.take(1)) {
      this.#ctx.fdAlarm.hit({ service: this.#svc.id, fdLimit: this.#ctx.fds.limit, fdUsed: this.#ctx.fds.used });
      this.#finish(TCP_S_CLOSE);
      this.#client.resetAndDestroy();
      return;
    }
    const backend = net.connect({ host: conn.daddr, port: conn.dport, allowHalfOpen: true });
    backend.once("close", () => this.#ctx.fds.give(1));
    this.#backend = backend;
    backend.setNoDelay(true);
    const timer = setTimeout(() => {
      backend.destroy();
      this.#connectFailed(new Error(`Connect to ${conn.daddr}:${conn.dport} timed out`));
    }, this.#ctx.options.connectTimeoutMs);
    backend.once("connect", () => {
      clearTimeout(timer);
      this.#connected(backend);
    });
    backend.once("error", (err) => {
      clearTimeout(timer);
      if (backend.connecting || this.#backendPending(backend)) this.#connectFailed(err);
    });
    backend.once("close", () => {
      clearTimeout(timer);
      this.#onSocketClose();
    });
  }

  /** True while this backend never reached 'connect' (its errors are connect failures). */
  #backendPending(backend: net.Socket): boolean {
    return this.#backend === backend && this.#conn.state === TCP_S_SYN_RECV;
  }

  #connectFailed(err: Error): void {
    if (this.#done) return;
    const ctx = this.#ctx;
    const failed = this.#conn;
    ctx.log.debug("Destination did not accept", {
      service: this.#svc.id,
      dest: formatEndpoint(failed.daddr, failed.dport),
      err,
    });
    const again = rescheduleFailed(
      ctx,
      this.#svc,
      this.#arrival,
      { addr: this.#caddr, port: this.#cport, open: !this.#client.destroyed },
      failed,
      this.#attempts,
      this.#tried,
      this,
    );
    if (again !== undefined) {
      this.#attempts++;
      this.#conn = again.conn;
      if (again.retry) {
        this.#connect();
        return;
      }
    }
    this.#finish(TCP_S_CLOSE);
    this.#client.resetAndDestroy();
  }

  #connected(backend: net.Socket): void {
    const ctx = this.#ctx;
    const conn = this.#conn;
    if (this.#done || this.#client.destroyed) {
      backend.resetAndDestroy();
      return;
    }
    ctx.conns.setState(conn, TCP_S_ESTABLISHED, ctx.clock.now());
    ctx.syncIn?.(conn, ctx.clock.now());
    if (conn.fwd === "fullnat") {
      // The director's side of the server connection is FULLNAT's local endpoint (-c shows it).
      const laddr = plainAddr(backend.localAddress);
      const lport = backend.localPort;
      if (laddr !== undefined && lport !== undefined) {
        try {
          ctx.conns.setLocal(conn, laddr, lport);
        } catch (err) {
          ctx.log.debug("FULLNAT local endpoint not recorded", { err });
        }
      }
    }
    backend.on("error", (err) => this.#onBackendError(err));
    const pp = proxyProtocolFor(ctx.options.proxyProtocol, this.#svc.id, conn.dest.endpoint);
    if (pp !== 0) {
      backend.write(
        proxyHeader(pp, {
          caddr: this.#caddr,
          cport: this.#cport,
          vaddr: this.#arrival.vaddr,
          vport: this.#arrival.vport,
        }),
      );
    }
    this.#pipe(this.#client, backend, "in");
    this.#pipe(backend, this.#client, "out");
    this.#piped = true;
    if (this.#clientEnded) {
      this.#halfClosed("in");
      backend.end();
    }
  }

  #pipe(src: net.Socket, dst: net.Socket, dir: "in" | "out"): void {
    const ctx = this.#ctx;
    src.on("data", (chunk: Buffer) => {
      const conn = this.#conn;
      if (!conn.dest.available && ctx.conns.options.expireNodestConn) {
        // expire_nodest_conn: the destination is gone, so the kernel drops the entry on its next packet.
        this.#reset();
        ctx.conns.remove(conn, ctx.clock.now());
        return;
      }
      ctx.conns.account(conn, dir, 1, chunk.length);
      const now = ctx.clock.now();
      ctx.conns.touch(conn, now);
      if (dir === "in") ctx.syncIn?.(conn, now);
      if (!dst.write(chunk)) src.pause();
    });
    dst.on("drain", () => src.resume());
    if (dir === "out") src.on("end", () => this.#onEnd("out"));
  }

  /**
   * A FIN arrived on one side. Node may emit a client's 'end' before the real server is reached
   * (a FIN with no data is read eagerly), so the client's listener is attached at accept and the
   * FIN is passed on once the server connection exists.
   */
  #onEnd(dir: "in" | "out"): void {
    if (dir === "in") this.#clientEnded = true;
    else this.#backendEnded = true;
    if (this.#piped) {
      this.#halfClosed(dir);
      (dir === "in" ? this.#backend : this.#client)?.end();
    }
  }

  #halfClosed(dir: "in" | "out"): void {
    if (this.#done) return;
    const ctx = this.#ctx;
    const now = ctx.clock.now();
    if (this.#clientEnded && this.#backendEnded) {
      this.#finish(TCP_S_TIME_WAIT);
      return;
    }
    ctx.conns.setState(this.#conn, dir === "in" ? TCP_S_CLOSE_WAIT : TCP_S_FIN_WAIT, now);
    if (dir === "in") ctx.syncIn?.(this.#conn, now);
  }

  #onClientError(err: Error): void {
    this.#ctx.log.debug("Client connection error", { service: this.#svc.id, err });
    this.#backend?.resetAndDestroy();
    this.#finish(TCP_S_CLOSE);
  }

  #onBackendError(err: Error): void {
    this.#ctx.log.debug("Real server connection error", { service: this.#svc.id, err });
    if (!this.#client.destroyed) this.#client.resetAndDestroy();
    this.#finish(TCP_S_CLOSE);
  }

  #onSocketClose(): void {
    const b = this.#backend;
    const bothClosed = this.#client.destroyed && (b === undefined || b.destroyed);
    if (this.#client.destroyed && b && !b.destroyed && this.#conn.state === TCP_S_SYN_RECV) {
      // The client left while the real server was still being reached: give up on it.
      b.destroy();
      this.#finish(TCP_S_CLOSE);
      return;
    }
    if (!bothClosed) {
      // One side went away without a FIN we saw (destroyed or reset): take the other down too.
      if (this.#client.destroyed && b && !b.destroyed && !this.#clientEnded) b.resetAndDestroy();
      else if (b?.destroyed && !this.#client.destroyed && !this.#backendEnded && this.#conn.state !== TCP_S_SYN_RECV)
        this.#client.resetAndDestroy();
      return;
    }
    this.#finish(this.#clientEnded && this.#backendEnded ? TCP_S_TIME_WAIT : TCP_S_CLOSE);
  }

  /** Both sockets are done (or going): leave the entry in its final state to linger and expire. */
  #finish(state: number): void {
    const ctx = this.#ctx;
    if (!this.#done) {
      this.#done = true;
      ctx.conns.setState(this.#conn, state, ctx.clock.now());
    }
    if (this.#client.destroyed && (this.#backend === undefined || this.#backend.destroyed)) {
      ctx.open.delete(this);
      this.#conn.plane = undefined;
    }
  }

  #reset(): void {
    this.#done = true;
    this.#client.resetAndDestroy();
    this.#backend?.resetAndDestroy();
    this.#ctx.open.delete(this);
  }

  /** The table dropped the entry while sockets were open: reset both, as later packets would be dropped. */
  closeFromTable(): void {
    if (this.#client.destroyed && (this.#backend === undefined || this.#backend.destroyed)) return;
    this.#reset();
  }

  /** Drain bound reached: reset what is left. */
  /** What the relay is waiting for (logged when a drain gives up on it). */
  describe(): Record<string, unknown> {
    const c = this.#client;
    const b = this.#backend;
    return {
      client: `${this.#caddr}:${this.#cport}`,
      state: this.#conn.stateName,
      clientEnded: this.#clientEnded,
      backendEnded: this.#backendEnded,
      clientDestroyed: c.destroyed,
      clientPaused: c.isPaused(),
      clientWritable: c.writableLength,
      backendDestroyed: b?.destroyed,
      backendPaused: b?.isPaused(),
      backendWritable: b?.writableLength,
      backendConnecting: b?.connecting,
    };
  }

  abort(): void {
    this.#reset();
    const ctx = this.#ctx;
    ctx.conns.setState(this.#conn, TCP_S_CLOSE, ctx.clock.now());
  }
}
