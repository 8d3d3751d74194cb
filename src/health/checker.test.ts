// The checker plumbing: targets with the spec's overrides, per-spec attempt limits, and
// checkWithTimeout turning a checker that throws or hangs into a failed result.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  abortAttempt,
  attemptTimeoutMs,
  type Checker,
  checkTarget,
  checkWithTimeout,
  managedAbortController,
  onAbort,
} from "./checker.ts";
import { type CheckerSpec, checkerCommon } from "./checker-spec.ts";

const tcp: CheckerSpec = { ...checkerCommon("TCP_CHECK", { connectTimeoutMs: 3000 }), type: "TCP_CHECK" };

test("checkTarget applies connect_ip, connect_port, bindto and bind_port", () => {
  assert.deepEqual(checkTarget(tcp, "10.0.0.1", 80), { address: "10.0.0.1", port: 80 });
  assert.deepEqual(
    checkTarget(
      { ...tcp, connectIp: "10.0.0.9", connectPort: 8080, bindTo: "10.0.0.254", bindPort: 4000 },
      "10.0.0.1",
      80,
    ),
    { address: "10.0.0.9", port: 8080, bindTo: "10.0.0.254", bindPort: 4000 },
  );
});

test("attempt limits: misc_timeout, connect_timeout per url, connect_timeout", () => {
  assert.equal(attemptTimeoutMs(tcp), 3000);
  const misc: CheckerSpec = {
    ...checkerCommon("MISC_CHECK"),
    type: "MISC_CHECK",
    path: "/bin/true",
    timeoutMs: 7000,
    dynamic: false,
  };
  assert.equal(attemptTimeoutMs(misc), 7000);
  const url = { path: "/", statusCodes: [{ from: 200, to: 299 }] };
  const http: CheckerSpec = {
    ...checkerCommon("HTTP_GET", { connectTimeoutMs: 2000 }),
    type: "HTTP_GET",
    urls: [url, url, url],
    httpProtocol: "1.0",
    verifyCert: false,
  };
  assert.equal(attemptTimeoutMs(http), 6000);
});

test("checkWithTimeout: a throwing checker fails, a hanging one is cut off with the limit in the reason", async () => {
  const throwing: Checker = { type: "TCP_CHECK", check: () => Promise.reject(new Error("boom")) };
  assert.deepEqual(await checkWithTimeout(throwing, { address: "127.0.0.1", port: 1 }, 100), {
    ok: false,
    reason: "Checker error: boom",
    latencyMs: 0,
  });
  const hanging: Checker = {
    type: "TCP_CHECK",
    check: (_t, signal) =>
      new Promise((resolve) =>
        signal.addEventListener("abort", () =>
          resolve({ ok: false, reason: String((signal.reason as Error).message), latencyMs: 1 }),
        ),
      ),
  };
  const r = await checkWithTimeout(hanging, { address: "127.0.0.1", port: 1 }, 50);
  assert.equal(r.reason, "Timed out after 50 ms");
});

test("onAbort: the cheap hook on managed signals, a listener on others; each fires once, unhooking works", () => {
  const fired: string[] = [];
  const managed = managedAbortController();
  const unhook = onAbort(managed.signal, () => fired.push("a"));
  unhook();
  onAbort(managed.signal, () => fired.push("b"));
  abortAttempt(managed, new Error("limit"));
  abortAttempt(managed, new Error("again"));
  assert.deepEqual(fired, ["b"]);
  assert.equal((managed.signal.reason as Error).message, "limit");
  const plain = new AbortController();
  onAbort(plain.signal, () => fired.push("c"));
  const off = onAbort(plain.signal, () => fired.push("d"));
  off();
  plain.abort();
  assert.deepEqual(fired, ["b", "c"]);
});
