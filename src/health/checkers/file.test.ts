// FILE_CHECK: keepalived's track_file number parsing and the up/down/offset verdicts, read from
// real files in a temp dir (missing, empty, hex, negative, out of range, weight 0, reverse).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, type FileCheckSpec } from "../checker-spec.ts";
import { createFileChecker, fileVerdict, strtol0 } from "./file.ts";

const dir = mkdtempSync(join(tmpdir(), "tvs-file-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

const spec = (file: string, weight: number, reverse = false): FileCheckSpec => ({
  ...checkerCommon("FILE_CHECK"),
  type: "FILE_CHECK",
  file,
  weight,
  reverse,
});
const target = { address: "127.0.0.1", port: 0 };

test("strtol0 reads numbers as C's strtol(text, NULL, 0)", () => {
  const cases: [string, number][] = [
    ["", 0],
    ["abc", 0],
    ["42", 42],
    ["  -7\n", -7],
    ["+3x", 3],
    ["0x1F", 31],
    ["017", 15],
    ["0", 0],
    ["09", 0],
    ["12 34", 12],
  ];
  for (const [text, want] of cases) assert.equal(strtol0(text), want, JSON.stringify(text));
});

test("verdicts: weight 0 decides up/down, other weights give offsets, reverse flips", () => {
  assert.deepEqual(fileVerdict(0, 0, false), { ok: true });
  assert.deepEqual(fileVerdict(5, 0, false), { ok: false });
  assert.deepEqual(fileVerdict(0, 0, true), { ok: false });
  assert.deepEqual(fileVerdict(5, 0, true), { ok: true });
  assert.deepEqual(fileVerdict(3, 10, false), { ok: true, offset: 30 });
  assert.deepEqual(fileVerdict(3, 10, true), { ok: true, offset: -30 });
  assert.deepEqual(fileVerdict(-2147483648, 1, false), { ok: false });
  assert.deepEqual(fileVerdict(2147483647, -2, false), { ok: false });
});

test("FILE_CHECK reads the file each time it runs", async () => {
  const f = join(dir, "weight");
  const c = createFileChecker(spec(f, 0));
  const missing = await checkWithTimeout(c, target, 1000);
  assert.equal(missing.ok, true, "a missing file reads as 0");
  writeFileSync(f, "1\n");
  const down = await checkWithTimeout(c, target, 1000);
  assert.equal(down.ok, false);
  assert.equal(down.reason, `File ${f} reads 1 (fault)`);
  writeFileSync(f, "");
  assert.equal((await checkWithTimeout(c, target, 1000)).ok, true);
  unlinkSync(f);
});

test("FILE_CHECK with a weight factor reports the offset; an out-of-range number keeps the last value", async () => {
  const f = join(dir, "offset");
  const c = createFileChecker(spec(f, 10));
  writeFileSync(f, "0x3");
  const r = await checkWithTimeout(c, target, 1000);
  assert.equal(r.ok, true);
  assert.equal(r.weightOffset, 30);
  writeFileSync(f, "0");
  const zero = await checkWithTimeout(c, target, 1000);
  assert.equal(zero.ok, true);
  assert.equal(zero.weightOffset, undefined);
  writeFileSync(f, "-4");
  assert.equal((await checkWithTimeout(c, target, 1000)).weightOffset, -40);
  writeFileSync(f, "99999999999");
  const ignored = await checkWithTimeout(c, target, 1000);
  assert.equal(ignored.weightOffset, -40);
});
