// TCP_CHECK: the real server is healthy when a TCP connection to it completes within the time
// limit; the connection is closed at once, as keepalived's check_tcp does. ldirectord's simpletcp
// negotiate adds an optional request and a regular expression the answer must match.

import net from "node:net";
import { getSystemErrorName } from "node:util";
import { abortReason, type Checker, type CheckResult, type CheckTarget, elapsedMs, onAbort } from "../checker.ts";
import type { TcpCheckSpec } from "../checker-spec.ts";
import { describeSocketError, StreamSession } from "./stream.ts";

/**
 * libuv's TCP handle as Node's net module uses it underneath (process.binding("tcp_wrap")). A
 * plain connect-and-close through net.Socket costs ~70 µs of JavaScript per check (stream and
 * event machinery built for data we never read); driving the handle directly costs ~15 µs, which
 * is what lets one process check 10,000 real servers a second. It is an internal interface, so it
 * is probed once and every failure to find or use it falls back on net.connect.
 */
interface TcpHandle {
  bind(address: string, port: number): number;
  bind6(address: string, port: number, flags: number): number;
  connect(req: ConnectReq, address: string, port: number): number;
  connect6(req: ConnectReq, address: string, port: number): number;
  close(cb?: () => void): void;
}
interface ConnectReq {
  oncomplete: (status: number) => void;
  address: string;
  port: number;
}
interface TcpWrapBinding {
  TCP: new (type: number) => TcpHandle;
  TCPConnectWrap: new () => ConnectReq;
  constants: { SOCKET: number };
}

function loadTcpWrap(): TcpWrapBinding | undefined {
  if (process.env.TVS_HEALTH_NO_TCP_WRAP === "1") return undefined;
  try {
    const b = (process as unknown as { binding(name: string): unknown }).binding("tcp_wrap") as Partial<TcpWrapBinding>;
    if (
      typeof b.TCP === "function" &&
      typeof b.TCPConnectWrap === "function" &&
      typeof b.constants?.SOCKET === "number"
    )
      return b as TcpWrapBinding;
  } catch {
    // Not available on this runtime: use net.connect.
  }
  return undefined;
}

const tcpWrap = loadTcpWrap();

/** Which connect path this process uses ("tcp_wrap" or "net"), for benchmarks and status. */
export const TCP_CONNECT_PATH: "tcp_wrap" | "net" = tcpWrap ? "tcp_wrap" : "net";

function errnoText(status: number): string {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    return `Error ${status}`;
  }
  return describeSocketError({ code, message: code });
}

/** Connect and close through the TCP handle directly; undefined when the handle path cannot start. */
function wrapConnect(b: TcpWrapBinding, target: CheckTarget, signal: AbortSignal): Promise<CheckResult> | undefined {
  const v6 = target.address.includes(":");
  let handle: TcpHandle;
  try {
    handle = new b.TCP(b.constants.SOCKET);
  } catch {
    return undefined;
  }
  const start = performance.now();
  const immediate = (reason: string): Promise<CheckResult> => {
    handle.close();
    return Promise.resolve({ ok: false, reason, latencyMs: elapsedMs(start) });
  };
  if (target.bindTo !== undefined || target.bindPort !== undefined) {
    const local = target.bindTo ?? (v6 ? "::" : "0.0.0.0");
    const err = v6 ? handle.bind6(local, target.bindPort ?? 0, 0) : handle.bind(local, target.bindPort ?? 0);
    if (err) return immediate(errnoText(err));
  }
  return new Promise((resolve) => {
    let done = false;
    let unhook: (() => void) | undefined;
    const finish = (ok: boolean, reason: string) => {
      if (done) return;
      done = true;
      unhook?.();
      handle.close();
      resolve({ ok, reason, latencyMs: elapsedMs(start) });
    };
    const req = new b.TCPConnectWrap();
    req.oncomplete = (status: number) => finish(status === 0, status === 0 ? "Connected" : errnoText(status));
    req.address = target.address;
    req.port = target.port;
    const err = v6
      ? handle.connect6(req, target.address, target.port)
      : handle.connect(req, target.address, target.port);
    if (err) {
      finish(false, errnoText(err));
      return;
    }
    unhook = onAbort(signal, () => finish(false, abortReason(signal)));
  });
}

/** Connect and close through net.Socket (the portable path). */
export function netConnect(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
  const start = performance.now();
  return new Promise((resolve) => {
    const opts: net.TcpNetConnectOpts = { host: target.address, port: target.port };
    if (target.bindTo !== undefined) opts.localAddress = target.bindTo;
    if (target.bindPort !== undefined) opts.localPort = target.bindPort;
    let socket: net.Socket;
    const finish = (ok: boolean, reason: string) => {
      signal.removeEventListener("abort", onAbort);
      socket.removeAllListeners("connect");
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      socket.destroy();
      resolve({ ok, reason, latencyMs: elapsedMs(start) });
    };
    const onAbort = () => finish(false, abortReason(signal));
    try {
      socket = net.connect(opts);
    } catch (e) {
      resolve({ ok: false, reason: describeSocketError(e), latencyMs: elapsedMs(start) });
      return;
    }
    socket.once("connect", () => finish(true, "Connected"));
    socket.once("error", (e) => finish(false, describeSocketError(e)));
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Connect and close: the lean path used for thousands of checks a second. */
export function tcpConnect(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
  if (signal.aborted) return Promise.resolve({ ok: false, reason: abortReason(signal), latencyMs: 0 });
  if (tcpWrap && net.isIP(target.address) !== 0) {
    const p = wrapConnect(tcpWrap, target, signal);
    if (p) return p;
  }
  return netConnect(target, signal);
}

export function createTcpChecker(spec: TcpCheckSpec): Checker {
  const send = spec.send;
  const expect = spec.expectRegex !== undefined ? new RegExp(spec.expectRegex) : undefined;
  if (send === undefined && expect === undefined) return { type: "TCP_CHECK", check: tcpConnect };
  return {
    type: "TCP_CHECK",
    async check(target, signal) {
      const start = performance.now();
      let session: StreamSession | undefined;
      try {
        session = await StreamSession.open(target, signal);
        if (send !== undefined) await session.write(send);
        if (!expect) return { ok: true, reason: "Connected and sent the request", latencyMs: elapsedMs(start) };
        // Read until the answer matches, the peer closes, or the time limit aborts the attempt.
        let seen = "";
        try {
          await session.readUntil((buf) => {
            seen = buf.toString("latin1");
            return expect.test(seen) ? buf.length : undefined;
          }, "a matching answer");
        } catch (e) {
          const why = e instanceof Error ? e.message : String(e);
          return { ok: false, reason: `No answer matching /${expect.source}/ (${why})`, latencyMs: elapsedMs(start) };
        }
        return { ok: true, reason: `Answer matches /${expect.source}/`, latencyMs: elapsedMs(start) };
      } catch (e) {
        return { ok: false, reason: e instanceof Error ? e.message : String(e), latencyMs: elapsedMs(start) };
      } finally {
        session?.close();
      }
    },
  };
}
