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

/** The reason text of a failed connect from a libuv status / negative errno ("Connection refused"). */
export function errnoText(status: number): string {
  let code: string;
  try {
    code = getSystemErrorName(status);
  } catch {
    return `Error ${status}`;
  }
  return describeSocketError({ code, message: code });
}

/** How a lean connect attempt reports: whether it connected, why not, and how long it took. */
export type ConnectDone = (ok: boolean, reason: string, latencyMs: number) => void;

/** A connect attempt in flight. cancel() closes it and reports `reason` as its failure at once. */
export interface ConnectAttempt {
  cancel(reason: string): void;
}

/** The handle path's state for one attempt, kept on the connect request itself (no closures). */
interface WrapAttempt extends ConnectReq, ConnectAttempt {
  handle: TcpHandle;
  done: ConnectDone | undefined;
  start: number;
}

function finishWrap(a: WrapAttempt, ok: boolean, reason: string): void {
  const done = a.done;
  if (!done) return;
  a.done = undefined;
  a.handle.close();
  done(ok, reason, elapsedMs(a.start));
}

// Shared by every attempt: libuv calls oncomplete with the request as `this` (and as the third
// argument); a cancelled attempt's late ECANCELED finds `done` already cleared.
function onWrapComplete(this: WrapAttempt, status: number): void {
  finishWrap(this, status === 0, status === 0 ? "Connected" : errnoText(status));
}

function cancelWrap(this: WrapAttempt, reason: string): void {
  finishWrap(this, false, reason);
}

/** Connect and close through the TCP handle directly; undefined when the handle path cannot start. */
function wrapStart(b: TcpWrapBinding, target: CheckTarget, done: ConnectDone): ConnectAttempt | undefined {
  const v6 = target.address.includes(":");
  let handle: TcpHandle;
  try {
    handle = new b.TCP(b.constants.SOCKET);
  } catch {
    return undefined;
  }
  const a = new b.TCPConnectWrap() as WrapAttempt;
  a.handle = handle;
  a.done = done;
  a.start = performance.now();
  a.oncomplete = onWrapComplete;
  a.cancel = cancelWrap;
  a.address = target.address;
  a.port = target.port;
  let err = 0;
  if (target.bindTo !== undefined || target.bindPort !== undefined) {
    const local = target.bindTo ?? (v6 ? "::" : "0.0.0.0");
    err = v6 ? handle.bind6(local, target.bindPort ?? 0, 0) : handle.bind(local, target.bindPort ?? 0);
  }
  if (!err) err = v6 ? handle.connect6(a, target.address, target.port) : handle.connect(a, target.address, target.port);
  if (err) {
    const reason = errnoText(err);
    queueMicrotask(() => finishWrap(a, false, reason));
  }
  return a;
}

/** Connect and close through net.Socket (the portable path); same contract as startConnect. */
export function netStart(target: CheckTarget, done: ConnectDone): ConnectAttempt {
  const start = performance.now();
  const opts: net.TcpNetConnectOpts = { host: target.address, port: target.port };
  if (target.bindTo !== undefined) opts.localAddress = target.bindTo;
  if (target.bindPort !== undefined) opts.localPort = target.bindPort;
  let socket: net.Socket | undefined;
  let finished = false;
  const finish = (ok: boolean, reason: string) => {
    if (finished) return;
    finished = true;
    if (socket) {
      socket.removeAllListeners("connect");
      socket.removeAllListeners("error");
      socket.on("error", () => {});
      socket.destroy();
    }
    done(ok, reason, elapsedMs(start));
  };
  try {
    socket = net.connect(opts);
    socket.once("connect", () => finish(true, "Connected"));
    socket.once("error", (e) => finish(false, describeSocketError(e)));
  } catch (e) {
    const reason = describeSocketError(e);
    queueMicrotask(() => finish(false, reason));
  }
  return { cancel: (reason) => finish(false, reason) };
}

/**
 * Start a connect-and-close on the lean path (the TCP handle, else net.Socket). `done` is called
 * exactly once: never from inside startConnect itself, and synchronously from cancel().
 */
export function startConnect(target: CheckTarget, done: ConnectDone): ConnectAttempt {
  if (tcpWrap && net.isIP(target.address) !== 0) {
    const a = wrapStart(tcpWrap, target, done);
    if (a) return a;
  }
  return netStart(target, done);
}

/** A start function as a promise bounded by `signal`. */
function connectPromise(
  start: (target: CheckTarget, done: ConnectDone) => ConnectAttempt,
  target: CheckTarget,
  signal: AbortSignal,
): Promise<CheckResult> {
  if (signal.aborted) return Promise.resolve({ ok: false, reason: abortReason(signal), latencyMs: 0 });
  return new Promise((resolve) => {
    let unhook: (() => void) | undefined;
    const attempt = start(target, (ok, reason, latencyMs) => {
      unhook?.();
      resolve({ ok, reason, latencyMs });
    });
    unhook = onAbort(signal, () => attempt.cancel(abortReason(signal)));
  });
}

/** Connect and close through net.Socket (the portable path). */
export function netConnect(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
  return connectPromise(netStart, target, signal);
}

/** Connect and close: the lean path, as a checker's promise. */
export function tcpConnect(target: CheckTarget, signal: AbortSignal): Promise<CheckResult> {
  return connectPromise(startConnect, target, signal);
}

export function createTcpChecker(spec: TcpCheckSpec): Checker {
  const send = spec.send;
  const expect = spec.expectRegex !== undefined ? new RegExp(spec.expectRegex) : undefined;
  if (send === undefined && expect === undefined) return { type: "TCP_CHECK", check: tcpConnect, plainConnect: true };
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
