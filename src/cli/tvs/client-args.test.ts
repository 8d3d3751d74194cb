// Tests for the command line shared by tvs status and tvs sysctl.
import assert from "node:assert/strict";
import { test } from "node:test";
import { readClientArgs } from "./client-args.ts";

function run(argv: string[], maxOperands = 1) {
  const written = { stdout: "", stderr: "" };
  const r = readClientArgs(argv, "Usage: x\n", maxOperands, {
    stdout: (s) => {
      written.stdout += s;
    },
    stderr: (s) => {
      written.stderr += s;
    },
  });
  return { r, ...written };
}

test("--socket in both spellings, --json and operands up to the limit", () => {
  assert.deepEqual(run(["--socket", "/s", "--json", "rr"]).r, { socket: "/s", json: true, operands: ["rr"] });
  assert.deepEqual(run(["--socket=/t"]).r, { socket: "/t", json: false, operands: [] });
});

test("help, a missing value, an unknown option and one operand too many give their exit codes and say why", () => {
  const help = run(["-h"]);
  assert.deepEqual(help.r, { exit: 0 });
  assert.equal(help.stdout, "Usage: x\n");
  const missing = run(["--socket"]);
  assert.deepEqual(missing.r, { exit: 2 });
  assert.match(missing.stderr, /^Option --socket needs a value\n/);
  const unknown = run(["--bogus"]);
  assert.deepEqual(unknown.r, { exit: 2 });
  assert.match(unknown.stderr, /^Unknown option "--bogus"\n/);
  const extra = run(["a", "b"]);
  assert.deepEqual(extra.r, { exit: 2 });
  assert.match(extra.stderr, /^Unexpected argument "b"\n/);
  assert.deepEqual(run(["a"], 0).r, { exit: 2 }, "status takes no operand");
});
