// tvsd --state-file end to end: the table tvsadm builds is on disk when tvsadm returns, so a tvsd
// killed with SIGKILL and started again has the same table; a damaged file stops the start with its
// line; with --rules, a SIGHUP that replaces tvsadm's changes says so in the log, and one that does
// not replace any stays quiet.

import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { adm, freePort, freeUdpPort, startTvsd, waitFor } from "./tvsd-harness.ts";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "tvsd-state-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test("the table tvsadm builds survives SIGKILL and a restart", async (t) => {
  const dir = tempDir(t);
  const state = join(dir, "tvs.rules");
  const [p1, p2] = [await freePort(), await freeUdpPort()];
  const d1 = await startTvsd(["--state-file", state], { dir });
  t.after(() => d1.proc.kill("SIGKILL"));
  assert.ok(d1.logs.some((l) => l.msg === "No state file yet; starting empty"));

  await adm(d1, "-A", "-t", `127.0.0.1:${p1}`, "-s", "wlc");
  await adm(d1, "-a", "-t", `127.0.0.1:${p1}`, "-r", `127.0.0.2:${p1 + 1}`, "-m", "-w", "3");
  await adm(d1, "-a", "-t", `127.0.0.1:${p1}`, "-r", `127.0.0.3:${p1 + 1}`, "-m", "-w", "0");
  await adm(d1, "-A", "-u", `127.0.0.1:${p2}`, "-s", "sh", "-p", "120");
  await adm(d1, "-a", "-u", `127.0.0.1:${p2}`, "-r", `127.0.0.4:${p2}`, "-m");
  await adm(d1, "-e", "-t", `127.0.0.1:${p1}`, "-r", `127.0.0.2:${p1 + 1}`, "-m", "-w", "5", "-x", "100");
  const before = await adm(d1, "-S", "-n");
  const thresholds = await adm(d1, "-L", "-n", "--thresholds");
  assert.match(before, /-A -t 127\.0\.0\.1:\d+ -s wlc/);
  assert.match(before, /-a -t 127\.0\.0\.1:\d+ -r 127\.0\.0\.2:\d+ -m -w 5\n/);

  // No stop, no save on the way out: what is on disk is what every request left.
  d1.proc.kill("SIGKILL");
  await d1.exited;
  // ipvsadm -S leaves thresholds out; the state file adds them (-R reads them).
  const saved = readFileSync(state, "utf8");
  assert.equal(saved.replace(" -x 100", ""), before);
  assert.match(saved, / -m -w 5 -x 100\n/);
  assert.deepEqual(
    readdirSync(dir).filter((f) => f.includes(".tmp")),
    [],
  );
  assert.equal(statSync(state).mode & 0o777, 0o600);

  const d2 = await startTvsd(["--state-file", state], { dir });
  t.after(() => d2.stop());
  assert.ok(d2.logs.some((l) => l.msg === "Restored the table from the state file" && l.services === 2));
  assert.equal(await adm(d2, "-S", "-n"), before);
  assert.equal(await adm(d2, "-L", "-n", "--thresholds"), thresholds);

  // Deleting is a change like any other.
  await adm(d2, "-D", "-u", `127.0.0.1:${p2}`);
  assert.doesNotMatch(readFileSync(state, "utf8"), /-u 127\.0\.0\.1/);
  assert.equal(readFileSync(state, "utf8").replace(" -x 100", ""), await adm(d2, "-S", "-n"));
});

test("a damaged state file stops the start, naming the file and line", async (t) => {
  const dir = tempDir(t);
  const state = join(dir, "tvs.rules");
  writeFileSync(state, "-A -t 127.0.0.1:1 -s rr\n-a -t 127.0.0.1:1 -r nonsense:: -m\n");
  await assert.rejects(startTvsd(["--state-file", state], { dir }), (e: Error) => {
    assert.match(e.message, /tvs\.rules:2/);
    assert.match(e.message, /fix or remove/);
    return true;
  });
  // The file is left as it was for the operator to repair.
  assert.match(readFileSync(state, "utf8"), /nonsense/);
});

test("a state file that cannot be written stops the start", async (t) => {
  const dir = tempDir(t);
  const state = join(dir, "missing", "tvs.rules");
  await assert.rejects(startTvsd(["--state-file", state], { dir }), (e: Error) => {
    assert.match(e.message, /Cannot write the state file ".*missing\/tvs\.rules" \(ENOENT\)/);
    return true;
  });
});

test("with --rules, a SIGHUP that replaces tvsadm's changes says so; one that replaces none is quiet", async (t) => {
  const dir = tempDir(t);
  const state = join(dir, "live.rules");
  const rules = join(dir, "tvs.rules");
  const [p1, p2] = [await freePort(), await freePort()];
  writeFileSync(rules, `-A -t 127.0.0.1:${p1} -s rr\n-a -t 127.0.0.1:${p1} -r 127.0.0.2:${p1} -m\n`);
  const d = await startTvsd(["--rules", rules, "--state-file", state], { dir });
  t.after(() => d.stop());
  assert.equal(readFileSync(state, "utf8"), await adm(d, "-S", "-n"));

  // Nothing changed by hand: the reload replaces nothing and says nothing about it.
  d.proc.kill("SIGHUP");
  await waitFor("the first reload", () => d.logs.some((l) => l.msg === "Reloaded") || undefined);
  assert.ok(!d.logs.some((l) => String(l.msg).startsWith("Reload replaced")));

  await adm(d, "-A", "-t", `127.0.0.1:${p2}`, "-s", "lc");
  assert.match(readFileSync(state, "utf8"), new RegExp(`-A -t 127\\.0\\.0\\.1:${p2} -s lc`));
  d.proc.kill("SIGHUP");
  const warn = await waitFor("the warning", () => d.logs.find((l) => String(l.msg).startsWith("Reload replaced")));
  assert.equal(warn.level, "warn");
  assert.match(String(warn.msg), /Reload replaced 1 change\(s\) made with tvsadm since the last load/);
  assert.deepEqual(warn.discarded, [`add-service tcp 127.0.0.1:${p2}`]);
  // The file follows the reloaded table.
  await waitFor("the state file to follow the reload", () =>
    readFileSync(state, "utf8").includes(`:${p2}`) ? undefined : true,
  );
});
