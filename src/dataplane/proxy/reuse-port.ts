// One listening socket per tvsd worker (--workers N). node:cluster can only share one listening
// socket among its workers (the primary's round-robin, or one socket every worker accepts from, where
// the kernel wakes whichever process is waiting and one busy worker can take most connections).
// Instead each worker creates its own socket with SO_REUSEPORT through the native addon (Node 20
// has no reusePort option); the kernel then hashes every new connection's 4-tuple onto one of the
// sockets bound to the VIP, so the workers share the accepts evenly and none of them goes through
// the primary. The descriptor is wrapped in libuv's TCP handle and given to net.Server.listen(),
// whose handle form listens in this process without asking the cluster primary.
//
// Without the addon (not built, not Linux) listenReusePort() returns false and the caller falls
// back to node:cluster's shared socket; the plane says which one it uses in its notes.

import type net from "node:net";
import { loadNative, NativeUnavailableError } from "../../platform/native-addon.ts";

/** libuv's TCP handle class (node's tcp_wrap binding), or undefined where this Node has none. */
type TcpHandle = { open(fd: number): number; close(): void };
type TcpWrap = { TCP: new (type: number) => TcpHandle; constants: { SERVER: number } };

let tcpWrap: TcpWrap | undefined | null = null;

function loadTcpWrap(): TcpWrap | undefined {
  if (tcpWrap === null) {
    try {
      tcpWrap = (process as unknown as { binding(name: string): TcpWrap }).binding("tcp_wrap");
    } catch {
      tcpWrap = undefined;
    }
  }
  return tcpWrap;
}

/** The backlog Node's own listen() uses. */
const BACKLOG = 511;

/**
 * A listening SO_REUSEPORT socket of this process on addr:port (a descriptor), or undefined when
 * the native addon is unavailable (nothing was bound: fall back). Throws the bind's error (code
 * EADDRINUSE, EADDRNOTAVAIL, ...). With `reusePort` false the socket is this process's alone
 * (SO_REUSEADDR only, as net.Server binds), for the native relay of a single process.
 */
export function reusePortFd(addr: string, port: number, reusePort = true): number | undefined {
  let native: ReturnType<typeof loadNative>;
  try {
    native = loadNative();
  } catch (err) {
    if (err instanceof NativeUnavailableError) return undefined;
    throw err;
  }
  if (typeof native.listenTcp !== "function") return undefined;
  return native.listenTcp(addr, port, BACKLOG, reusePort);
}

/**
 * A bound SO_REUSEPORT UDP socket of this process on addr:port (a descriptor for dgram's
 * bind({ fd })), or undefined when the addon (or this function of it) is unavailable.
 */
export function reusePortUdpFd(addr: string, port: number): number | undefined {
  let native: ReturnType<typeof loadNative>;
  try {
    native = loadNative();
  } catch (err) {
    if (err instanceof NativeUnavailableError) return undefined;
    throw err;
  }
  if (typeof native.bindUdp !== "function") return undefined;
  return native.bindUdp(addr, port, true);
}

/** Whether every worker can serve UDP on its own SO_REUSEPORT socket. */
export function udpReusePortAvailable(): boolean {
  try {
    return typeof loadNative().bindUdp === "function";
  } catch {
    return false;
  }
}

/**
 * Listen on addr:port with a SO_REUSEPORT socket of this process. Resolves true once listening,
 * false when the addon or the handle class is unavailable (nothing was bound: fall back); rejects
 * with the bind's error (code EADDRINUSE, EADDRNOTAVAIL, ...) like net.Server.listen would.
 */
export function listenReusePort(server: net.Server, addr: string, port: number): Promise<boolean> {
  const wrap = loadTcpWrap();
  if (wrap === undefined) return Promise.resolve(false);
  let fd: number | undefined;
  try {
    fd = reusePortFd(addr, port);
  } catch (err) {
    return Promise.reject(err);
  }
  if (fd === undefined) return Promise.resolve(false);
  const handle = new wrap.TCP(wrap.constants.SERVER);
  const rc = handle.open(fd);
  if (rc !== 0) {
    loadNative().close(fd);
    return Promise.resolve(false);
  }
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      handle.close();
      reject(err);
    };
    server.once("error", onError);
    server.listen(handle as unknown as object, () => {
      server.off("error", onError);
      resolve(true);
    });
  });
}

/** Whether workers get a SO_REUSEPORT socket each (the addon and Node's TCP handle are there). */
export function reusePortAvailable(): boolean {
  try {
    return typeof loadNative().listenTcp === "function" && loadTcpWrap() !== undefined;
  } catch {
    return false;
  }
}
