// The health-check runner: owns, for every real server, when its checker runs (delay_loop,
// warmup, retry, delay_before_retry), bounds every attempt (connect_timeout / misc_timeout), turns
// results into up/down transitions with keepalived's rules (transition.ts), and reports only
// changes through one callback. It never touches core: the daemon applies the events.
//
// The transition rules (retry, alpha/omega, the first result, weight changes, the combined
// checktype) are the pure step of transition.ts; this file applies its outcome: the event, the
// status fields and the time of the next attempt.
//
// Scheduling: the first check comes after a random delay in [0, warmup] (keepalived's warmup,
// default delay_loop), later ones delay_loop after the previous result plus a small random jitter
// (up to 1% of delay_loop, at most 50 ms) so servers checked in step drift apart, or
// delay_before_retry after a failure that is retried. At most `maxConcurrent` attempts are in
// flight; the rest wait in a FIFO queue (wait-queue.ts: removing a server from it is O(1)), so a
// burst never opens thousands of sockets at once and a hung server only holds one slot until its
// own time limit.
//
// Cost: this runs 10,000 checks a second in a fraction of a core, so nothing per check allocates
// a timer or a closure. Every server's two deadlines (next check, time limit of the attempt in
// flight) live in one DeadlineHeap driven by a single timer armed for the earliest; a plain TCP
// connect (TCP_CHECK, and the combined checktype's connects) runs on a callback path with one
// callback made per server when it is added: the ConnectProber from createProber (tvsd passes the
// native addon's batch prober), else tcp.ts's startConnect (a libuv TCP handle each); other
// checkers go through their promise and an AbortSignal. The timer wakes at most every timerSlackMs (5 ms): with thousands of
// deadlines a second each wake then runs a batch instead of one check, and a deadline is at most
// 5 ms late (keepalived adds up to 1% of delay_loop of jitter anyway). A time limit that expires
// aborts one event-loop turn late (setImmediate runs after the poll phase): when the loop is
// behind, a reply already waiting in the poll phase wins over a deadline that only looks past
// because the loop was busy.

import type { Clock } from "../core/clock.ts";
import {
  abortAttempt,
  attemptTimeoutMs,
  type Checker,
  type CheckResult,
  type CheckTarget,
  CheckTimeoutError,
  checkTarget,
  elapsedMs,
  managedAbortController,
  timeoutReason,
} from "./checker.ts";
import type { CheckerSpec } from "./checker-spec.ts";
import { type ConnectAttempt, type ConnectDone, errnoText, startConnect } from "./checkers/tcp.ts";
import { createChecker as defaultCreateChecker } from "./create-checker.ts";
import { DeadlineHeap } from "./deadline-heap.ts";
import {
  type HealthEvent,
  type HealthState,
  healthStep,
  initialHealthState,
  nextIsConnectOnly,
  removalEvent,
} from "./transition.ts";
import { WaitQueue } from "./wait-queue.ts";

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

/**
 * Where the runner gets its timer; tests may pass their own together with a clock that agrees
 * with it. The runner keeps at most one timer armed.
 */
export interface TimerSource {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * A batch engine for plain TCP connects (the daemon passes the native addon's TcpProber,
 * src/platform/tcp-prober.ts). start() returns a ticket (>= 0) and later calls `done(errno)` once
 * (0 = connected), never from inside start(); or returns -errno when the connect failed at once;
 * or throws when it cannot take this target (the runner then uses its own connect path).
 * cancel(ticket) closes a connect in flight; no callback follows.
 */
export interface ConnectProber {
  start(target: CheckTarget, done: (errno: number) => void): number;
  cancel(ticket: number): void;
  /** Release the engine (the runner calls it on stop()). */
  close?(): void;
}

export interface HealthRunnerOptions {
  onEvent: (event: HealthEvent) => void;
  /** Every attempt's result, as it arrives (metrics, benchmarks); exceptions are ignored. */
  onResult?: (id: string, result: CheckResult) => void;
  clock?: Clock;
  timers?: TimerSource;
  /** Uniform [0, 1) source for warmup and jitter. */
  random?: () => number;
  /** Most attempts in flight at once (default 1024). */
  maxConcurrent?: number;
  /** Add the small random jitter to delay_loop (default true). */
  jitter?: boolean;
  /**
   * The timer wakes at most once per this many ms (default 5), running everything due by then, so
   * a deadline runs at most this late; 0 = every deadline at its exact time.
   */
  timerSlackMs?: number;
  /** Checker factory (default: the built-in checkers). */
  createChecker?: (spec: CheckerSpec) => Checker;
  /**
   * Makes the engine for plain TCP connects, called once at the first plain connect (undefined =
   * none); without one, or when it returns none, tcp.ts's startConnect (a libuv handle each).
   */
  createProber?: () => ConnectProber | undefined;
}

/** EMFILE, ENFILE, ENOBUFS, ENOMEM: errors of this host, not of the server probed. */
const LOCAL_ERRNOS = new Set([24, 23, 105, 12]);

const realTimers: TimerSource = {
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

const monotonic: Clock = { now: () => performance.now() };

/** How often at most the runner's timer wakes (ms): at 10,000 checks a second, ~200 wakes instead of ~1,000. */
const DEFAULT_TIMER_SLACK_MS = 5;

/** Placeholders until an entry's own completion callbacks are made. */
const notYet: ConnectDone = () => {};
const notYetProbe = (_errno: number): void => {};

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
  /** Index in the runner's slot table; its heap items are 2·slot (next check) and 2·slot+1 (time limit). */
  slot: number;
  queued: boolean;
  /** An attempt is in flight; the fields below describe it. */
  inFlight: boolean;
  /** Counts attempts, so a time limit that fires late knows whether its attempt is still the one running. */
  attemptNo: number;
  connectOnly: boolean;
  timeoutMs: number;
  /** Lean TCP path: the connect in flight. */
  connect: ConnectAttempt | undefined;
  /** Prober path: the ticket in flight (-1 none; -2 failed at start, result on its way). */
  ticket: number;
  /** Prober path: performance.now() at the start of the attempt. */
  startedAt: number;
  /** Prober path: this server's completion callback, made once. */
  onProbe: (errno: number) => void;
  /** Promise path: the controller of the attempt in flight. */
  controller: AbortController | undefined;
  /** Promise path: the reusable controller whose signal attempts get. */
  signalCtl: AbortController | undefined;
  /** Lean TCP path: this server's completion callback, made once. */
  onConnect: ConnectDone;
  removed: boolean;
}

export class HealthRunner {
  readonly #onEvent: (event: HealthEvent) => void;
  readonly #onResult: ((id: string, result: CheckResult) => void) | undefined;
  readonly #clock: Clock;
  readonly #timers: TimerSource;
  readonly #random: () => number;
  readonly #maxConcurrent: number;
  readonly #jitter: boolean;
  readonly #timerSlackMs: number;
  readonly #createChecker: (spec: CheckerSpec) => Checker;
  readonly #createProber: (() => ConnectProber | undefined) | undefined;
  /** The engine once made (null: none to be had). */
  #prober: ConnectProber | null | undefined;
  readonly #entries = new Map<string, Entry>();
  readonly #queue = new WaitQueue<Entry>();
  /** Entries by slot; freed slots are reused. */
  readonly #slots: (Entry | undefined)[] = [];
  readonly #freeSlots: number[] = [];
  readonly #deadlines = new DeadlineHeap();
  /** The single timer, and the deadline it was armed for. */
  #timer: unknown;
  #armedAt = Number.POSITIVE_INFINITY;
  #lastFireAt = Number.NEGATIVE_INFINITY;
  /** Attempts whose time limit passed, aborted one loop turn later (with the attempt number then). */
  #expired: Entry[] = [];
  #expiredNo: number[] = [];
  #running = 0;
  #stopped = false;
  /** Inside the timer's callback, which arms the timer once when it is done. */
  #firing = false;

  constructor(options: HealthRunnerOptions) {
    this.#onEvent = options.onEvent;
    this.#onResult = options.onResult;
    this.#clock = options.clock ?? monotonic;
    this.#timers = options.timers ?? realTimers;
    this.#random = options.random ?? Math.random;
    this.#maxConcurrent = options.maxConcurrent ?? 1024;
    this.#jitter = options.jitter ?? true;
    this.#timerSlackMs = options.timerSlackMs ?? DEFAULT_TIMER_SLACK_MS;
    if (!(this.#timerSlackMs >= 0)) throw new RangeError(`Invalid timerSlackMs "${options.timerSlackMs}"`);
    this.#createChecker = options.createChecker ?? defaultCreateChecker;
    this.#createProber = options.createProber;
    this.#prober = options.createProber ? undefined : null;
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
      slot: this.#freeSlots.pop() ?? this.#slots.length,
      queued: false,
      inFlight: false,
      attemptNo: 0,
      connectOnly: false,
      timeoutMs: 0,
      connect: undefined,
      ticket: -1,
      startedAt: 0,
      onProbe: notYetProbe,
      controller: undefined,
      signalCtl: undefined,
      onConnect: notYet,
      removed: false,
    };
    e.onConnect = (ok, reason, latencyMs) => this.#connected(e, ok, reason, latencyMs);
    e.onProbe = (errno) => this.#probed(e, errno);
    this.#slots[e.slot] = e;
    this.#entries.set(target.id, e);
    this.#schedule(e, this.#random() * Math.max(0, target.spec.warmupMs));
  }

  /**
   * Replace a server's spec (configuration reload): its state, counters and schedule carry over;
   * the next attempt uses the new spec. Unknown ids are added.
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
    this.#arm();
    return true;
  }

  /** Stop everything: timer cleared, attempts aborted; omega servers that are up reported down. */
  stop(): void {
    this.#stopped = true;
    for (const e of [...this.#entries.values()]) this.#drop(e, "Stopping");
    this.#queue.clear();
    this.#deadlines.clear();
    this.#arm();
    this.#prober?.close?.();
    this.#prober = null;
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
        inFlight: e.inFlight,
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
    this.#deadlines.delete(2 * e.slot);
    this.#deadlines.delete(2 * e.slot + 1);
    this.#slots[e.slot] = undefined;
    this.#freeSlots.push(e.slot);
    if (e.queued) {
      this.#queue.delete(e);
      e.queued = false;
    }
    if (e.connect) e.connect.cancel(why);
    if (e.ticket !== -1) this.#cancelProbe(e, why);
    if (e.controller) abortAttempt(e.controller, new Error(why));
    const event = removalEvent(e.health, e.target.spec, e.target.id, why, this.#clock.now());
    if (event) {
      e.health = { ...e.health, up: false };
      this.#emit(event);
    }
  }

  /** The next attempt of `e` is due `delayMs` from now. */
  #schedule(e: Entry, delayMs: number): void {
    if (e.removed) return;
    this.#deadlines.set(2 * e.slot, this.#clock.now() + Math.max(0, delayMs));
    this.#arm();
  }

  /**
   * Keep the one timer armed for the earliest deadline, but never sooner than timerSlackMs after the
   * last wake (an earlier timer stays armed: it re-arms when it fires).
   */
  #arm(): void {
    if (this.#firing) return;
    const at = this.#deadlines.peekTime();
    if (at === Number.POSITIVE_INFINITY) {
      if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#armedAt = Number.POSITIVE_INFINITY;
      return;
    }
    if (this.#timer !== undefined) {
      if (this.#armedAt <= at) return;
      this.#timers.clearTimeout(this.#timer);
    }
    const wake = Math.max(at, this.#lastFireAt + this.#timerSlackMs);
    this.#armedAt = wake;
    this.#timer = this.#timers.setTimeout(this.#onTimer, Math.max(0, wake - this.#clock.now()));
  }

  /**
   * The timer fired: run everything due. The deadline it was armed for counts as due even when the
   * clock reads a hair earlier (libuv keeps whole milliseconds), so a timer never fires for nothing.
   */
  readonly #onTimer = (): void => {
    this.#timer = undefined;
    const now = Math.max(this.#clock.now(), this.#armedAt);
    this.#lastFireAt = now;
    this.#armedAt = Number.POSITIVE_INFINITY;
    const firstExpired = this.#expired.length;
    this.#firing = true;
    try {
      for (let item = this.#deadlines.popDue(now); item !== -1; item = this.#deadlines.popDue(now)) {
        const e = this.#slots[item >> 1];
        if (!e) continue;
        if ((item & 1) === 0) this.#ready(e);
        else if (e.inFlight) {
          this.#expired.push(e);
          this.#expiredNo.push(e.attemptNo);
        }
      }
    } finally {
      this.#firing = false;
    }
    if (firstExpired === 0 && this.#expired.length > 0) setImmediate(this.#expire);
    this.#arm();
  };

  /** One loop turn after their deadlines: cut off the attempts that are still the ones running. */
  readonly #expire = (): void => {
    const list = this.#expired;
    const nos = this.#expiredNo;
    this.#expired = [];
    this.#expiredNo = [];
    for (let i = 0; i < list.length; i++) {
      const e = list[i] as Entry;
      if (e.removed || !e.inFlight || e.attemptNo !== nos[i]) continue;
      if (e.connect) e.connect.cancel(timeoutReason(e.timeoutMs));
      else if (e.ticket !== -1) this.#cancelProbe(e, timeoutReason(e.timeoutMs));
      else if (e.controller) abortAttempt(e.controller, new CheckTimeoutError(e.timeoutMs));
    }
  };

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
    e.inFlight = true;
    e.attemptNo++;
    e.connectOnly = connectOnly;
    e.timeoutMs = connectOnly ? spec.connectTimeoutMs : attemptTimeoutMs(spec);
    this.#deadlines.set(2 * e.slot + 1, this.#clock.now() + e.timeoutMs);
    this.#arm();
    if (connectOnly || e.checker.plainConnect) {
      if (this.#prober === undefined) this.#prober = this.#makeProber();
      if (this.#prober && this.#probe(e)) return;
      e.connect = startConnect(e.checkTarget, e.onConnect);
      return;
    }
    // One controller per server, reused until something aborts it (a timeout or a removal): most
    // attempts end normally and the checkers remove their listeners, so nothing accumulates.
    if (!e.signalCtl || e.signalCtl.signal.aborted) e.signalCtl = managedAbortController();
    const ctl = e.signalCtl;
    e.controller = ctl;
    let attempt: Promise<CheckResult>;
    try {
      attempt = e.checker.check(e.checkTarget, ctl.signal);
    } catch (err) {
      attempt = Promise.reject(err);
    }
    attempt.then(
      (result) => this.#finish(e, result),
      (err: unknown) =>
        this.#finish(e, {
          ok: false,
          reason: `Checker error: ${err instanceof Error ? err.message : String(err)}`,
          latencyMs: 0,
        }),
    );
  }

  #makeProber(): ConnectProber | null {
    try {
      return this.#createProber?.() ?? null;
    } catch {
      return null;
    }
  }

  /** Start a plain connect on the prober; false when it cannot take this target. */
  #probe(e: Entry): boolean {
    let ticket: number;
    e.startedAt = performance.now();
    try {
      ticket = (this.#prober as ConnectProber).start(e.checkTarget, e.onProbe);
    } catch {
      return false;
    }
    if (ticket >= 0) {
      e.ticket = ticket;
      return true;
    }
    // Failed at once (-errno): report it from a microtask, as every other path reports. A
    // failure of this host (out of descriptors, buffers or memory) says nothing about the server:
    // as keepalived's TCP_CHECK does when it cannot make a socket, the attempt is dropped and the
    // next one comes after delay_loop, with no failure counted (counting it would take healthy
    // servers out exactly when the director is busiest).
    e.ticket = -2;
    if (LOCAL_ERRNOS.has(-ticket)) queueMicrotask(() => this.#unprobed(e));
    else queueMicrotask(() => this.#probed(e, -ticket));
    return true;
  }

  /** A probe this host could not start (LOCAL_ERRNOS): no result, the next attempt after delay_loop. */
  #unprobed(e: Entry): void {
    if (e.ticket === -1 || e.removed) return;
    e.ticket = -1;
    e.inFlight = false;
    e.controller = undefined;
    this.#running--;
    this.#deadlines.delete(2 * e.slot + 1);
    this.localFailures++;
    this.#schedule(e, this.#delayLoop(e));
    this.#drain();
  }

  /** Probes dropped because this host could not start them (out of descriptors, buffers, memory). */
  localFailures = 0;

  /** The prober's completion. */
  #probed(e: Entry, errno: number): void {
    if (e.ticket === -1 || e.removed) return;
    e.ticket = -1;
    this.#finish(e, {
      ok: errno === 0,
      reason: errno === 0 ? "Connected" : errnoText(-errno),
      latencyMs: elapsedMs(e.startedAt),
    });
  }

  /** End a prober attempt early (time limit, removal) with `reason`. */
  #cancelProbe(e: Entry, reason: string): void {
    if (e.ticket >= 0) (this.#prober as ConnectProber).cancel(e.ticket);
    e.ticket = -1;
    this.#finish(e, { ok: false, reason, latencyMs: elapsedMs(e.startedAt) });
  }

  /** The lean path's completion (called once per connect attempt). */
  #connected(e: Entry, ok: boolean, reason: string, latencyMs: number): void {
    e.connect = undefined;
    this.#finish(e, { ok, reason, latencyMs });
  }

  #finish(e: Entry, result: CheckResult): void {
    e.inFlight = false;
    e.controller = undefined;
    this.#running--;
    if (!e.removed) {
      this.#deadlines.delete(2 * e.slot + 1);
      if (this.#onResult) {
        try {
          this.#onResult(e.target.id, result);
        } catch {
          // An observer's failure must not stop health checking.
        }
      }
      this.#settle(e, result, e.connectOnly);
    }
    this.#drain();
  }

  #drain(): void {
    if (this.#stopped) return;
    while (this.#running < this.#maxConcurrent && this.#queue.size > 0) {
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
