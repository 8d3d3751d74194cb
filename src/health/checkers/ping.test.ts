// PING_CHECK through the system ping: an echo from 127.0.0.1 passes; the same ping run in a fresh
// network namespace whose loopback is down gets no reply and fails; a missing binary fails with
// its name; the attempt's time limit kills a ping that hangs.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, type PingCheckSpec } from "../checker-spec.ts";
import { createPingChecker, pingArgs } from "./ping.ts";

const spec: PingCheckSpec = { ...checkerCommon("PING_CHECK", { connectTimeoutMs: 2000 }), type: "PING_CHECK" };

function havePing(): boolean {
  try {
    execFileSync("ping", ["-V"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

function script(t: { after(fn: () => void): void }, body: string): string {
  const dir = mkdtempSync(join(tmpdir(), "tvs-ping-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const p = join(dir, "ping-wrapper");
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

test("ping arguments: one echo, numeric, the timeout in whole seconds, bindto as -I", () => {
  assert.deepEqual(pingArgs("10.0.0.1", 1500), ["-4", "-n", "-q", "-c", "1", "-W", "2", "10.0.0.1"]);
  assert.deepEqual(pingArgs("::1", 200, "::1"), ["-6", "-n", "-q", "-c", "1", "-W", "1", "-I", "::1", "::1"]);
});

test("PING_CHECK passes on an echo reply from 127.0.0.1", async (t) => {
  if (!havePing()) {
    t.skip("ping (iputils-ping) is not installed");
    return;
  }
  const r = await checkWithTimeout(createPingChecker(spec), { address: "127.0.0.1", port: 0 }, 3000);
  assert.equal(r.ok, true, r.reason);
  assert.equal(r.reason, "Echo reply");
});

test("PING_CHECK fails when no reply comes (loopback down in a fresh network namespace)", async (t) => {
  if (!havePing()) {
    t.skip("ping (iputils-ping) is not installed");
    return;
  }
  try {
    execFileSync("unshare", ["-n", "true"], { stdio: "ignore" });
  } catch {
    t.skip("cannot create a network namespace here (needs root)");
    return;
  }
  const wrapper = script(t, 'exec unshare -n ping "$@"');
  const r = await checkWithTimeout(createPingChecker(spec, wrapper), { address: "127.0.0.1", port: 0 }, 3000);
  assert.equal(r.ok, false);
});

test("PING_CHECK fails when the binary is missing, and kills a hung ping at the time limit", async (t) => {
  const missing = await checkWithTimeout(
    createPingChecker(spec, "/nonexistent/ping"),
    { address: "127.0.0.1", port: 0 },
    1000,
  );
  assert.equal(missing.ok, false);
  assert.match(missing.reason, /^Cannot run \/nonexistent\/ping/);
  const hung = script(t, "exec sleep 30");
  const r = await checkWithTimeout(createPingChecker(spec, hung), { address: "127.0.0.1", port: 0 }, 200);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "Timed out after 200 ms");
});
