// The health-check runner: owns, for every real server, when its checker runs (delay_loop,
// warmup, retry, delay_before_retry), bounds every attempt (connect_timeout / misc_timeout through
// an AbortSignal), turns results into up/down transitions with keepalived's rules (transition.ts),
// and reports only changes through one callback. It never touches core: the daemon applies the events.
//
// The transition rules (retry, alpha/omega, the first result, weight changes, the combined
// checktype) are the pure step of transition.ts; this file applies its outcome: the event, the
// status fields and the timer for the next attempt.
//
// Scheduling: each server has one timer at a time; the first check comes after a random delay in
// [0, warmup] (keepalived's warmup, default delay_loop), later ones delay_loop after the previous
// result plus a small random jitter (up to 1% of delay_loop, at most 50 ms) so servers checked in
// step drift apart. At most `maxConcurrent` attempts are in flight; the rest wait in a FIFO queue,
// so a burst never opens thousands of sockets at once and a hung server only holds one slot until
// its own time limit. Nothing per check is synchronous beyond bookkeeping.

import type { Clock } from "../core/clock.ts";
import {
  abortAttempt,
  attemptTimeoutMs,
  type Checker,
  type CheckResult,
  type CheckTarget,
  CheckTimeoutError,
  checkTarget,
  managedAbortController,
} from "./checker.ts";
import type { CheckerSpec } from "./checker-spec.ts";
import { tcpConnect } from "./checkers/tcp.ts";
import { createChecker as defaultCreateChecker } from "./create-checker.ts";
import {
  type HealthEvent,
  type HealthState,
  healthStep,
  initialHealthState,
  nextIsConnectOnly,
  removalEvent,
} from "./transition.ts";

/** A real server to watch, with the checker spec that applies to it. */
export interface HealthTarget {
  /** Caller's key for this real server and checker (unique within the runner). */
  id: string;
  /** The real server's address and port (the spec's connect_ip/connect_port override them). */
  address: string;
  port: number;
  spec: CheckerSpec;
}

export type { HealthEvent, HealthTransition, HealthWeightChange } from "./transition.ts";

/** What `tvs status` shows for one real server. */
export interface HealthStatus {
  id: string;
  address: string;
  port: number;
  checker: CheckerSpec["type"];
  state: "up" | "down";
  /** No result yet (the state is the initial one: up, or down with alpha). */
  pending: boolean;
  /** Consecutive failures so far (reset by a success). */
  failures: number;
  checks: number;
  lastResult?: CheckResult;
  /** Clock time of the last result. */
  lastCheckAt?: number;
  /** Milliseconds since the last transition (or since the server was added). */
  sinceChangeMs: number;
  weight?: number;
  weightOffset?: number;
  inFlight: boolean;
}

/** Where the runner gets its timers; tests may pass their own. */
export interface TimerSource {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface HealthRunnerOptions {
  onEvent: (event: HealthEvent) => void;
  clock?: Clock;
  timers?: TimerSource;
  /** Uniform [0, 1) source for warmup and jitter. */
  random?: () => number;
  /** Most attempts in flight at once (default 1024). */
  maxConcurrent?: number;
  /** Add the small random jitter to delay_loop (default true). */
  jitter?: boolean;
  /** Checker factory (default: the built-in checkers). */
  createChecker?: (spec: CheckerSpec) => Checker;
}

const realTimers: TimerSource = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

const monotonic: Clock = { now: () => performance.now() };

interface Entry {
  target: HealthTarget;
  checkTarget: CheckTarget;
  checker: Checker;
  /** What the transitions remember (transition.ts). */
  health: HealthState;
  checks: number;
  lastResult?: CheckResult;
  lastCheckAt?: number;
  lastChangeAt: number;
  timer: unknown;
  queued: boolean;
  /** The controller of the attempt in flight, if any. */
  controller: AbortController | undefined;
  /** The reusable controller whose signal attempts get. */
  signalCtl: AbortController | undefined;
  removed: boolean;
}

export class HealthRunner {
  readonly #onEvent: (event: HealthEvent) => void;
  readonly #clock: Clock;
  readonly #timers: TimerSource;
  readonly #random: () => number;
  readonly #maxConcurrent: number;
  readonly #jitter: boolean;
  readonly #createChecker: (spec: CheckerSpec) => Checker;
  readonly #entries = new Map<string, Entry>();
  readonly #queue: Entry[] = [];
  #running = 0;
  #stopped = false;

  constructor(options: HealthRunnerOptions) {
    this.#onEvent = options.onEvent;
    this.#clock = options.clock ?? monotonic;
    this.#timers = options.timers ?? realTimers;
    this.#random = options.random ?? Math.random;
    this.#maxConcurrent = options.maxConcurrent ?? 1024;
    this.#jitter = options.jitter ?? true;
    this.#createChecker = options.createChecker ?? defaultCreateChecker;
    if (!(this.#maxConcurrent >= 1)) throw new RangeError(`Invalid maxConcurrent "${options.maxConcurrent}"`);
  }

  /** Attempts in flight now. */
  get running(): number {
    return this.#running;
  }

  get size(): number {
    return this.#entries.size;
  }

  /**
   * Start watching a real server. Its initial state (up, or down with alpha) is what status()
   * reports until the first transition. Throws when the id is taken or the spec cannot be run.
   */
  add(target: HealthTarget): void {
    if (this.#stopped) throw new Error(`Health runner stopped: cannot add "${target.id}"`);
    if (this.#entries.has(target.id)) throw new Error(`Health check "${target.id}" already exists`);
    const e: Entry = {
      target,
      checkTarget: checkTarget(target.spec, target.address, target.port),
      checker: this.#createChecker(target.spec),
      health: initialHealthState(target.spec),
      checks: 0,
      lastChangeAt: this.#clock.now(),
      controller: undefined,
      signalCtl: undefined,
      timer: undefined,
      queued: false,
      removed: false,
    };
    this.#entries.set(target.id, e);
    this.#schedule(e, this.#random() * Math.max(0, target.spec.warmupMs));
  }

  /**
   * Replace a server's spec (configuration reload): its state, counters and timer carry over; the
   * next attempt uses the new spec. Unknown ids are added.
   */
  update(target: HealthTarget): void {
    const e = this.#entries.get(target.id);
    if (!e) {
      this.add(target);
      return;
    }
    if (JSON.stringify(e.target) === JSON.stringify(target)) return;
    e.checker = this.#createChecker(target.spec);
    e.target = target;
    e.checkTarget = checkTarget(target.spec, target.address, target.port);
  }

  /** Stop watching a server; with omega, an up server is reported down first. */
  remove(id: string): boolean {
    const e = this.#entries.get(id);
    if (!e) return false;
    this.#drop(e, "Removed");
    return true;
  }

  /** Stop everything: timers cleared, attempts aborted; omega servers that are up reported down. */
  stop(): void {
    this.#stopped = true;
    for (const e of [...this.#entries.values()]) this.#drop(e, "Stopping");
    this.#queue.length = 0;
  }

  has(id: string): boolean {
    return this.#entries.has(id);
  }

  /** Current state of one server, or undefined. */
  state(id: string): "up" | "down" | undefined {
    const e = this.#entries.get(id);
    return e ? (e.health.up ? "up" : "down") : undefined;
  }

  /** The status listing for `tvs status`, in insertion order. */
  status(): HealthStatus[] {
    const now = this.#clock.now();
    const out: HealthStatus[] = [];
    for (const e of this.#entries.values()) {
      const s: HealthStatus = {
        id: e.target.id,
        address: e.target.address,
        port: e.target.port,
        checker: e.target.spec.type,
        state: e.health.up ? "up" : "down",
        pending: !e.health.hasRun,
        failures: e.health.failures,
        checks: e.checks,
        sinceChangeMs: Math.max(0, now - e.lastChangeAt),
        inFlight: e.controller !== undefined,
      };
      if (e.lastResult) s.lastResult = { ...e.lastResult };
      if (e.lastCheckAt !== undefined) s.lastCheckAt = e.lastCheckAt;
      if (e.health.weight !== undefined) s.weight = e.health.weight;
      if (e.health.weightOffset !== undefined) s.weightOffset = e.health.weightOffset;
      out.push(s);
    }
    return out;
  }

  #drop(e: Entry, why: string): void {
    e.removed = true;
    this.#entries.delete(e.target.id);
    if (e.timer !== undefined) this.#timers.clearTimeout(e.timer);
    e.timer = undefined;
    if (e.controller) abortAttempt(e.controller, new Error(why));
    if (e.queued) {
      const i = this.#queue.indexOf(e);
      if (i !== -1) this.#queue.splice(i, 1);
      e.queued = false;
    }
    const event = removalEvent(e.health, e.target.spec, e.target.id, why, this.#clock.now());
    if (event) {
      e.health = { ...e.health, up: false };
      this.#emit(event);
    }
  }

  #schedule(e: Entry, delayMs: number): void {
    if (e.removed) return;
    e.timer = this.#timers.setTimeout(
      () => {
        e.timer = undefined;
        this.#ready(e);
      },
      Math.max(0, delayMs),
    );
  }

  #ready(e: Entry): void {
    if (e.removed) return;
    if (this.#running < this.#maxConcurrent) this.#start(e);
    else {
      e.queued = true;
      this.#queue.push(e);
    }
  }

  #start(e: Entry): void {
    this.#running++;
    const spec = e.target.spec;
    const connectOnly = nextIsConnectOnly(e.health, spec);
    const timeoutMs = connectOnly ? spec.connectTimeoutMs : attemptTimeoutMs(spec);
    // One controller per server, reused until something aborts it (a timeout or a removal): most
    // attempts end normally and the checkers remove their listeners, so nothing accumulates.
    if (!e.signalCtl || e.signalCtl.signal.aborted) e.signalCtl = managedAbortController();
    const ctl = e.signalCtl;
    e.controller = ctl;
    let finished = false;
    // The time limit aborts one event-loop turn late (setImmediate runs after the poll phase): when
    // the loop is behind, a reply that arrived in time is already waiting in the poll phase, and it
    // should win over a timer that only looks expired because the loop was busy.
    const timer = this.#timers.setTimeout(
      () =>
        setImmediate(() => {
          if (!finished) abortAttempt(ctl, new CheckTimeoutError(timeoutMs));
        }),
      timeoutMs,
    );
    const done = (result: CheckResult) => {
      finished = true;
      this.#timers.clearTimeout(timer);
      e.controller = undefined;
      this.#running--;
      if (!e.removed) this.#settle(e, result, connectOnly);
      this.#drain();
    };
    let attempt: Promise<CheckResult>;
    try {
      attempt = connectOnly ? tcpConnect(e.checkTarget, ctl.signal) : e.checker.check(e.checkTarget, ctl.signal);
    } catch (err) {
      attempt = Promise.reject(err);
    }
    attempt.then(done, (err: unknown) =>
      done({ ok: false, reason: `Checker error: ${err instanceof Error ? err.message : String(err)}`, latencyMs: 0 }),
    );
  }

  #drain(): void {
    while (this.#running < this.#maxConcurrent && this.#queue.length > 0) {
      const next = this.#queue.shift() as Entry;
      next.queued = false;
      if (!next.removed) this.#start(next);
    }
  }

  #delayLoop(e: Entry): number {
    const d = e.target.spec.delayLoopMs;
    return this.#jitter ? d + this.#random() * Math.min(d / 100, 50) : d;
  }

  /** Apply one result through the transition step, then schedule the next attempt. */
  #settle(e: Entry, result: CheckResult, connectOnly: boolean): void {
    const now = this.#clock.now();
    const out = healthStep(e.health, { result, connectOnly, id: e.target.id, now }, e.target.spec);
    e.health = out.state;
    e.checks++;
    e.lastResult = result;
    e.lastCheckAt = now;
    if (out.event && out.event.type !== "weight") e.lastChangeAt = now;
    if (out.event) this.#emit(out.event);
    this.#schedule(e, out.next === "delay_loop" ? this.#delayLoop(e) : out.delayMs);
  }

  #emit(event: HealthEvent): void {
    try {
      this.#onEvent(event);
    } catch {
      // A listener's failure must not stop health checking; the daemon logs in its own listener.
    }
  }
}
