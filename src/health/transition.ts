// keepalived's health transitions as one pure step: (state, result) → (state, event?, next delay).
// The runner (runner.ts) owns sockets, timers and concurrency and calls `healthStep` with every
// result; everything that decides up or down lives here, so it is tested table-driven, one result
// at a time, without sockets or sleeps (transition.test.ts).
//
// The rules (keepalived check_api.c / check_data.c / check_http.c epilog):
// - A server starts up, or down with alpha (`initialHealthState`).
// - Up server, attempt fails: retry after delay_before_retry; after retry + 1 consecutive failures
//   it goes down. Before its first result a server needs only one failure ("one failure is enough
//   initially": keepalived sets retry_it = retry at start).
// - Down server: checked every delay_loop, no retries; one success brings it up.
// - After a success (or after going down) the next check is delay_loop later.
// - misc_dynamic weights and FILE_CHECK offsets travel on the up event and, while the server stays
//   up, as weight events when they change (and on the first result, when there is one). A down
//   server's dynamic weight is forgotten. A plain TCP connect of the combined checktype carries no
//   weight: the last full check's stands.
// - ldirectord's combined checktype (connectChecksBetween N): after a full check passes, the next
//   N checks are plain TCP connects; a failed attempt makes the next check a full one again.
// - omega: when the server is removed (or the runner stops) while up, it is reported down
//   (`removalEvent`).

import type { CheckResult } from "./checker.ts";
import type { CheckerCommon } from "./checker-spec.ts";

export interface HealthTransition {
  type: "up" | "down";
  id: string;
  reason: string;
  /** Clock time of the transition (ms). */
  at: number;
  /** misc_dynamic weight to use (up only; absent = the configured weight). */
  weight?: number;
  /** FILE_CHECK offset to add to the configured weight (up only; absent = none). */
  weightOffset?: number;
}

export interface HealthWeightChange {
  type: "weight";
  id: string;
  reason: string;
  at: number;
  /** New misc_dynamic weight; absent = back to the configured weight. */
  weight?: number;
  /** New FILE_CHECK offset; absent = none. */
  weightOffset?: number;
}

export type HealthEvent = HealthTransition | HealthWeightChange;

/** What the transitions remember about one real server between results. */
export interface HealthState {
  up: boolean;
  /** A result has been seen (before it, one failure takes an up server down). */
  hasRun: boolean;
  /** Consecutive failures (reset by a success). */
  failures: number;
  weight: number | undefined;
  weightOffset: number | undefined;
  /** Plain TCP connects left before the next full check (combined checktype). */
  connectsLeft: number;
}

/** The spec fields the transitions read. */
export type HealthRules = Pick<
  CheckerCommon,
  "retry" | "delayLoopMs" | "delayBeforeRetryMs" | "alpha" | "omega" | "connectChecksBetween"
>;

/** One result and what it is about. */
export interface HealthInput {
  result: CheckResult;
  /** The attempt was the combined checktype's plain TCP connect, not the full check. */
  connectOnly: boolean;
  /** The real server's id (carried on the event). */
  id: string;
  /** Clock time of the result (carried on the event). */
  now: number;
}

export interface HealthOutcome {
  state: HealthState;
  event?: HealthEvent;
  /** Which pause comes before the next attempt; the runner adds its jitter to delay_loop. */
  next: "delay_loop" | "delay_before_retry";
  /** That pause, in ms, before jitter. */
  delayMs: number;
}

/** A server before its first result: up, or down with alpha. */
export function initialHealthState(rules: Pick<HealthRules, "alpha">): HealthState {
  return { up: !rules.alpha, hasRun: false, failures: 0, weight: undefined, weightOffset: undefined, connectsLeft: 0 };
}

/** Whether the next attempt is the combined checktype's plain TCP connect. */
export function nextIsConnectOnly(state: HealthState, rules: HealthRules): boolean {
  return rules.connectChecksBetween !== undefined && state.connectsLeft > 0;
}

/** Apply one result: keepalived's rules. Pure: the input state is not changed. */
export function healthStep(state: HealthState, input: HealthInput, rules: HealthRules): HealthOutcome {
  const { result, connectOnly, id, now } = input;
  const firstResult = !state.hasRun;
  const s: HealthState = { ...state, hasRun: true, connectsLeft: nextConnects(state, rules, result.ok, connectOnly) };
  const loop = (event?: HealthEvent): HealthOutcome =>
    event
      ? { state: s, event, next: "delay_loop", delayMs: rules.delayLoopMs }
      : { state: s, next: "delay_loop", delayMs: rules.delayLoopMs };
  if (result.ok) {
    s.failures = 0;
    const weight = connectOnly ? state.weight : result.weight;
    const weightOffset = connectOnly ? state.weightOffset : result.weightOffset;
    const changed =
      weight !== state.weight ||
      weightOffset !== state.weightOffset ||
      (firstResult && (weight ?? weightOffset) !== undefined);
    if (state.up && !changed) return loop();
    s.weight = weight;
    s.weightOffset = weightOffset;
    const event: HealthEvent = { type: state.up ? "weight" : "up", id, reason: result.reason, at: now };
    if (weight !== undefined) event.weight = weight;
    if (weightOffset !== undefined) event.weightOffset = weightOffset;
    s.up = true;
    return loop(event);
  }
  s.failures = state.failures + 1;
  if (!state.up) return loop();
  if (firstResult || s.failures > rules.retry) {
    s.up = false;
    s.weight = undefined;
    s.weightOffset = undefined;
    const reason = s.failures > 1 ? `${result.reason} (${s.failures} failures)` : result.reason;
    return loop({ type: "down", id, reason, at: now });
  }
  return { state: s, next: "delay_before_retry", delayMs: rules.delayBeforeRetryMs };
}

/** The combined checktype's count of plain connects after this result. */
function nextConnects(state: HealthState, rules: HealthRules, ok: boolean, connectOnly: boolean): number {
  if (rules.connectChecksBetween === undefined) return state.connectsLeft;
  if (!ok) return 0;
  return connectOnly ? state.connectsLeft - 1 : rules.connectChecksBetween;
}

/** The event a removal (or stop) reports: down with omega when the server is up; else none. */
export function removalEvent(
  state: HealthState,
  rules: Pick<HealthRules, "omega">,
  id: string,
  why: string,
  now: number,
): HealthTransition | undefined {
  return rules.omega && state.up ? { type: "down", id, reason: `${why} (omega)`, at: now } : undefined;
}
