// One client connection carried by the socket data plane on net.Socket streams: the last
// fallback, where Node exposes neither the native addon's pump nor its TCP handles (and a
// reference for the other two). The client's socket (accepted on the VIP) and the socket to the
// chosen real server are piped both ways with backpressure and half-close; the connection-table
// side (states, counters, retries) is relay-entry.ts, shared by the three relays. When the table
// removes the entry while the sockets are open (idle timeout, or expire_nodest_conn after the
// destination was deleted) both sockets are reset. A reset on a socket Node is not reading (the
// client during the connect, a side after its end of stream, a source paused behind a stalled
// peer) is found by getpeername on its handle (unread-probe.ts).
//
// This file also holds what the plane and the three relays share: the relay context, the
// arrival of a connection, and the slot the connection table closes.

import net from "node:net";
import type { Clock } from "../../core/clock.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import { TCP_S_CLOSE, TCP_S_SYN_RECV, TCP_S_TIME_WAIT } from "../../core/conn/tcp-states.ts";
import type { Logger } from "../../core/log.ts";
import type { VirtualService } from "../../core/service.ts";
import type { FdBudget } from "./fd-budget.ts";
import { uvError } from "./libuv-tcp.ts";
import type { LimitAlarm } from "./limit-alarm.ts";
import type { ProxyPlaneOptions } from "./options.ts";
import { admitTcpClient, type Direction, RelayEntry } from "./relay-entry.ts";
import { peerProbe, type UnreadProbed, watchUnread } from "./unread-probe.ts";

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

/** The libuv handle under a net.Socket (Node's own field; null once closed). */
function handleOf(s: net.Socket): { getpeername(out: object): number } | undefined {
  return (s as unknown as { _handle?: { getpeername(out: object): number } | null })._handle ?? undefined;
}

export class TcpRelay implements PlaneSlot, UnreadProbed {
  readonly #e: RelayEntry;
  readonly #client: net.Socket;
  #backend: net.Socket | undefined;
  /** Both directions are wired (the real server accepted). */
  #piped = false;
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
    this.#client = client;
    this.#e = new RelayEntry(ctx, svc, arrival, caddr, cport, conn, this);
    client.setNoDelay(true);
    client.on("error", (err) => this.#onClientError(err));
    client.on("close", () => this.#onSocketClose());
    client.on("end", () => this.#onEnd("in"));
    this.#connect();
  }

  get conn(): BoundConn {
    return this.#e.conn;
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
    watchUnread(this);
    const e = this.#e;
    const ctx = e.ctx;
    const conn = e.conn;
    // The first connect uses the descriptor taken at accept; a retry takes one of its own.
    if (this.#backendFdTaken) this.#backendFdTaken = false;
    else if (!ctx.fds.take(1)) {
      ctx.fdAlarm.hit({ service: e.svc.id, fdLimit: ctx.fds.limit, fdUsed: ctx.fds.used });
      this.#finish(TCP_S_CLOSE);
      this.#client.resetAndDestroy();
      return;
    }
    const backend = net.connect({ host: conn.daddr, port: conn.dport, allowHalfOpen: true });
    backend.once("close", () => ctx.fds.give(1));
    this.#backend = backend;
    backend.setNoDelay(true);
    const timer = setTimeout(() => {
      backend.destroy();
      this.#connectFailed(new Error(`Connect to ${conn.daddr}:${conn.dport} timed out`));
    }, ctx.options.connectTimeoutMs);
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
    return this.#backend === backend && this.#e.conn.state === TCP_S_SYN_RECV;
  }

  #connectFailed(err: Error): void {
    if (this.#e.connectFailed(err, !this.#client.destroyed)) this.#connect();
    else {
      this.#finish(TCP_S_CLOSE);
      this.#client.resetAndDestroy();
    }
  }

  #connected(backend: net.Socket): void {
    const e = this.#e;
    if (e.done || this.#client.destroyed) {
      backend.resetAndDestroy();
      return;
    }
    e.established({ addr: plainAddr(backend.localAddress), port: backend.localPort });
    backend.on("error", (err) => this.#onBackendError(err));
    const header = e.proxyHeader();
    if (header !== undefined) backend.write(header);
    this.#pipe(this.#client, backend, "in");
    this.#pipe(backend, this.#client, "out");
    this.#piped = true;
    if (e.clientEnded) {
      e.halfClosed("in");
      backend.end();
    }
  }

  #pipe(src: net.Socket, dst: net.Socket, dir: Direction): void {
    src.on("data", (chunk: Buffer) => {
      if (!this.#e.passed(dir, 1, chunk.length)) {
        this.#reset();
        return;
      }
      if (!dst.write(chunk)) {
        src.pause();
        watchUnread(this);
      }
    });
    dst.on("drain", () => src.resume());
    if (dir === "out") src.on("end", () => this.#onEnd("out"));
  }

  /**
   * A FIN arrived on one side. Node may emit a client's 'end' before the real server is reached
   * (a FIN with no data is read eagerly), so the client's listener is attached at accept and the
   * FIN is passed on once the server connection exists.
   */
  #onEnd(dir: Direction): void {
    watchUnread(this);
    const e = this.#e;
    if (!this.#piped) {
      if (dir === "in") e.clientEnded = true;
      else e.backendEnded = true;
      return;
    }
    e.ended(dir);
    (dir === "in" ? this.#backend : this.#client)?.end();
  }

  #onClientError(err: Error): void {
    // (Node resets a connecting socket only once it connects: one still connecting is just closed.)
    if (this.#backend?.connecting) this.#backend.destroy();
    else this.#backend?.resetAndDestroy();
    this.#e.failed("client", err);
    this.#finish(TCP_S_CLOSE);
  }

  #onBackendError(err: Error): void {
    if (!this.#client.destroyed) this.#client.resetAndDestroy();
    this.#e.failed("backend", err);
    this.#finish(TCP_S_CLOSE);
  }

  #onSocketClose(): void {
    const b = this.#backend;
    const e = this.#e;
    const bothClosed = this.#client.destroyed && (b === undefined || b.destroyed);
    if (this.#client.destroyed && b && !b.destroyed && e.conn.state === TCP_S_SYN_RECV) {
      // The client left while the real server was still being reached: give up on it.
      b.destroy();
      this.#finish(TCP_S_CLOSE);
      return;
    }
    if (!bothClosed) {
      // One side went away without a FIN we saw (destroyed or reset): take the other down too.
      if (this.#client.destroyed && b && !b.destroyed && !e.clientEnded) b.resetAndDestroy();
      else if (b?.destroyed && !this.#client.destroyed && !e.backendEnded && e.conn.state !== TCP_S_SYN_RECV)
        this.#client.resetAndDestroy();
      return;
    }
    this.#finish(e.clientEnded && e.backendEnded ? TCP_S_TIME_WAIT : TCP_S_CLOSE);
  }

  /**
   * Ask the kernel whether the sockets Node is not reading are still connected; a reset one is
   * destroyed with that error (its 'error' listener resets the other). Returns whether the relay
   * still has such a socket (stays on the list).
   */
  probeUnread(): boolean {
    const c = this.#client;
    const b = this.#backend;
    const e = this.#e;
    if (c.destroyed && (b === undefined || b.destroyed)) return false;
    if (!this.#piped) {
      // Connecting: only the client is connected.
      if (e.done || c.destroyed) return false;
      const rc = peerProbe(handleOf(c));
      if (rc !== 0) c.destroy(uvError(rc, "getpeername"));
      return rc === 0;
    }
    if (!(e.clientEnded || e.backendEnded || c.isPaused() || b?.isPaused())) return false;
    for (const s of [c, b]) {
      if (s === undefined || s.destroyed) continue;
      const rc = peerProbe(handleOf(s));
      if (rc !== 0) {
        s.destroy(uvError(rc, "getpeername"));
        return false;
      }
    }
    return true;
  }

  /** Both sockets are done (or going): leave the entry in its final state to linger and expire. */
  #finish(state: number): void {
    this.#e.finish(state);
    if (this.#client.destroyed && (this.#backend === undefined || this.#backend.destroyed)) this.#e.leave();
  }

  #reset(): void {
    this.#e.done = true;
    this.#client.resetAndDestroy();
    this.#backend?.resetAndDestroy();
    this.#e.leave();
  }

  /** The table dropped the entry while sockets were open: reset both, as later packets would be dropped. */
  closeFromTable(): void {
    if (this.#client.destroyed && (this.#backend === undefined || this.#backend.destroyed)) return;
    this.#reset();
  }

  /** What the relay is waiting for (logged when a drain gives up on it). */
  describe(): Record<string, unknown> {
    const c = this.#client;
    const b = this.#backend;
    return {
      ...this.#e.describe(),
      clientDestroyed: c.destroyed,
      clientPaused: c.isPaused(),
      clientWritable: c.writableLength,
      backendDestroyed: b?.destroyed,
      backendPaused: b?.isPaused(),
      backendWritable: b?.writableLength,
      backendConnecting: b?.connecting,
    };
  }

  /** Drain bound reached: reset what is left. */
  abort(): void {
    this.#reset();
    this.#e.aborted();
  }
}
