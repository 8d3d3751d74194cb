// The lab registry: every experiment loads, names its seed, declares no option the command owns,
// and `tvs lab --list` prints each one on its own line.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { LAB_EXPERIMENTS } from "./registry.ts";
import { REPO_ROOT } from "./topology.ts";

const TVS = join(REPO_ROOT, "bin", "tvs.js");
const COMMON = ["addresses", "keep", "json", "help", "list"];

test("every registered experiment loads and names its seed", async () => {
  assert.ok(LAB_EXPERIMENTS.length >= 4);
  assert.equal(new Set(LAB_EXPERIMENTS.map((e) => e.name)).size, LAB_EXPERIMENTS.length, "unique names");
  for (const e of LAB_EXPERIMENTS) {
    assert.match(e.seed, /^seeds? \d{3}/, `${e.name} names its seed`);
    assert.ok(e.summary.length > 10 && !e.summary.includes("\n"), `${e.name} has a one-line summary`);
    const exp = await e.load();
    assert.equal(typeof exp.run, "function");
    for (const k of Object.keys(exp.options)) assert.ok(!COMMON.includes(k), `${e.name} redeclares --${k}`);
  }
});

test("tvs lab --list prints one line per experiment; an unknown name is refused with status 2", async () => {
  const { stdout } = await promisify(execFile)(process.execPath, [TVS, "lab", "--list"]);
  const lines = stdout.trimEnd().split("\n");
  assert.equal(lines.length, LAB_EXPERIMENTS.length);
  for (const [i, e] of LAB_EXPERIMENTS.entries()) {
    const line = lines[i] ?? "";
    assert.ok(line.startsWith(`${e.name} `) && line.includes(e.seed) && line.endsWith(e.summary), line);
  }
  const bad = await promisify(execFile)(process.execPath, [TVS, "lab", "no-such"]).then(
    () => undefined,
    (err: { code: number; stderr: string }) => err,
  );
  assert.equal(bad?.code, 2);
  assert.match(bad?.stderr ?? "", /Unknown experiment "no-such"/);
});
