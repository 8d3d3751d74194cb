// A small abortable TCP/TLS conversation for the stream checkers (TCP, HTTP, SSL, SMTP): connect
// with the target's bind options, then read until a condition, write, read to the end. Everything
// rejects with a plain Error naming what went wrong, and an abort destroys the socket at once, so
// a real server that never answers costs nothing after the attempt's time limit.

import net from "node:net";
import tls from "node:tls";
import { abortReason, type CheckTarget } from "../checker.ts";

export interface TlsOptions {
  /** Server name sent in the TLS ClientHello (SNI); absent = none. */
  servername?: string;
  /** Verify the certificate chain (and the name when servername is set). */
  verify: boolean;
}

/** Human text for a socket error ("Connection refused", "Host unreachable", ...). */
export function describeSocketError(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  switch (code) {
    case "ECONNREFUSED":
      return "Connection refused";
    case "ECONNRESET":
      return "Connection reset by peer";
    case "EHOSTUNREACH":
      return "Host unreachable";
    case "ENETUNREACH":
      return "Network unreachable";
    case "EADDRNOTAVAIL":
      return "Cannot bind the source address";
    case "EADDRINUSE":
      return "Source address already in use";
    case "EPIPE":
      return "Connection closed while writing";
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

export class StreamSession {
  readonly socket: net.Socket;
  #chunks: Buffer[] = [];
  #length = 0;
  #ended = false;
  #error: Error | undefined;
  #wake: (() => void) | undefined;
  #signal: AbortSignal;
  #onAbort: () => void;

  private constructor(socket: net.Socket, signal: AbortSignal) {
    this.socket = socket;
    this.#signal = signal;
    this.#onAbort = () => this.#fail(new Error(abortReason(signal)));
    signal.addEventListener("abort", this.#onAbort, { once: true });
    socket.on("data", (d: Buffer) => {
      this.#chunks.push(d);
      this.#length += d.length;
      this.#notify();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#notify();
    });
    socket.on("error", (e) => this.#fail(new Error(describeSocketError(e))));
    socket.on("close", () => {
      this.#ended = true;
      this.#notify();
    });
  }

  /** Connect (and for TLS, finish the handshake). Rejects with the reason on failure or abort. */
  static open(target: CheckTarget, signal: AbortSignal, tlsOptions?: TlsOptions): Promise<StreamSession> {
    return new Promise((resolve, reject) => {
      if (signal.aborted) {
        reject(new Error(abortReason(signal)));
        return;
      }
      const base: net.TcpNetConnectOpts = { host: target.address, port: target.port };
      if (target.bindTo !== undefined) base.localAddress = target.bindTo;
      if (target.bindPort !== undefined) base.localPort = target.bindPort;
      let socket: net.Socket;
      const readyEvent = tlsOptions ? "secureConnect" : "connect";
      try {
        if (tlsOptions) {
          const opts: tls.ConnectionOptions = { ...base, rejectUnauthorized: tlsOptions.verify };
          if (tlsOptions.servername !== undefined) opts.servername = tlsOptions.servername;
          // Without SNI, Node would send none for an IP literal anyway; say so explicitly.
          else opts.servername = "";
          if (!tlsOptions.verify) opts.checkServerIdentity = () => undefined;
          socket = tls.connect(opts);
        } else {
          socket = net.connect(base);
        }
      } catch (e) {
        reject(new Error(describeSocketError(e)));
        return;
      }
      const cleanup = () => {
        socket.off(readyEvent, onReady);
        socket.off("error", onError);
        signal.removeEventListener("abort", onAbort);
      };
      const onReady = () => {
        cleanup();
        resolve(new StreamSession(socket, signal));
      };
      const onError = (e: Error) => {
        cleanup();
        socket.destroy();
        const text = describeSocketError(e);
        reject(new Error(tlsOptions && text === e.message ? `TLS handshake failed: ${text}` : text));
      };
      const onAbort = () => {
        cleanup();
        socket.destroy();
        reject(new Error(abortReason(signal)));
      };
      socket.once(readyEvent, onReady);
      socket.once("error", onError);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  #fail(e: Error): void {
    if (!this.#error) this.#error = e;
    this.socket.destroy();
    this.#notify();
  }

  /** Everything received so far, as one buffer. */
  #buffered(): Buffer {
    if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#length)];
    return this.#chunks[0] ?? Buffer.alloc(0);
  }

  #take(n: number): Buffer {
    const all = this.#buffered();
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.#chunks = rest.length ? [rest] : [];
    this.#length = rest.length;
    return out;
  }

  #waitMore(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }

  /**
   * Read until `complete(buffered)` returns how many bytes make up the message; those are returned
   * and consumed. Rejects when the peer closes first, on error, on abort, or beyond `max` bytes.
   */
  async readUntil(complete: (buf: Buffer) => number | undefined, what: string, max = 65536): Promise<Buffer> {
    for (;;) {
      if (this.#error) throw this.#error;
      const buf = this.#buffered();
      const n = complete(buf);
      if (n !== undefined) return this.#take(n);
      if (buf.length > max) throw new Error(`${what} longer than ${max} bytes`);
      if (this.#ended) throw new Error(`Connection closed before ${what}`);
      await this.#waitMore();
    }
  }

  /** Read one CRLF- (or LF-) terminated line, without the terminator. */
  async readLine(what: string): Promise<string> {
    const raw = await this.readUntil((b) => {
      const i = b.indexOf(10);
      return i === -1 ? undefined : i + 1;
    }, what);
    return raw.toString("latin1").replace(/\r?\n$/, "");
  }

  /** Read until the peer closes (or `max` bytes arrive); returns what arrived. */
  async readToEnd(max: number): Promise<Buffer> {
    for (;;) {
      if (this.#error) throw this.#error;
      if (this.#ended || this.#length >= max) return this.#take(Math.min(this.#length, max));
      await this.#waitMore();
    }
  }

  write(data: string | Buffer): Promise<void> {
    return new Promise((resolve, reject) => {
      if (this.#error) {
        reject(this.#error);
        return;
      }
      this.socket.write(data, (e) => (e ? reject(this.#error ?? new Error(describeSocketError(e))) : resolve()));
    });
  }

  close(): void {
    this.#signal.removeEventListener("abort", this.#onAbort);
    this.socket.destroy();
  }
}
