// libuv's TCP handles as Node's own net module drives them (the tcp_wrap and stream_wrap
// bindings), for the socket plane's fast relay (handle-relay.ts) and its listeners.
//
// Why: a net.Socket is a Duplex stream with two state objects, an event emitter, a dozen
// listeners and nextTick hops per event; per relayed connection that machinery cost more CPU
// than the kernel's whole TCP work (bench/proxy.ts, docs/performance.md). The handle underneath
// already does everything a relay needs: read callbacks with the bytes, writes that complete at
// once or later, shutdown for a half-close, close with or without a reset. Reads are started and
// stopped explicitly, so backpressure is "stop reading the source while a write to the other
// side is pending", without buffering in JavaScript.
//
// The bindings are Node internals (reached with process.binding, which Node keeps for them); the
// shapes below are the ones Node 20 and 22 use. When they are missing, tcpBinding() returns
// undefined and the plane uses net.Server and net.Socket instead (tcp-relay.ts).

import { getSystemErrorName } from "node:util";

/** A libuv TCP handle (node's TCPWrap). Methods return 0 or a negative errno. */
export interface TcpHandle {
  /** Set to a function only (the binding asserts it). */
  onread: (arrayBuffer: ArrayBuffer | undefined) => void;
  onconnection: (status: number, client: TcpHandle | undefined) => void;
  open(fd: number): number;
  bind(addr: string, port: number): number;
  bind6(addr: string, port: number, flags: number): number;
  listen(backlog: number): number;
  connect(req: ConnectReq, addr: string, port: number): number;
  connect6(req: ConnectReq, addr: string, port: number): number;
  getpeername(out: SockAddr): number;
  getsockname(out: SockAddr): number;
  setNoDelay(on: boolean): number;
  readStart(): number;
  readStop(): number;
  writeBuffer(req: WriteReq, data: Uint8Array): number;
  shutdown(req: ShutdownReq): number;
  /** Read into this buffer from now on (onread then gets no ArrayBuffer; the bytes start at 0). */
  useUserBuffer?(buf: Uint8Array): void;
  close(cb?: () => void): void;
  /** Close with a reset (SO_LINGER 0); 0 or a negative errno (then the handle is still open). */
  reset?(cb?: () => void): number;
  fd: number;
}

export interface SockAddr {
  address?: string;
  port?: number;
  family?: string;
}

export interface ConnectReq {
  oncomplete: (status: number, handle: TcpHandle, req: ConnectReq, readable: boolean, writable: boolean) => void;
  address: string;
  port: number;
}

export interface WriteReq {
  oncomplete: (status: number) => void;
  handle: TcpHandle;
  async: boolean;
  buffer: Uint8Array;
}

export interface ShutdownReq {
  oncomplete: (status: number) => void;
  handle: TcpHandle;
}

export interface TcpBinding {
  newSocket(): TcpHandle;
  newServer(): TcpHandle;
  newConnectReq(): ConnectReq;
  newWriteReq(): WriteReq;
  newShutdownReq(): ShutdownReq;
  /** After a read callback: the byte count (> 0), UV_EOF or a negative errno. */
  readResult(): number;
  /** After a read callback with bytes: where they start in the ArrayBuffer passed. */
  readOffset(): number;
  /** After writeBuffer returned 0: true when the write is still pending (oncomplete will follow). */
  lastWriteAsync(): boolean;
  ipv6Only: number;
}

/** libuv's end-of-stream read result. */
export const UV_EOF = -4095;

type TcpWrapModule = {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number; SERVER: number; UV_TCP_IPV6ONLY: number };
};
type StreamWrapModule = {
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kLastWriteWasAsync: number;
};

let cached: TcpBinding | undefined | null = null;

/** The handle API, or undefined where this Node does not expose it (the plane then uses net). */
export function tcpBinding(): TcpBinding | undefined {
  if (cached !== null) return cached;
  cached = undefined;
  try {
    const binding = (process as unknown as { binding(name: string): unknown }).binding;
    const tcp = binding("tcp_wrap") as TcpWrapModule;
    const stream = binding("stream_wrap") as StreamWrapModule;
    const state = stream.streamBaseState;
    const { kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync } = stream;
    if (
      typeof tcp.TCP !== "function" ||
      typeof tcp.TCPConnectWrap !== "function" ||
      typeof stream.WriteWrap !== "function" ||
      typeof stream.ShutdownWrap !== "function" ||
      !(state instanceof Int32Array) ||
      ![kReadBytesOrError, kArrayBufferOffset, kLastWriteWasAsync].every((k) => typeof k === "number")
    )
      return cached;
    const { SOCKET, SERVER, UV_TCP_IPV6ONLY } = tcp.constants;
    cached = {
      newSocket: () => new tcp.TCP(SOCKET),
      newServer: () => new tcp.TCP(SERVER),
      newConnectReq: () => new tcp.TCPConnectWrap(),
      newWriteReq: () => new stream.WriteWrap(),
      newShutdownReq: () => new stream.ShutdownWrap(),
      readResult: () => state[kReadBytesOrError] as number,
      readOffset: () => state[kArrayBufferOffset] as number,
      lastWriteAsync: () => state[kLastWriteWasAsync] !== 0,
      ipv6Only: UV_TCP_IPV6ONLY,
    };
  } catch {
    cached = undefined;
  }
  return cached;
}

/** A negative libuv status as an Error with the system's code (EADDRINUSE, ECONNREFUSED, ...). */
export function uvError(status: number, what: string): NodeJS.ErrnoException {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    code = `E${-status}`;
  }
  return Object.assign(new Error(`${what} ${code}`), { code, errno: status, syscall: what });
}
