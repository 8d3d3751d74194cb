// The socket data plane's fastest TCP relay: the native addon's byte pump (native/src/tcp_relay.c)
// accepts, connects and moves the bytes; this file decides everything, and its connection-table
// side (states, counters, retries) is relay-entry.ts, shared with the fallbacks handle-relay.ts
// (libuv handles) and tcp-relay.ts (net.Socket). It is used wherever the addon is built.
//
// The pump reports in batches, at most once per wake-up of the event loop, as records in a shared
// Float64Array (the record layout is described in tcp_relay.c). The reads of one connection since
// its last record arrive as one DATA record, with the wake-up's other records or, when a wake-up
// only moved bytes, within 20 ms: its packets (reads) and payload bytes are charged to the entry
// and its timeout is refreshed, as the other relays do per read. Where the kernel would drop the
// next packet of an entry whose destination is gone (expire_nodest_conn), the relay resets the
// connection at its next DATA record; unlike the kernel's drop, the bytes that record counts have
// reached the real server already (the table's once-a-second sweep of such entries resets an idle
// one before it sends anything).

import { constants as osConstants } from "node:os";
import { formatEndpoint, formatIpv4, formatIpv6Groups } from "../../core/addr.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import { TCP_S_CLOSE, TCP_S_TIME_WAIT } from "../../core/conn/tcp-states.ts";
import type { VirtualService } from "../../core/service.ts";
import { loadNative } from "../../platform/native-addon.ts";
import { admitTcpClient, type Direction, RelayEntry } from "./relay-entry.ts";
import type { Arrival, PlaneSlot, TcpRelayContext } from "./tcp-relay.ts";

/** The addon's relay functions (native/src/tcp_relay.c has the exact contracts). */
interface RelayAddon {
  relayOpen(onRecords: (count: number) => void): ArrayBuffer;
  relayListen(fd: number): number;
  relayUnlisten(listener: number): void;
  relayConnect(fd: number, address: string, port: number, header: Buffer | null): number;
  relayReconnect(id: number, address: string, port: number, header: Buffer | null): number;
  relayAbort(id: number, reset: boolean): number[] | undefined;
  /** 0, or -errno when fd is not a TCP socket (left open). */
  relayReset(fd: number): number;
  relayLocal(id: number): [string, number] | undefined;
  relayRef(on: boolean): void;
}

const REC = 8;
const EV_ACCEPT4 = 1;
const EV_ACCEPT6 = 2;
const EV_CONNECTED = 3;
const EV_DATA = 4;
const EV_EOF = 5;
const EV_CLOSED = 6;
const EV_ACCEPT_ERROR = 7;

/** What a listener is told: an accepted client (the descriptor is the callee's), or accept failing. */
export interface NativeAcceptor {
  accept(fd: number, addr: string, port: number): void;
  acceptFailed(errno: number): void;
}

/** An errno from the pump as an Error with the system's code. */
function errnoError(errno: number, what: string): Error {
  const code = ERRNO_NAMES.get(-errno) ?? `E${-errno}`;
  return Object.assign(new Error(`${what} failed: ${code}`), { code, errno });
}

/** errno numbers to their names (ECONNREFUSED, ...), from the running system's own table. */
const ERRNO_NAMES = new Map<number, string>(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/**
 * The process's one pump (the addon keeps one per process), shared by every plane in it: it
 * routes each record to the listener or relay it names.
 */
export class NativeRelayEngine {
  static #shared: NativeRelayEngine | undefined;
  static #unavailable = false;

  readonly addon: RelayAddon;
  readonly #records: Float64Array;
  readonly #relays: (NativeRelay | undefined)[] = [];
  readonly #listeners: (NativeAcceptor | undefined)[] = [];
  /** Listeners and relays open: while any is, the pump keeps the event loop alive. */
  #held = 0;

  private constructor(addon: RelayAddon) {
    this.addon = addon;
    this.#records = new Float64Array(addon.relayOpen((n) => this.#onRecords(n)));
  }

  /** The pump, or undefined where the addon is not built (or predates the pump). */
  static get(): NativeRelayEngine | undefined {
    if (NativeRelayEngine.#shared) return NativeRelayEngine.#shared;
    if (NativeRelayEngine.#unavailable) return undefined;
    try {
      const addon = loadNative() as unknown as Partial<RelayAddon>;
      if (typeof addon.relayOpen !== "function") throw new Error("no relay");
      NativeRelayEngine.#shared = new NativeRelayEngine(addon as RelayAddon);
      return NativeRelayEngine.#shared;
    } catch {
      NativeRelayEngine.#unavailable = true;
      return undefined;
    }
  }

  /** Accept on a listening descriptor (the pump owns it from now on). */
  listen(fd: number, acceptor: NativeAcceptor): NativeListener {
    let id: number;
    try {
      id = this.addon.relayListen(fd);
    } catch (err) {
      this.#closeQuietly(fd);
      throw err;
    }
    this.#listeners[id] = acceptor;
    this.hold(1);
    return new NativeListener(this, id);
  }

  unlisten(id: number): void {
    if (this.#listeners[id] === undefined) return;
    this.#listeners[id] = undefined;
    this.addon.relayUnlisten(id);
    this.hold(-1);
  }

  /** Start a relay's connect: its id, or -errno (the client descriptor stays the caller's). */
  connect(relay: NativeRelay, fd: number, addr: string, port: number, header: Buffer | null): number {
    const id = this.addon.relayConnect(fd, addr, port, header);
    if (id >= 0) {
      this.#relays[id] = relay;
      this.hold(1);
    }
    return id;
  }

  /** Close a relay's sockets without a record; the reads not yet reported, if any. */
  abort(id: number, reset: boolean): number[] | undefined {
    const out = this.addon.relayAbort(id, reset);
    this.forget(id);
    return out;
  }

  forget(id: number): void {
    if (this.#relays[id] === undefined) return;
    this.#relays[id] = undefined;
    this.hold(-1);
  }

  hold(delta: number): void {
    const before = this.#held;
    this.#held += delta;
    if (before === 0 && this.#held > 0) this.addon.relayRef(true);
    else if (before > 0 && this.#held === 0) this.addon.relayRef(false);
  }

  #closeQuietly(fd: number): void {
    try {
      this.addon.relayReset(fd);
    } catch {
      // already gone
    }
  }

  /**
   * Told when a record's handling threw (a bug): the connection it named has been reset, so the
   * pump and the table agree again, and the daemon goes on. The plane logs it.
   */
  onBug: (err: unknown) => void = () => {};

  #onRecords(count: number): void {
    const r = this.#records;
    for (let i = 0; i < count; i++) {
      const o = i * REC;
      try {
        this.#record(r, o);
      } catch (err) {
        // A bug must cost one connection, never the daemon (nor the other records of this batch).
        const kind = r[o];
        const id = r[o + 1] as number;
        if (kind !== EV_ACCEPT4 && kind !== EV_ACCEPT6 && kind !== EV_ACCEPT_ERROR) {
          try {
            this.#relays[id]?.abort();
          } catch {
            // the same bug again: the reset below still happens
          }
          this.abort(id, true);
        }
        this.onBug(err);
      }
    }
  }

  #record(r: Float64Array, o: number): void {
    const kind = r[o];
    const id = r[o + 1] as number;
    switch (kind) {
      case EV_ACCEPT4:
      case EV_ACCEPT6: {
        const fd = r[o + 2] as number;
        const addr =
          kind === EV_ACCEPT4
            ? formatIpv4(r[o + 4] as number)
            : formatIpv6Groups(ipv6Groups(r[o + 4], r[o + 5], r[o + 6], r[o + 7]));
        const l = this.#listeners[id];
        if (l === undefined) this.addon.relayReset(fd);
        else l.accept(fd, addr, r[o + 3] as number);
        break;
      }
      case EV_CONNECTED:
        this.#relays[id]?.onConnected(r[o + 2] as number);
        break;
      case EV_DATA:
        this.#relays[id]?.onData(r[o + 2] as number, r[o + 3] as number, r[o + 4] as number, r[o + 5] as number);
        break;
      case EV_EOF:
        this.#relays[id]?.onEnd(r[o + 2] === 0 ? "in" : "out");
        break;
      case EV_CLOSED: {
        const relay = this.#relays[id];
        this.forget(id);
        relay?.onClosed(r[o + 2] as number, r[o + 3] === 0 ? "client" : "backend");
        break;
      }
      case EV_ACCEPT_ERROR:
        this.#listeners[id]?.acceptFailed(r[o + 2] as number);
        break;
    }
  }
}

function ipv6Groups(...words: (number | undefined)[]): number[] {
  const g: number[] = [];
  for (const w of words) g.push(((w ?? 0) >>> 16) & 0xffff, (w ?? 0) & 0xffff);
  return g;
}

/** A VIP's listening socket in the pump. */
export class NativeListener {
  readonly #engine: NativeRelayEngine;
  readonly #id: number;
  #listening = true;

  constructor(engine: NativeRelayEngine, id: number) {
    this.#engine = engine;
    this.#id = id;
  }

  get listening(): boolean {
    return this.#listening;
  }

  close(cb?: () => void): void {
    if (this.#listening) {
      this.#listening = false;
      this.#engine.unlisten(this.#id);
    }
    if (cb) queueMicrotask(cb);
  }
}

/** One client connection relayed by the pump. */
export class NativeRelay implements PlaneSlot {
  readonly #engine: NativeRelayEngine;
  readonly #e: RelayEntry;
  /** The client's descriptor until the pump owns it. */
  readonly #fd: number;
  /** The pump's id for this connection, -1 before the first connect started. */
  #id = -1;
  #open = true;
  #piped = false;
  #connectTimer: NodeJS.Timeout | undefined;

  private constructor(
    engine: NativeRelayEngine,
    ctx: TcpRelayContext,
    svc: VirtualService,
    arrival: Arrival,
    fd: number,
    caddr: string,
    cport: number,
    conn: BoundConn,
  ) {
    this.#engine = engine;
    this.#fd = fd;
    this.#e = new RelayEntry(ctx, svc, arrival, caddr, cport, conn, this);
    this.#connect();
  }

  get conn(): BoundConn {
    return this.#e.conn;
  }

  /** Schedule a client the pump accepted and start relaying it (or reset it). */
  static accept(
    engine: NativeRelayEngine,
    ctx: TcpRelayContext,
    svc: VirtualService,
    arrival: Arrival,
    fd: number,
    caddr: string,
    cport: number,
  ): void {
    let r: ReturnType<typeof admitTcpClient>;
    try {
      r = admitTcpClient(ctx, svc, arrival, caddr, cport);
    } catch (err) {
      engine.addon.relayReset(fd); // a bug: the client is still ours to reset
      throw err;
    }
    if (typeof r === "string") {
      engine.addon.relayReset(fd);
      return;
    }
    new NativeRelay(engine, ctx, svc, arrival, fd, caddr, cport, r);
  }

  #connect(): void {
    const e = this.#e;
    const conn = e.conn;
    let rc: number;
    try {
      const header = e.proxyHeader() ?? null;
      if (this.#id < 0) {
        rc = this.#engine.connect(this, this.#fd, conn.daddr, conn.dport, header);
        if (rc >= 0) this.#id = rc;
      } else {
        rc = this.#engine.addon.relayReconnect(this.#id, conn.daddr, conn.dport, header);
      }
    } catch (err) {
      this.#dropped(err);
      return;
    }
    if (rc < 0) {
      this.#connectFailed(errnoError(rc, "connect"));
      return;
    }
    const timer = setTimeout(() => {
      if (this.#connectTimer !== timer || this.#piped || e.done) return;
      this.#connectTimer = undefined;
      try {
        this.#connectFailed(new Error(`Connect to ${formatEndpoint(conn.daddr, conn.dport)} timed out`));
      } catch (err) {
        this.#dropped(err);
      }
    }, e.ctx.options.connectTimeoutMs);
    this.#connectTimer = timer;
  }

  /**
   * A bug while connecting (from the connect timer as well, where nothing else would catch it)
   * must cost this connection only, never the daemon, and hold nothing: the client is reset, the
   * entry is CLOSE.
   */
  #dropped(err: unknown): void {
    const e = this.#e;
    e.ctx.log.error("Connection dropped", { service: e.svc.id, err });
    try {
      e.finish(TCP_S_CLOSE);
    } finally {
      this.#close(true);
    }
  }

  onConnected(status: number): void {
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    if (this.#e.done || this.#piped) return;
    if (status < 0) {
      this.#connectFailed(errnoError(status, "connect"));
      return;
    }
    const local = this.#e.conn.fwd === "fullnat" ? this.#engine.addon.relayLocal(this.#id) : undefined;
    this.#e.established(local && { addr: local[0], port: local[1] });
    this.#piped = true;
  }

  #connectFailed(err: Error): void {
    if (this.#e.connectFailed(err, this.#open)) this.#connect();
    else this.#close(true);
  }

  onData(inPackets: number, inBytes: number, outPackets: number, outBytes: number): void {
    const e = this.#e;
    if (!e.passed("in", inPackets, inBytes) || !e.passed("out", outPackets, outBytes)) this.#reset();
  }

  onEnd(dir: Direction): void {
    this.#e.ended(dir);
  }

  /** The pump closed both sockets: after both ends of stream (status 0) or an error on one side. */
  onClosed(status: number, side: "client" | "backend"): void {
    const e = this.#e;
    if (status < 0) e.failed(side, errnoError(status, side === "client" ? "client socket" : "real-server socket"));
    else e.finish(TCP_S_TIME_WAIT);
    this.#release();
  }

  /** Close what is open (the client with a RST when `reset`); the entry keeps its state. */
  #close(reset: boolean): void {
    if (!this.#open) return;
    if (this.#id >= 0) {
      const unreported = this.#engine.abort(this.#id, reset);
      const conn = this.#e.conn;
      if (unreported !== undefined && conn.live && !conn.template) {
        const [ip = 0, ib = 0, op = 0, ob = 0] = unreported;
        if (ip > 0) this.#e.ctx.conns.account(conn, "in", ip, ib);
        if (op > 0) this.#e.ctx.conns.account(conn, "out", op, ob);
      }
    } else this.#engine.addon.relayReset(this.#fd);
    this.#release();
  }

  #release(): void {
    if (!this.#open) return;
    this.#open = false;
    this.#piped = false;
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    this.#e.ctx.fds.give(2);
    this.#e.leave();
  }

  #reset(): void {
    this.#e.done = true;
    this.#close(true);
  }

  /** The table dropped the entry while the sockets were open: reset both, as later packets would be dropped. */
  closeFromTable(): void {
    if (!this.#open) return;
    this.#reset();
  }

  /** What the relay is waiting for (logged when a drain gives up on it). */
  describe(): Record<string, unknown> {
    return { ...this.#e.describe(), open: this.#open, connecting: this.#open && !this.#piped && !this.#e.done };
  }

  /** Drain bound reached: reset what is left. */
  abort(): void {
    this.#reset();
    this.#e.aborted();
  }
}
