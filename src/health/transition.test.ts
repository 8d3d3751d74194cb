// keepalived's health transitions, one result at a time, without sockets or sleeps: each case is
// a spec (retry, alpha, combined checktype), a sequence of results, and the events and next delays
// expected after each result.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { CheckResult } from "./checker.ts";
import {
  type HealthRules,
  type HealthState,
  healthStep,
  initialHealthState,
  nextIsConnectOnly,
  removalEvent,
} from "./transition.ts";

const RULES: HealthRules = { retry: 2, delayLoopMs: 6000, delayBeforeRetryMs: 1000, alpha: false, omega: false };

const ok = (reason = "Connected", extra: Partial<CheckResult> = {}): CheckResult => ({
  ok: true,
  reason,
  latencyMs: 1,
  ...extra,
});
const bad = (reason = "Connection refused"): CheckResult => ({ ok: false, reason, latencyMs: 1 });

/** After each result: the event ("-" for none, else "up", "down: reason", "weight=N") and the pause. */
type Expect = [event: string, next: "loop" | "retry"];

function describeEvent(e: ReturnType<typeof healthStep>["event"]): string {
  if (!e) return "-";
  if (e.type === "down") return `down: ${e.reason}`;
  const w = [
    e.weight !== undefined ? `weight=${e.weight}` : "",
    e.weightOffset !== undefined ? `offset=${e.weightOffset}` : "",
  ]
    .filter(Boolean)
    .join(" ");
  return e.type === "up" ? (w ? `up ${w}` : "up") : `weight ${w || "reset"}`;
}

function run(
  rules: HealthRules,
  results: readonly CheckResult[],
  start?: HealthState,
): { got: Expect[]; state: HealthState } {
  let state = start ?? initialHealthState(rules);
  const got: Expect[] = [];
  results.forEach((result, i) => {
    const before = JSON.stringify(state);
    const out = healthStep(
      state,
      { result, connectOnly: nextIsConnectOnly(state, rules), id: "rs1", now: i * 10 },
      rules,
    );
    assert.equal(JSON.stringify(state), before, "the step does not change its input state");
    if (out.event) {
      assert.equal(out.event.id, "rs1");
      assert.equal(out.event.at, i * 10);
    }
    assert.equal(out.delayMs, out.next === "delay_loop" ? rules.delayLoopMs : rules.delayBeforeRetryMs);
    got.push([describeEvent(out.event), out.next === "delay_loop" ? "loop" : "retry"]);
    state = out.state;
  });
  return { got, state };
}

const CASES: { name: string; rules?: Partial<HealthRules>; results: CheckResult[]; expect: Expect[] }[] = [
  {
    name: "an up server stays up on success: no event, next check after delay_loop",
    results: [ok(), ok()],
    expect: [
      ["-", "loop"],
      ["-", "loop"],
    ],
  },
  {
    name: "the first result needs only one failure to take an up server down",
    results: [bad()],
    expect: [["down: Connection refused", "loop"]],
  },
  {
    name: "after a first success, retry + 1 consecutive failures take it down, retried after delay_before_retry",
    results: [ok(), bad(), bad(), bad()],
    expect: [
      ["-", "loop"],
      ["-", "retry"],
      ["-", "retry"],
      ["down: Connection refused (3 failures)", "loop"],
    ],
  },
  {
    name: "a success between failures resets the count",
    results: [ok(), bad(), bad(), ok(), bad(), bad()],
    expect: [
      ["-", "loop"],
      ["-", "retry"],
      ["-", "retry"],
      ["-", "loop"],
      ["-", "retry"],
      ["-", "retry"],
    ],
  },
  {
    name: "retry 0: one failure after the first result is enough",
    rules: { retry: 0 },
    results: [ok(), bad("Timed out")],
    expect: [
      ["-", "loop"],
      ["down: Timed out", "loop"],
    ],
  },
  {
    name: "a down server is not retried, and one success brings it up",
    results: [bad(), bad(), ok()],
    expect: [
      ["down: Connection refused", "loop"],
      ["-", "loop"],
      ["up", "loop"],
    ],
  },
  {
    name: "alpha: starts down, one success brings it up, failures before that are silent",
    rules: { alpha: true },
    results: [bad(), ok()],
    expect: [
      ["-", "loop"],
      ["up", "loop"],
    ],
  },
  {
    name: "misc_dynamic: the first result's weight is reported even though the server was already up",
    results: [ok("exit 5", { weight: 5 }), ok("exit 5", { weight: 5 }), ok("exit 7", { weight: 7 }), ok("exit 0")],
    expect: [
      ["weight weight=5", "loop"],
      ["-", "loop"],
      ["weight weight=7", "loop"],
      ["weight reset", "loop"],
    ],
  },
  {
    name: "FILE_CHECK offsets travel on the up event, and a down server's offset is forgotten",
    rules: { alpha: true, retry: 0 },
    results: [ok("file", { weightOffset: -3 }), bad(), ok("file")],
    expect: [
      ["up offset=-3", "loop"],
      ["down: Connection refused", "loop"],
      ["up", "loop"],
    ],
  },
];

for (const c of CASES) {
  test(`health step: ${c.name}`, () => {
    assert.deepEqual(run({ ...RULES, ...c.rules }, c.results).got, c.expect);
  });
}

test("health step: the combined checktype runs N plain connects after a full check, and a full one after a failure", () => {
  const rules: HealthRules = { ...RULES, connectChecksBetween: 2 };
  let state = initialHealthState(rules);
  const kinds: string[] = [];
  const feed = (result: CheckResult) => {
    const connectOnly = nextIsConnectOnly(state, rules);
    kinds.push(connectOnly ? "connect" : "full");
    state = healthStep(state, { result, connectOnly, id: "rs1", now: 0 }, rules).state;
  };
  for (const r of [ok(), ok(), ok(), ok(), bad(), ok(), ok()]) feed(r);
  assert.deepEqual(kinds, ["full", "connect", "connect", "full", "connect", "full", "connect"]);
});

test("health step: a plain connect keeps the last full check's dynamic weight", () => {
  const rules: HealthRules = { ...RULES, connectChecksBetween: 1 };
  const after = healthStep(
    initialHealthState(rules),
    { result: ok("exit 4", { weight: 4 }), connectOnly: false, id: "rs1", now: 0 },
    rules,
  );
  const connect = healthStep(after.state, { result: ok(), connectOnly: true, id: "rs1", now: 1 }, rules);
  assert.equal(connect.event, undefined);
  assert.equal(connect.state.weight, 4);
});

test("omega: a removal reports an up server down, and nothing for a down one or without omega", () => {
  const up = initialHealthState({ alpha: false });
  assert.deepEqual(removalEvent(up, { omega: true }, "rs1", "Removed", 5), {
    type: "down",
    id: "rs1",
    reason: "Removed (omega)",
    at: 5,
  });
  assert.equal(removalEvent(up, { omega: false }, "rs1", "Removed", 5), undefined);
  assert.equal(removalEvent(initialHealthState({ alpha: true }), { omega: true }, "rs1", "Stopping", 5), undefined);
});
