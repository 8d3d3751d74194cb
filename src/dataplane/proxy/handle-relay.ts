// One client connection carried by the socket data plane on bare libuv handles (libuv-tcp.ts):
// the relay used where the native addon is not built and Node exposes its TCP handles. Its
// connection-table side (states, counters, retries) is relay-entry.ts, shared with the others.
//
// How the bytes move. Each side's reads start once the real server has accepted (until then the
// client's bytes, and its FIN, wait in the kernel). A read's bytes are written to the other side
// at once; when that write cannot complete immediately (the other side's send buffer is full) the
// source stops reading until the write completes, so nothing is buffered in JavaScript and the
// kernel's windows carry the backpressure. An end of stream read on one side becomes a shutdown
// of the other side's write half (libuv sends it after the pending writes); when both halves are
// shut both handles are closed. Errors reset the other side.
//
// A reset on a side that is not being read (the client during the connect, a side after its end
// of stream, a source paused behind a stalled peer) is found by getpeername (unread-probe.ts).
//
// When the table removes the entry while the handles are open (idle timeout, expire_nodest_conn)
// both are reset.

import { formatEndpoint } from "../../core/addr.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import { TCP_S_CLOSE } from "../../core/conn/tcp-states.ts";
import type { VirtualService } from "../../core/service.ts";
import { type SockAddr, type TcpBinding, type TcpHandle, UV_EOF, uvError } from "./libuv-tcp.ts";
import { admitTcpClient, type Direction, RelayEntry } from "./relay-entry.ts";
import { type Arrival, type PlaneSlot, plainAddr, type TcpRelayContext } from "./tcp-relay.ts";
import { type UnreadProbed, watchUnread } from "./unread-probe.ts";

type Dir = Direction;

/** Bytes after which a direction reads into a buffer of its own (see #ownBuffer). */
const BULK_BYTES = 256 * 1024;
/** The size of that buffer: libuv's usual read size. */
const BULK_BUFFER = 64 * 1024;

/** What a closing handle's reads go to (the binding accepts only a function). */
function ignoreRead(): void {}

/**
 * Close a handle, with a reset (RST) when asked and the handle can. libuv closes the descriptor
 * inside the call (only the handle's memory waits for the loop), so the caller may give the
 * descriptor back at once; no close callback is asked for, which saves a call from C++ into
 * JavaScript per socket.
 */
function closeHandle(h: TcpHandle, reset: boolean): void {
  h.onread = ignoreRead;
  if (reset && typeof h.reset === "function" && h.reset() === 0) return;
  h.close();
}

export class HandleRelay implements PlaneSlot, UnreadProbed {
  readonly #uv: TcpBinding;
  readonly #e: RelayEntry;
  readonly #client: TcpHandle;
  /** The real server's handle of the current attempt. */
  #backend: TcpHandle | undefined;
  #clientOpen = true;
  #backendOpen = false;
  /** Our shutdown of the client's / the real server's write half completed. */
  #clientShut = false;
  #backendShut = false;
  /** Writes not yet completed towards the real server ("in") and the client ("out"). */
  #pendingIn = 0;
  #pendingOut = 0;
  #piped = false;
  /** The descriptor taken at accept for the first real-server socket is still unused. */
  #backendFdTaken = true;
  #connectTimer: NodeJS.Timeout | undefined;
  /** Bytes read so far per direction (until the direction gets its own buffer). */
  #readIn = 0;
  #readOut = 0;
  /** The direction's own read buffer, once it is a bulk transfer. */
  #bufIn: Buffer | undefined;
  #bufOut: Buffer | undefined;

  private constructor(
    uv: TcpBinding,
    ctx: TcpRelayContext,
    svc: VirtualService,
    arrival: Arrival,
    client: TcpHandle,
    caddr: string,
    cport: number,
    conn: BoundConn,
  ) {
    this.#uv = uv;
    this.#client = client;
    this.#e = new RelayEntry(ctx, svc, arrival, caddr, cport, conn, this);
    this.#connect();
  }

  get conn(): BoundConn {
    return this.#e.conn;
  }

  /** Schedule a client accepted on a service's listener and start relaying it (or reset it). */
  static accept(uv: TcpBinding, ctx: TcpRelayContext, svc: VirtualService, arrival: Arrival, client: TcpHandle): void {
    const peer: SockAddr = {};
    const caddr = client.getpeername(peer) === 0 ? plainAddr(peer.address) : undefined;
    const cport = peer.port;
    if (caddr === undefined || cport === undefined) {
      client.close();
      return;
    }
    const r = admitTcpClient(ctx, svc, arrival, caddr, cport);
    if (typeof r === "string") {
      closeHandle(client, true);
      return;
    }
    new HandleRelay(uv, ctx, svc, arrival, client, caddr, cport, r);
  }

  /**
   * Ask the kernel whether the sides not being read are still connected; a reset one fails the
   * relay. Returns whether the relay still has such a side (stays on the list).
   */
  probeUnread(): boolean {
    if (!this.#clientOpen && !this.#backendOpen) return false;
    const e = this.#e;
    if (!this.#piped) {
      // Connecting: the client waits unread (the real server's socket is not connected yet).
      if (e.done || !this.#clientOpen) return false;
      const rc = this.#client.getpeername({});
      if (rc !== 0) this.#failed("client", uvError(rc, "getpeername"));
      return rc === 0;
    }
    if (!(e.clientEnded || e.backendEnded || this.#pendingIn > 0 || this.#pendingOut > 0)) return false;
    if (this.#clientOpen) {
      const rc = this.#client.getpeername({});
      if (rc !== 0) {
        this.#failed("client", uvError(rc, "getpeername"));
        return false;
      }
    }
    const b = this.#backend;
    if (this.#backendOpen && b !== undefined) {
      const rc = b.getpeername({});
      if (rc !== 0) {
        this.#failed("backend", uvError(rc, "getpeername"));
        return false;
      }
    }
    return true;
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
      e.finish(TCP_S_CLOSE);
      this.#closeClient(true);
      return;
    }
    const b = this.#uv.newSocket();
    this.#backend = b;
    this.#backendOpen = true;
    const req = this.#uv.newConnectReq();
    req.address = conn.daddr;
    req.port = conn.dport;
    req.oncomplete = (status) => this.#onConnect(b, status);
    const rc = conn.daddr.includes(":")
      ? b.connect6(req, conn.daddr, conn.dport)
      : b.connect(req, conn.daddr, conn.dport);
    if (rc !== 0) {
      this.#closeBackend(false);
      this.#connectFailed(uvError(rc, "connect"));
      return;
    }
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      if (this.#backend !== b || !this.#backendOpen || this.#piped) return;
      this.#closeBackend(false);
      this.#connectFailed(new Error(`Connect to ${formatEndpoint(conn.daddr, conn.dport)} timed out`));
    }, ctx.options.connectTimeoutMs);
  }

  #onConnect(b: TcpHandle, status: number): void {
    if (b !== this.#backend || !this.#backendOpen) return; // an attempt given up already
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    if (status !== 0) {
      this.#closeBackend(false);
      this.#connectFailed(uvError(status, "connect"));
      return;
    }
    const e = this.#e;
    if (e.done || !this.#clientOpen) {
      this.#closeBackend(true);
      return;
    }
    const local: SockAddr = {};
    e.established(
      e.conn.fwd === "fullnat" && b.getsockname(local) === 0
        ? { addr: plainAddr(local.address), port: local.port }
        : undefined,
    );
    b.setNoDelay(true);
    this.#piped = true;
    const header = e.proxyHeader();
    if (header !== undefined) this.#write("in", header);
    if (!this.#piped) return; // the header's write failed
    this.#client.onread = (ab) => this.#onRead("in", ab);
    b.onread = (ab) => this.#onRead("out", ab);
    if (this.#pendingIn === 0) this.#client.readStart();
    b.readStart();
  }

  #connectFailed(err: Error): void {
    if (this.#e.connectFailed(err, this.#clientOpen)) this.#connect();
    else this.#closeClient(true);
  }

  #onRead(dir: Dir, ab: ArrayBuffer | undefined): void {
    const n = this.#uv.readResult();
    if (n > 0) {
      const data =
        ab !== undefined
          ? Buffer.from(ab, this.#uv.readOffset(), n)
          : (dir === "in" ? this.#bufIn : this.#bufOut)?.subarray(0, n);
      if (data === undefined) return;
      if (!this.#e.passed(dir, 1, n)) {
        this.#reset();
        return;
      }
      this.#write(dir, data);
      if (ab !== undefined && (dir === "in" ? (this.#readIn += n) : (this.#readOut += n)) >= BULK_BYTES)
        this.#ownBuffer(dir);
      return;
    }
    if (n === UV_EOF) {
      (dir === "in" ? this.#client : this.#backend)?.readStop();
      this.#onEnd(dir);
      watchUnread(this);
      return;
    }
    if (n < 0) this.#failed(dir === "in" ? "client" : "backend", uvError(n, "read"));
  }

  /**
   * A direction that has carried BULK_BYTES is a bulk transfer: from now on its reads land in a
   * buffer of its own instead of a fresh allocation per read (Node allocates up to 64 KiB per read
   * otherwise, and the garbage collector pays for each). Reusing it is safe because the source
   * stops reading while a write from the buffer is pending. Short exchanges never get one, so an
   * idle connection costs no buffer.
   */
  #ownBuffer(dir: Dir): void {
    const src = dir === "in" ? this.#client : this.#backend;
    if (src === undefined || typeof src.useUserBuffer !== "function") return;
    const buf = Buffer.allocUnsafeSlow(BULK_BUFFER);
    if (dir === "in") {
      if (this.#bufIn) return;
      this.#bufIn = buf;
    } else {
      if (this.#bufOut) return;
      this.#bufOut = buf;
    }
    src.useUserBuffer(buf);
  }

  /** Write bytes read from one side to the other; the source pauses while the write is pending. */
  #write(dir: Dir, data: Uint8Array): void {
    const dst = dir === "in" ? this.#backend : this.#client;
    if (dst === undefined) return;
    const req = this.#uv.newWriteReq();
    req.handle = dst;
    req.buffer = data;
    req.async = false;
    req.oncomplete = (status) => this.#written(dir, status);
    const rc = dst.writeBuffer(req, data);
    if (rc !== 0) {
      this.#failed(dir === "in" ? "backend" : "client", uvError(rc, "write"));
      return;
    }
    if (!this.#uv.lastWriteAsync()) return;
    watchUnread(this);
    if (dir === "in") {
      if (this.#pendingIn++ === 0) this.#client.readStop();
    } else if (this.#pendingOut++ === 0) this.#backend?.readStop();
  }

  #written(dir: Dir, status: number): void {
    if (this.#e.done && !this.#piped) return;
    if (status < 0) {
      if (!this.#e.done) this.#failed(dir === "in" ? "backend" : "client", uvError(status, "write"));
      return;
    }
    if (dir === "in") {
      if (--this.#pendingIn === 0 && !this.#e.clientEnded && this.#clientOpen) this.#client.readStart();
    } else if (--this.#pendingOut === 0 && !this.#e.backendEnded && this.#backendOpen) this.#backend?.readStart();
  }

  /**
   * An end of stream from one side: pass it on as a shutdown of the other side's write half. The
   * second one, with nothing left to write either way, closes both handles at once: close() sends
   * the FIN the shutdown would have (every byte of both sides has been read, so it is not a
   * reset), one system call and one wake-up less per connection.
   */
  #onEnd(dir: Dir): void {
    const e = this.#e;
    e.ended(dir);
    if (e.clientEnded && e.backendEnded && this.#pendingIn === 0 && this.#pendingOut === 0) {
      this.#closeClient(false);
      this.#closeBackend(false);
      return;
    }
    const dst = dir === "in" ? this.#backend : this.#client;
    const open = dir === "in" ? this.#backendOpen : this.#clientOpen;
    if (dst === undefined || !open) return;
    const req = this.#uv.newShutdownReq();
    req.handle = dst;
    req.oncomplete = () => this.#shut(dir);
    if (dst.shutdown(req) !== 0) this.#shut(dir);
  }

  #shut(dir: Dir): void {
    if (dir === "in") this.#backendShut = true;
    else this.#clientShut = true;
    const e = this.#e;
    if (e.clientEnded && e.backendEnded && this.#clientShut && this.#backendShut) {
      this.#closeClient(false);
      this.#closeBackend(false);
    }
  }

  /** A read or write error on one side: reset the other, close both, the entry goes to CLOSE. */
  #failed(side: "client" | "backend", err: Error): void {
    if (this.#e.done && !this.#clientOpen && !this.#backendOpen) return;
    this.#e.failed(side, err);
    this.#closeClient(true);
    this.#closeBackend(true);
  }

  #closeClient(reset: boolean): void {
    if (!this.#clientOpen) return;
    this.#clientOpen = false;
    const fds = this.#e.ctx.fds;
    closeHandle(this.#client, reset);
    fds.give(1);
    this.#release();
  }

  #closeBackend(reset: boolean): void {
    const b = this.#backend;
    if (!this.#backendOpen || b === undefined) return;
    this.#backendOpen = false;
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    const fds = this.#e.ctx.fds;
    closeHandle(b, reset);
    fds.give(1);
    this.#release();
  }

  /** Both handles are closed (or closing): the relay leaves the plane; the entry lingers. */
  #release(): void {
    if (this.#clientOpen || this.#backendOpen) return;
    this.#piped = false;
    this.#e.leave();
  }

  #reset(): void {
    this.#e.done = true;
    this.#closeClient(true);
    this.#closeBackend(true);
  }

  /** The table dropped the entry while the handles were open: reset both, as later packets would be dropped. */
  closeFromTable(): void {
    if (!this.#clientOpen && !this.#backendOpen) return;
    this.#reset();
  }

  /** What the relay is waiting for (logged when a drain gives up on it). */
  describe(): Record<string, unknown> {
    return {
      ...this.#e.describe(),
      clientOpen: this.#clientOpen,
      backendOpen: this.#backendOpen,
      pendingToServer: this.#pendingIn,
      pendingToClient: this.#pendingOut,
      connecting: this.#backendOpen && !this.#piped && !this.#e.done,
    };
  }

  /** Drain bound reached: reset what is left. */
  abort(): void {
    this.#reset();
    this.#e.aborted();
  }
}
