// loadConfig: format detection, and that nothing a file contains makes it throw.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { expandGlob } from "./glob.ts";
import { detectFormat, loadConfig, loadConfigText } from "./load.ts";

const FIX = join(import.meta.dirname, "../../test/fixtures/config");

test("format from the name when it says, else from the content", () => {
  assert.equal(detectFormat("/etc/ha.d/ldirectord.cf", ""), "ldirectord");
  assert.equal(detectFormat("/etc/x/site.cf", ""), "ldirectord");
  assert.equal(detectFormat("/etc/keepalived/keepalived.conf", "virtual=1.2.3.4:80"), "keepalived");
  assert.equal(detectFormat("/tmp/a", "# c\nchecktimeout=3\nvirtual=127.0.0.1:80\n"), "ldirectord");
  assert.equal(detectFormat("/tmp/a", "! c\nvirtual_server 127.0.0.1 80 {\n}\n"), "keepalived");
  assert.equal(detectFormat("/tmp/a", ""), "keepalived");
});

test("both formats load through one entry point", () => {
  const k = loadConfig(join(FIX, "keepalived/dr-master.conf"));
  const l = loadConfig(join(FIX, "ldirectord/seed003.cf"));
  assert.ok("config" in k && "config" in l);
  assert.equal(k.config.format, "keepalived");
  assert.equal(l.config.format, "ldirectord");
  // The same VIP and real servers in both seeds' styles give the same destinations.
  assert.deepEqual(k.config.desired.services[0]?.dests, l.config.desired.services[0]?.dests);
});

test("a missing file, a directory and binary junk give diagnostics, never an exception", () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-config-"));
  try {
    const missing = loadConfig(join(dir, "nope.conf"));
    assert.deepEqual(
      missing.diagnostics.map((d) => [d.severity, d.line, d.column, d.message]),
      [["error", 1, 1, `Cannot read configuration file "${join(dir, "nope.conf")}" (ENOENT)`]],
    );
    assert.ok(!("config" in missing));
    const asDir = loadConfig(dir);
    assert.ok(!("config" in asDir));
    assert.match(asDir.diagnostics[0]?.message ?? "", /^Cannot read configuration file ".*" \(EISDIR\)$/);
    const junk = join(dir, "junk.conf");
    writeFileSync(junk, Buffer.from([0, 255, 123, 10, 125, 125, 34, 0, 10, 123]));
    const j = loadConfig(junk);
    assert.ok(!("config" in j));
    assert.ok(j.diagnostics.some((d) => d.severity === "error"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("fuzzed keepalived and ldirectord text never throws", () => {
  const pieces = [
    "virtual_server",
    "real_server",
    "127.0.0.1",
    "80",
    "{",
    "}",
    "\n",
    " ",
    '"',
    "#",
    "!",
    "TCP_CHECK",
    "url",
    "path",
    "lb_kind",
    "TUN",
    "type",
    "gue",
    "group",
    "fwmark",
    "virtual_server_group",
    "10.0.0.1-5",
    "vrrp_instance",
    "include",
    "virtual=",
    "real=",
    "\t",
    "=",
    ":",
    "->",
    "persistence_timeout",
  ];
  // A fixed linear congruential sequence: reproducible, no wall-clock randomness.
  let seed = 12345;
  const next = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed;
  };
  for (let i = 0; i < 300; i++) {
    let text = "";
    const n = 5 + (next() % 60);
    for (let j = 0; j < n; j++) text += `${pieces[next() % pieces.length]} `;
    for (const name of ["fuzz.conf", "fuzz.cf"]) {
      const r = loadConfigText(join(FIX, name), text);
      assert.ok(Array.isArray(r.diagnostics));
      for (const d of r.diagnostics) {
        assert.ok(d.line >= 1 && d.column >= 1, JSON.stringify(d));
        // loadConfigText turns an exception into "Internal error"; the parsers themselves must not throw.
        assert.doesNotMatch(d.message, /^Internal error/, `${name}: ${JSON.stringify(text)}`);
      }
    }
  }
});

test("glob: * ? [..] within a segment, sorted, hidden files only for dot patterns", () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-glob-"));
  try {
    for (const f of ["b.conf", "a.conf", "c.txt", ".hidden.conf", "x1.conf", "x2.conf"])
      writeFileSync(join(dir, f), "");
    assert.deepEqual(
      expandGlob("*.conf", dir).map((p) => p.slice(dir.length + 1)),
      ["a.conf", "b.conf", "x1.conf", "x2.conf"],
    );
    assert.deepEqual(
      expandGlob(join(dir, "x?.conf"), "/").map((p) => p.slice(dir.length + 1)),
      ["x1.conf", "x2.conf"],
    );
    assert.deepEqual(
      expandGlob("[ab].conf", dir).map((p) => p.slice(dir.length + 1)),
      ["a.conf", "b.conf"],
    );
    assert.deepEqual(
      expandGlob(".*.conf", dir).map((p) => p.slice(dir.length + 1)),
      [".hidden.conf"],
    );
    assert.deepEqual(expandGlob("*.none", dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
