// Tests for the state file's atomic write and its reading back: whole replacements, no temporary
// file left behind, the previous file kept when a write fails, unchanged text not rewritten, and
// a missing or damaged file told apart.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { StateFile, writeFileAtomic } from "./state-file.ts";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "tvs-state-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("writeFileAtomic replaces the whole file and leaves no temporary file", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "a.rules");
  await writeFileAtomic(path, "one\n");
  await writeFileAtomic(path, "two\n");
  assert.equal(readFileSync(path, "utf8"), "two\n");
  assert.deepEqual(readdirSync(dir), ["a.rules"]);
  assert.equal(statSync(path).mode & 0o777, 0o600);
});

test("a failed write leaves the previous file whole and no temporary file", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "a.rules");
  writeFileSync(path, "old\n");
  // A directory where the file should go: rename(2) fails with EISDIR after the temp file is written.
  const blocked = join(dir, "sub");
  writeFileSync(join(dir, "keep"), "");
  await assert.rejects(writeFileAtomic(join(dir, "missing", "x.rules"), "new\n"), /ENOENT/);
  await import("node:fs").then((fs) => fs.mkdirSync(join(blocked, "inner"), { recursive: true }));
  await assert.rejects(writeFileAtomic(blocked, "new\n"), /EISDIR|ENOTEMPTY|EEXIST/);
  assert.equal(readFileSync(path, "utf8"), "old\n");
  assert.deepEqual(readdirSync(dir).sort(), ["a.rules", "keep", "sub"]);
});

test("StateFile: missing is undefined, saved text reads back as requests, unchanged text is not rewritten", async (t) => {
  const dir = tempDir(t);
  const state = new StateFile(join(dir, "tvs.rules"));
  assert.equal(await state.load(), undefined);
  const text = "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -g -w 1\n-A -f 7 -s wlc\n";
  await state.save(text);
  const mtime = statSync(state.path).mtimeMs;
  await new Promise((r) => setTimeout(r, 20));
  await state.save(text);
  assert.equal(statSync(state.path).mtimeMs, mtime);
  const back = await new StateFile(state.path).load();
  assert.equal(back?.services, 2);
  assert.deepEqual(
    back?.requests.map((r) => r.op),
    ["add-service", "add-dest", "add-service"],
  );
});

test("StateFile: a damaged file throws with its path and line", async (t) => {
  const dir = tempDir(t);
  const path = join(dir, "tvs.rules");
  writeFileSync(path, "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:99999 -m\n");
  await assert.rejects(new StateFile(path).load(), (e: Error) => {
    assert.match(e.message, /tvs\.rules:2/);
    assert.match(e.message, /fix or remove/);
    return true;
  });
});
