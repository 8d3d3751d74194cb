// MISC_CHECK with scripts written to a temp dir: exit codes with and without misc_dynamic, the
// weights misc_dynamic sets, arguments passed without a shell, a script killed at misc_timeout
// (the whole process group), a missing script, and running as another user.
import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, type MiscCheckSpec } from "../checker-spec.ts";
import { createMiscChecker, splitCommand } from "./misc.ts";

const dir = mkdtempSync(join(tmpdir(), "tvs-misc-"));
chmodSync(dir, 0o777);
test.after(() => rmSync(dir, { recursive: true, force: true }));

function script(name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

const spec = (path: string, over: Partial<MiscCheckSpec> = {}): MiscCheckSpec => ({
  ...checkerCommon("MISC_CHECK"),
  type: "MISC_CHECK",
  path,
  timeoutMs: 2000,
  dynamic: false,
  ...over,
});

const target = { address: "127.0.0.1", port: 80 };
const exitWith = script("exit-with", 'exit "$1"');

test("splitCommand splits on blanks and honours quotes and backslashes", () => {
  assert.deepEqual(splitCommand("/bin/check  -h 10.0.0.1\t-p 80"), ["/bin/check", "-h", "10.0.0.1", "-p", "80"]);
  assert.deepEqual(splitCommand(`/bin/x "a b" 'c "d"' e\\ f ""`), ["/bin/x", "a b", 'c "d"', "e f", ""]);
  assert.throws(() => splitCommand('/bin/x "open'), /Unterminated " quote in misc_path "\/bin\/x "open"/);
});

test("without misc_dynamic only exit 0 passes", async () => {
  for (const [code, ok] of [
    [0, true],
    [1, false],
    [2, false],
    [7, false],
  ] as const) {
    const r = await checkWithTimeout(createMiscChecker(spec(`${exitWith} ${code}`)), target, 2000);
    assert.equal(r.ok, ok, `exit ${code}: ${r.reason}`);
    assert.equal(r.weight, undefined);
    assert.equal(r.reason, `Script exited ${code}`);
  }
});

test("with misc_dynamic, exit 2..255 passes with weight exit-2; 0 keeps the configured weight; 1 fails", async () => {
  for (const [code, ok, weight] of [
    [0, true, undefined],
    [1, false, undefined],
    [2, true, 0],
    [3, true, 1],
    [102, true, 100],
    [255, true, 253],
  ] as const) {
    const r = await checkWithTimeout(createMiscChecker(spec(`${exitWith} ${code}`, { dynamic: true })), target, 2000);
    assert.equal(r.ok, ok, `exit ${code}: ${r.reason}`);
    assert.equal(r.weight, weight, `exit ${code}`);
  }
});

test("arguments reach the script as words, without a shell", async () => {
  const out = join(dir, "args.out");
  const s = script("args", `printf '%s|' "$@" > ${out}`);
  const r = await checkWithTimeout(createMiscChecker(spec(`${s} "two words" $HOME ';' x`)), target, 2000);
  assert.equal(r.ok, true, r.reason);
  assert.equal(readFileSync(out, "utf8"), "two words|$HOME|;|x|");
});

test("a script overrunning misc_timeout fails and its process group is killed", async () => {
  const pidFile = join(dir, "sleeper.pid");
  const s = script("sleeper", `sleep 30 & echo $! > ${pidFile}; wait`);
  const r = await checkWithTimeout(createMiscChecker(spec(s, { timeoutMs: 300 })), target, 300);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "Script timed out after 300 ms, killed");
  const pid = Number(readFileSync(pidFile, "utf8"));
  let alive = true;
  for (let i = 0; i < 300 && alive; i++) {
    try {
      process.kill(pid, 0);
      await new Promise((res) => setTimeout(res, 10));
    } catch {
      alive = false;
    }
  }
  assert.equal(alive, false, "the script's child (sleep) is still running");
});

test("a missing script fails with its name", async () => {
  const r = await checkWithTimeout(createMiscChecker(spec(join(dir, "nope"))), target, 2000);
  assert.equal(r.ok, false);
  assert.match(r.reason, /^Cannot run ".*\/nope": spawn .* ENOENT/);
});

test("user runs the script as that user; an unknown user fails with the name quoted", async (t) => {
  if (process.getuid?.() !== 0) {
    t.skip("needs root to switch users");
    return;
  }
  const out = join(dir, "uid.out");
  const s = script("whoami", `id -u > ${out}`);
  const r = await checkWithTimeout(createMiscChecker(spec(s, { user: "nobody" })), target, 2000);
  assert.equal(r.ok, true, r.reason);
  assert.equal(readFileSync(out, "utf8").trim(), "65534");
  const bad = await checkWithTimeout(createMiscChecker(spec(s, { user: "no-such-user-xyz" })), target, 2000);
  assert.equal(bad.ok, false);
  assert.equal(bad.reason, 'Unknown user "no-such-user-xyz"');
});
