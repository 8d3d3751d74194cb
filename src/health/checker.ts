// The checker interface (docs/architecture.md's plug-in shape): one `check(target, signal)` per attempt that
// always resolves — never rejects — to { ok, reason, latencyMs, weight? }. A checker holds no
// timers of its own beyond the attempt: the caller bounds each attempt with an AbortSignal, and on
// abort the checker closes its socket or kills its process and resolves at once. The runner owns
// intervals, retries and transitions.

import type { CheckerSpec } from "./checker-spec.ts";

/** What one attempt is aimed at: the real server with the spec's overrides applied. */
export interface CheckTarget {
  /** Address connected to (connect_ip, else the real server's). */
  address: string;
  /** Port connected to (connect_port, else the real server's). */
  port: number;
  /** Local source address (bindto). */
  bindTo?: string;
  /** Local source port (bind_port). */
  bindPort?: number;
}

export interface CheckResult {
  ok: boolean;
  /** Why it failed, or what it saw when it passed ("Connected", "HTTP status 200"). */
  reason: string;
  /** Time from the start of the attempt to its result. */
  latencyMs: number;
  /** misc_dynamic: the real server's weight is set to this (absent = its configured weight). */
  weight?: number;
  /** FILE_CHECK: this is added to the real server's configured weight (absent = nothing added). */
  weightOffset?: number;
}

export interface Checker {
  /** Which spec type this checker runs. */
  readonly type: CheckerSpec["type"];
  check(target: CheckTarget, signal: AbortSignal): Promise<CheckResult>;
  /**
   * The check is exactly a TCP connect-and-close (TCP_CHECK without a request or an expected
   * answer): the runner may run it on its lean callback path instead of calling check().
   */
  readonly plainConnect?: boolean;
}

/** The target for a real server at address:port under a spec's connect_ip/connect_port/bindto/bind_port. */
export function checkTarget(spec: CheckerSpec, address: string, port: number): CheckTarget {
  const t: CheckTarget = { address: spec.connectIp ?? address, port: spec.connectPort ?? port };
  if (spec.bindTo !== undefined) t.bindTo = spec.bindTo;
  if (spec.bindPort !== undefined) t.bindPort = spec.bindPort;
  return t;
}

/**
 * How long one attempt of this spec may take: misc_timeout for MISC_CHECK; for HTTP_GET/SSL_GET,
 * connect_timeout per url (keepalived fetches each url over its own connection with its own
 * timeout); otherwise connect_timeout, which here bounds the whole exchange.
 */
export function attemptTimeoutMs(spec: CheckerSpec): number {
  if (spec.type === "MISC_CHECK") return spec.timeoutMs;
  if (spec.type === "HTTP_GET" || spec.type === "SSL_GET") return spec.connectTimeoutMs * Math.max(1, spec.urls.length);
  return spec.connectTimeoutMs;
}

/** The reason an attempt cut off at its time limit reports. */
export function timeoutReason(timeoutMs: number): string {
  return `Timed out after ${timeoutMs} ms`;
}

/** Error raised into an AbortSignal when an attempt overruns its time limit. */
export class CheckTimeoutError extends Error {
  readonly timeoutMs: number;
  constructor(timeoutMs: number) {
    super(timeoutReason(timeoutMs));
    this.name = "CheckTimeoutError";
    this.timeoutMs = timeoutMs;
  }
}

/** Reason text for an aborted attempt. */
export function abortReason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r.message;
  if (typeof r === "string") return r;
  return "Aborted";
}

/**
 * Run one attempt bounded by `timeoutMs` (and by `parent`, when given). The checker sees a signal
 * that aborts with a CheckTimeoutError when the time is up.
 */
export async function checkWithTimeout(
  checker: Checker,
  target: CheckTarget,
  timeoutMs: number,
  parent?: AbortSignal,
): Promise<CheckResult> {
  const ctl = new AbortController();
  let finished = false;
  // One event-loop turn late, so a reply already waiting in the poll phase wins (see runner.ts).
  const timer = setTimeout(
    () =>
      setImmediate(() => {
        if (!finished) ctl.abort(new CheckTimeoutError(timeoutMs));
      }),
    timeoutMs,
  );
  const onParent = () => ctl.abort(parent?.reason);
  if (parent) {
    if (parent.aborted) ctl.abort(parent.reason);
    else parent.addEventListener("abort", onParent, { once: true });
  }
  try {
    return await checker.check(target, ctl.signal);
  } catch (e) {
    // Checkers resolve rather than reject; this keeps a buggy one from breaking the runner.
    return { ok: false, reason: `Checker error: ${e instanceof Error ? e.message : String(e)}`, latencyMs: 0 };
  } finally {
    finished = true;
    clearTimeout(timer);
    parent?.removeEventListener("abort", onParent);
  }
}

/** Milliseconds since `start` (a performance.now() reading), rounded to microseconds. */
export function elapsedMs(start: number): number {
  return Math.round((performance.now() - start) * 1000) / 1000;
}

/*
 * Cheap abort hooks. EventTarget listeners cost a few microseconds to add and remove, which is a
 * fifth of a TCP_CHECK's JavaScript time at thousands of checks a second. The runner owns its
 * signals and aborts them only through abortAttempt(), so for those signals a checker may leave a
 * single plain callback in a WeakMap instead; any other signal gets an ordinary listener.
 */
const managed = new WeakSet<AbortSignal>();
const hooks = new WeakMap<AbortSignal, () => void>();

/** A controller whose signal supports onAbort's cheap path; abort it with abortAttempt(). */
export function managedAbortController(): AbortController {
  const ctl = new AbortController();
  managed.add(ctl.signal);
  return ctl;
}

/** Abort a controller and run the cheap hook left on its signal, if any. */
export function abortAttempt(ctl: AbortController, reason: unknown): void {
  const hook = hooks.get(ctl.signal);
  hooks.delete(ctl.signal);
  ctl.abort(reason);
  hook?.();
}

/** Call `fn` once when `signal` aborts; returns the function that unregisters it. */
export function onAbort(signal: AbortSignal, fn: () => void): () => void {
  if (managed.has(signal) && !hooks.has(signal)) {
    hooks.set(signal, fn);
    return () => {
      if (hooks.get(signal) === fn) hooks.delete(signal);
    };
  }
  signal.addEventListener("abort", fn, { once: true });
  return () => signal.removeEventListener("abort", fn);
}
