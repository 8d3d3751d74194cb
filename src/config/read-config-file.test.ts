// Hostile configuration files: what a file (or an include) contains or is cannot stall the reader,
// make it read without bound, or get its contents echoed into diagnostics; format detection stays
// linear on long files. Each case hung, grew or took minutes before the hardening (issue #11 item 5).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { expandGlob, GlobError } from "./glob.ts";
import { detectFormat, loadConfig } from "./load.ts";
import { readConfigFile } from "./read-config-file.ts";

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), "tvs-readcfg-"));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const VS = "virtual_server 127.0.0.1 80 {\n  real_server 127.0.0.2 80 {\n  }\n}\n";

test("a FIFO, /dev/zero and a directory are refused at once as not regular files", { timeout: 10_000 }, () => {
  withDir((dir) => {
    const fifo = join(dir, "pipe.conf");
    execFileSync("mkfifo", [fifo]);
    for (const [inc, why] of [
      [fifo, "not a regular file"],
      ["/dev/zero", "not a regular file"],
      [dir, "EISDIR"],
    ] as const) {
      const main = join(dir, "keepalived.conf");
      writeFileSync(main, `${VS}include ${inc}\n`);
      const r = loadConfig(main);
      assert.ok(!("config" in r), inc);
      assert.deepEqual(
        r.diagnostics.filter((d) => d.severity === "error").map((d) => [d.line, d.message]),
        [[5, `Cannot read included file "${inc}" (${why})`]],
      );
    }
    assert.deepEqual(readConfigFile(fifo), { error: "not a regular file" });
  });
});

test("a file larger than the limit is refused without being read", () => {
  withDir((dir) => {
    const big = join(dir, "big.conf");
    writeFileSync(big, "x".repeat(4096));
    assert.deepEqual(readConfigFile(big, 1024), { error: "larger than 1024 bytes" });
    assert.deepEqual(readConfigFile(big, 4096), { text: "x".repeat(4096) });
  });
});

test("an included /proc file is read as its reported size (0), so its contents never reach a warning", () => {
  withDir((dir) => {
    const main = join(dir, "keepalived.conf");
    writeFileSync(main, `${VS}include /proc/self/environ\n`);
    const r = loadConfig(main);
    assert.ok("config" in r);
    const text = JSON.stringify(r.diagnostics);
    for (const [k, v] of Object.entries(process.env)) {
      if (v === undefined || v.length < 6) continue;
      assert.ok(!text.includes(`${k}=${v}`), `environment variable ${k} echoed in ${text.slice(0, 200)}`);
    }
  });
});

test("words quoted in warnings are cut short and control characters escaped", () => {
  withDir((dir) => {
    const main = join(dir, "keepalived.conf");
    writeFileSync(main, `${VS}${"A".repeat(500)}\u001b[31m\n`);
    const r = loadConfig(main);
    const w = r.diagnostics.find((d) => d.message.startsWith("Unknown keyword"));
    assert.ok(w, JSON.stringify(r.diagnostics));
    assert.ok(w.message.length < 120, w.message);
    assert.ok(!w.message.includes("\u001b"));
  });
});

test('include "[z-a].conf" is a config error at the include, not an internal error', () => {
  withDir((dir) => {
    const main = join(dir, "keepalived.conf");
    writeFileSync(main, `${VS}include "[z-a].conf"\n`);
    const r = loadConfig(main);
    assert.deepEqual(
      r.diagnostics.filter((d) => d.severity === "error").map((d) => [d.severity, d.line, d.column, d.message]),
      [["error", 5, 9, 'Invalid include pattern "[z-a].conf": range "z-a" is out of order']],
    );
    assert.throws(() => expandGlob("[z-a].conf", dir), GlobError);
    // Characters a regex would treat specially are literal inside brackets.
    writeFileSync(join(dir, "a\\.conf"), "");
    writeFileSync(join(dir, "^.conf"), "");
    assert.deepEqual(
      expandGlob("[\\^].conf", dir).map((p) => p.slice(dir.length + 1)),
      ["^.conf"],
    );
  });
});

test("format detection is linear: 200,000 comment lines in a file not named keepalived", { timeout: 15_000 }, () => {
  // The old multiline regex took about a minute for 140,000 lines; a line scan takes milliseconds.
  const comments = "# a comment line that says nothing\n".repeat(100_000);
  const blankish = "   \n\t\n".repeat(50_000);
  assert.equal(detectFormat("/etc/tvs/site.conf.d/x", comments + blankish), "keepalived");
  assert.equal(detectFormat("/etc/tvs/x", `${comments}  virtual=127.0.0.1:80\n`), "ldirectord");
  assert.equal(detectFormat("/etc/tvs/x", `${comments}# virtual=127.0.0.1:80\n`), "keepalived");
});
