// A VIP's listening socket as a bare libuv server handle (libuv-tcp.ts): every accepted connection
// is handed over as a handle, never wrapped in a net.Socket, so the fast relay (handle-relay.ts)
// starts from it. The socket is either bound here (one process: libuv's bind sets SO_REUSEADDR,
// as net.Server's does) or a SO_REUSEPORT descriptor the native addon made for this worker.
//
// TCP_NODELAY is set on the listening socket: Linux copies it to every socket accepted from it,
// which saves one system call per connection.

import { closeSync } from "node:fs";
import { isIPv6 } from "node:net";
import type { TcpBinding, TcpHandle } from "./libuv-tcp.ts";
import { uvError } from "./libuv-tcp.ts";

/** What net.Server.listen uses. */
export const LISTEN_BACKLOG = 511;

export class HandleListener {
  readonly #handle: TcpHandle;
  #listening = false;

  private constructor(handle: TcpHandle) {
    this.#handle = handle;
  }

  /**
   * Listen on addr:port, or on `fd` when given (already bound, SO_REUSEPORT). Throws an Error
   * whose code is the system's (EADDRINUSE, EADDRNOTAVAIL, ...), with nothing left open (a given
   * descriptor is closed too).
   */
  static listen(
    uv: TcpBinding,
    addr: string,
    port: number,
    onConnection: (client: TcpHandle) => void,
    fd?: number,
  ): HandleListener {
    const h = uv.newServer();
    const fail = (rc: number, what: string): never => {
      h.close();
      throw uvError(rc, what);
    };
    let rc = fd !== undefined ? h.open(fd) : isIPv6(addr) ? h.bind6(addr, port, 0) : h.bind(addr, port);
    if (rc !== 0 && fd !== undefined) {
      // The handle did not take the descriptor (it closes only what it opened): close it here.
      closeQuietly(fd);
      fail(rc, "open");
    }
    if (rc !== 0) fail(rc, "bind");
    h.setNoDelay(true);
    h.onconnection = (status, client) => {
      if (status === 0 && client) onConnection(client);
    };
    rc = h.listen(LISTEN_BACKLOG);
    if (rc !== 0) fail(rc, "listen");
    const l = new HandleListener(h);
    l.#listening = true;
    return l;
  }

  get listening(): boolean {
    return this.#listening;
  }

  close(cb?: () => void): void {
    if (!this.#listening) {
      cb?.();
      return;
    }
    this.#listening = false;
    this.#handle.onconnection = () => {};
    this.#handle.close(cb);
  }
}

/** Close a descriptor the handle did not take; one that is already gone is no error. */
function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}
