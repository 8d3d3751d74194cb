// The socket data plane's fastest TCP relay: the native addon's byte pump (native/src/tcp_relay.c)
// accepts, connects and moves the bytes; this file decides everything and keeps the connection
// table true. It is used wherever the addon is built; handle-relay.ts (libuv handles) and
// tcp-relay.ts (net.Socket) remain the fallbacks, with the same meaning:
//
//   accept                       → SYN_RECV    (the real server is being reached)
//   the real server accepts      → ESTABLISHED
//   client sends FIN first       → CLOSE_WAIT,  real server sends FIN first → FIN_WAIT
//   both FINs seen               → TIME_WAIT   (the entry lingers and expires)
//   a reset either way, a failed or timed-out connect → CLOSE (the client gets a RST)
//
// The pump reports in batches, at most once per wake-up of the event loop, as records in a shared
// Float64Array (the record layout is described in tcp_relay.c). The reads of one connection since
// its last record arrive as one DATA record, with the wake-up's other records or, when a wake-up
// only moved bytes, within 20 ms: its packets (reads) and payload bytes are charged to the entry
// and its timeout is refreshed, as the other relays do per read. Where the
// kernel would drop the next packet of an entry whose destination is gone (expire_nodest_conn),
// the relay resets the connection at its next DATA record.

import { constants as osConstants } from "node:os";
import { formatEndpoint, formatIpv4, formatIpv6Groups } from "../../core/addr.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import {
  TCP_S_CLOSE,
  TCP_S_CLOSE_WAIT,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_SYN_RECV,
  TCP_S_TIME_WAIT,
} from "../../core/conn/tcp-states.ts";
import type { VirtualService } from "../../core/service.ts";
import { loadNative } from "../../platform/native-addon.ts";
import { proxyProtocolFor } from "./options.ts";
import { proxyHeader } from "./proxy-protocol.ts";
import { type Arrival, admitTcpClient, type PlaneSlot, rescheduleFailed, type TcpRelayContext } from "./tcp-relay.ts";

/** The addon's relay functions (native/src/tcp_relay.c has the exact contracts). */
interface RelayAddon {
  relayOpen(onRecords: (count: number) => void): ArrayBuffer;
  relayListen(fd: number): number;
  relayUnlisten(listener: number): void;
  relayConnect(fd: number, address: string, port: number, header: Buffer | null): number;
  relayReconnect(id: number, address: string, port: number, header: Buffer | null): number;
  relayAbort(id: number, reset: boolean): number[] | undefined;
  relayReset(fd: number): void;
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
  readonly #ctx: TcpRelayContext;
  readonly #svc: VirtualService;
  readonly #arrival: Arrival;
  readonly #caddr: string;
  readonly #cport: number;
  #conn: BoundConn;
  /** The client's descriptor until the pump owns it. */
  #fd: number;
  /** The pump's id for this connection, -1 before the first connect started. */
  #id = -1;
  #open = true;
  #piped = false;
  #done = false;
  #clientEnded = false;
  #backendEnded = false;
  #attempts = 1;
  readonly #tried = new Set<string>();
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
    this.#ctx = ctx;
    this.#svc = svc;
    this.#arrival = arrival;
    this.#fd = fd;
    this.#caddr = caddr;
    this.#cport = cport;
    this.#conn = conn;
    conn.plane = this;
    ctx.open.add(this);
    ctx.conns.setState(conn, TCP_S_SYN_RECV, ctx.clock.now());
    this.#connect();
  }

  get conn(): BoundConn {
    return this.#conn;
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
    const r = admitTcpClient(ctx, svc, arrival, caddr, cport);
    if (typeof r === "string") {
      engine.addon.relayReset(fd);
      return;
    }
    new NativeRelay(engine, ctx, svc, arrival, fd, caddr, cport, r);
  }

  /** The PROXY protocol header this connection's real server wants, or null. */
  #header(): Buffer | null {
    const pp = proxyProtocolFor(this.#ctx.options.proxyProtocol, this.#svc.id, this.#conn.dest.endpoint);
    if (pp === 0) return null;
    return proxyHeader(pp, {
      caddr: this.#caddr,
      cport: this.#cport,
      vaddr: this.#arrival.vaddr,
      vport: this.#arrival.vport,
    });
  }

  #connect(): void {
    const conn = this.#conn;
    this.#tried.add(`${conn.daddr}|${conn.dport}`);
    const header = this.#header();
    let rc: number;
    if (this.#id < 0) {
      rc = this.#engine.connect(this, this.#fd, conn.daddr, conn.dport, header);
      if (rc >= 0) this.#id = rc;
    } else {
      rc = this.#engine.addon.relayReconnect(this.#id, conn.daddr, conn.dport, header);
    }
    if (rc < 0) {
      this.#connectFailed(errnoError(rc, "connect"));
      return;
    }
    const timer = setTimeout(() => {
      if (this.#connectTimer !== timer || this.#piped || this.#done) return;
      this.#connectTimer = undefined;
      this.#connectFailed(new Error(`Connect to ${formatEndpoint(conn.daddr, conn.dport)} timed out`));
    }, this.#ctx.options.connectTimeoutMs);
    this.#connectTimer = timer;
  }

  onConnected(status: number): void {
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    if (this.#done || this.#piped) return;
    if (status < 0) {
      this.#connectFailed(errnoError(status, "connect"));
      return;
    }
    const ctx = this.#ctx;
    const conn = this.#conn;
    const now = ctx.clock.now();
    ctx.conns.setState(conn, TCP_S_ESTABLISHED, now);
    ctx.syncIn?.(conn, now);
    if (conn.fwd === "fullnat") {
      // The director's side of the server connection is FULLNAT's local endpoint (-c shows it).
      const local = this.#engine.addon.relayLocal(this.#id);
      if (local !== undefined) {
        try {
          ctx.conns.setLocal(conn, local[0], local[1]);
        } catch (err) {
          ctx.log.debug("FULLNAT local endpoint not recorded", { err });
        }
      }
    }
    this.#piped = true;
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
      { addr: this.#caddr, port: this.#cport, open: this.#open },
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
    this.#close(true);
  }

  onData(inPackets: number, inBytes: number, outPackets: number, outBytes: number): void {
    const ctx = this.#ctx;
    const conn = this.#conn;
    if (!conn.dest.available && ctx.conns.options.expireNodestConn) {
      // expire_nodest_conn: the destination is gone, so the kernel drops the entry at its next packet.
      this.#reset();
      ctx.conns.remove(conn, ctx.clock.now());
      return;
    }
    if (inPackets > 0) ctx.conns.account(conn, "in", inPackets, inBytes);
    if (outPackets > 0) ctx.conns.account(conn, "out", outPackets, outBytes);
    const now = ctx.clock.now();
    ctx.conns.touch(conn, now);
    if (inPackets > 0) ctx.syncIn?.(conn, now);
  }

  onEnd(dir: "in" | "out"): void {
    if (dir === "in") this.#clientEnded = true;
    else this.#backendEnded = true;
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

  /** The pump closed both sockets: after both ends of stream (status 0) or an error on one side. */
  onClosed(status: number, side: "client" | "backend"): void {
    if (status < 0) {
      this.#ctx.log.debug(side === "client" ? "Client connection error" : "Real server connection error", {
        service: this.#svc.id,
        err: errnoError(status, side === "client" ? "client socket" : "real-server socket"),
      });
      this.#finish(TCP_S_CLOSE);
    } else this.#finish(TCP_S_TIME_WAIT);
    this.#release();
  }

  /** Close what is open (the client with a RST when `reset`); the entry keeps its state. */
  #close(reset: boolean): void {
    if (!this.#open) return;
    if (this.#id >= 0) {
      const unreported = this.#engine.abort(this.#id, reset);
      if (unreported !== undefined && this.#conn.live && !this.#conn.template) {
        const [ip = 0, ib = 0, op = 0, ob = 0] = unreported;
        if (ip > 0) this.#ctx.conns.account(this.#conn, "in", ip, ib);
        if (op > 0) this.#ctx.conns.account(this.#conn, "out", op, ob);
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
    this.#ctx.fds.give(2);
    this.#ctx.open.delete(this);
    if (this.#conn.plane === this) this.#conn.plane = undefined;
  }

  /** Leave the entry in its final state (once) to linger and expire. */
  #finish(state: number): void {
    if (this.#done) return;
    this.#done = true;
    const ctx = this.#ctx;
    ctx.conns.setState(this.#conn, state, ctx.clock.now());
  }

  #reset(): void {
    this.#done = true;
    this.#close(true);
  }

  /** The table dropped the entry while the sockets were open: reset both, as later packets would be dropped. */
  closeFromTable(): void {
    if (!this.#open) return;
    this.#reset();
  }

  /** What the relay is waiting for (logged when a drain gives up on it). */
  describe(): Record<string, unknown> {
    return {
      client: `${this.#caddr}:${this.#cport}`,
      state: this.#conn.stateName,
      clientEnded: this.#clientEnded,
      backendEnded: this.#backendEnded,
      open: this.#open,
      connecting: this.#open && !this.#piped && !this.#done,
    };
  }

  /** Drain bound reached: reset what is left. */
  abort(): void {
    this.#reset();
    const ctx = this.#ctx;
    ctx.conns.setState(this.#conn, TCP_S_CLOSE, ctx.clock.now());
  }
}
