// Notify script runner tests: real tiny shell scripts in a temp dir; shell-free vs shell commands,
// time limits that kill hanging scripts, the concurrency bound, and start failures.

import assert from "node:assert/strict";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "../core/log.ts";
import { NotifyRunner, needsShell, splitCommand } from "./notify.ts";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "tvs-notify-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(dir: string, name: string, body: string): string {
  const p = join(dir, name);
  writeFileSync(p, `#!/bin/sh\n${body}\n`);
  chmodSync(p, 0o755);
  return p;
}

test("splitCommand and needsShell", () => {
  assert.deepEqual(splitCommand(`/bin/x a "b c" 'd e' f""`), ["/bin/x", "a", "b c", "d e", "f"]);
  assert.deepEqual(splitCommand("  "), []);
  assert.throws(() => splitCommand(`/bin/x "a`), /Unterminated quote in command/);
  assert.equal(needsShell("/bin/x a 'b c'"), false);
  assert.equal(needsShell("/bin/x a > /tmp/f"), true);
  assert.equal(needsShell("/bin/x $HOME"), true);
  assert.equal(needsShell("/bin/x '$HOME'"), false);
  assert.equal(needsShell("a | b"), true);
});

test("a shell-free command gets its words as argv, with no shell expansion", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "out");
  const s = script(dir, "args.sh", `for a in "$@"; do echo "[$a]" >> ${out}; done`);
  const r = new NotifyRunner();
  const o = await r.run({ command: `${s} one "two words" '$HOME'` });
  assert.equal(o.code, 0);
  assert.equal(o.timedOut, false);
  assert.deepEqual(readFileSync(out, "utf8").trim().split("\n"), ["[one]", "[two words]", "[$HOME]"]);
});

test("a command with shell syntax runs under /bin/sh", async (t) => {
  const dir = tempDir(t);
  const out = join(dir, "out");
  const r = new NotifyRunner();
  const o = await r.run({ command: `echo piped | tr a-z A-Z > ${out}` });
  assert.equal(o.code, 0);
  assert.equal(readFileSync(out, "utf8"), "PIPED\n");
});

test("a hanging script is killed at its time limit", async (t) => {
  const dir = tempDir(t);
  const s = script(dir, "hang.sh", "exec sleep 30");
  const warnings: string[] = [];
  const r = new NotifyRunner({ timeoutMs: 200, log: { ...silentLogger, warn: (m) => warnings.push(m) } });
  const o = await r.run({ command: s });
  assert.equal(o.timedOut, true);
  assert.equal(o.signal, "SIGTERM");
  assert.deepEqual(warnings, ["Notify script killed after its time limit"]);
});

test("a script ignoring SIGTERM gets SIGKILL", async (t) => {
  const dir = tempDir(t);
  const s = script(dir, "stubborn.sh", "trap '' TERM; while :; do sleep 0.05; done");
  const r = new NotifyRunner({ timeoutMs: 200 });
  const o = await r.run({ command: s });
  assert.equal(o.timedOut, true);
  assert.equal(o.signal, "SIGKILL");
});

test("failures to start and non-zero exits come back as outcomes", async (t) => {
  const dir = tempDir(t);
  const warnings: string[] = [];
  const r = new NotifyRunner({ log: { ...silentLogger, warn: (m) => warnings.push(m) } });
  const missing = await r.run({ command: join(dir, "nope.sh") });
  assert.equal(missing.error, "ENOENT");
  const bad = await r.run({ command: script(dir, "fail.sh", "exit 3") });
  assert.equal(bad.code, 3);
  const user = await r.run({ command: "/bin/true", user: "no-such-user-tvs" });
  if (process.getuid?.() === 0) assert.equal(user.error, `Unknown user "no-such-user-tvs"`);
  else assert.equal(user.code, 0);
  assert.ok(warnings.includes("Notify script failed"));
  assert.ok(warnings.includes("Notify script could not run"));
});

test("at most maxConcurrent scripts run at once; the rest wait", async (t) => {
  const dir = tempDir(t);
  const log = join(dir, "log");
  // Each script records how many are running when it starts, using a lock-free counter file per run.
  const s = script(
    dir,
    "slot.sh",
    `touch ${dir}/run.$$; ls ${dir} | grep -c '^run\\.' >> ${log}; sleep 0.2; rm ${dir}/run.$$`,
  );
  const r = new NotifyRunner({ maxConcurrent: 2 });
  const runs = Array.from({ length: 6 }, () => r.run({ command: s }));
  assert.ok(r.pending >= 4);
  await Promise.all(runs);
  await r.idle();
  const counts = readFileSync(log, "utf8").trim().split("\n").map(Number);
  assert.equal(counts.length, 6);
  assert.ok(Math.max(...counts) <= 2, `at most 2 at once, saw ${counts.join(",")}`);
  assert.equal(r.pending, 0);
});
