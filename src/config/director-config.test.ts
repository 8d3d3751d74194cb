// DirectorConfig as the other parts consume it: plain JSON-able data, and every checker spec the
// parsers emit for the fixtures is one the health code builds a checker for.
import assert from "node:assert/strict";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { createChecker } from "../health/create-checker.ts";
import { loadConfig } from "./load.ts";

const FIX = join(import.meta.dirname, "../../test/fixtures/config");

/** Fixture files that are whole, valid configurations (not parts, not the deliberate loop). */
function fixtures(): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) {
        if (!["conf.d", "loop", "servers"].includes(name)) walk(p);
      } else if (/\.(conf|cf)$/.test(name)) out.push(p);
    }
  };
  walk(FIX);
  return out;
}

test("the fixtures are all valid configurations", () => {
  const files = fixtures();
  assert.ok(files.length >= 9, `only ${files.length} fixtures found`);
  for (const f of files) {
    const r = loadConfig(f);
    assert.ok("config" in r, `${f}: ${r.diagnostics.map((d) => d.message).join("; ")}`);
  }
});

test("a DirectorConfig survives JSON unchanged (plain data only)", () => {
  for (const f of fixtures()) {
    const r = loadConfig(f);
    assert.ok("config" in r);
    assert.deepEqual(JSON.parse(JSON.stringify(r.config)), r.config, f);
  }
});

test("health settings line up with the desired services and destinations", () => {
  for (const f of fixtures()) {
    const r = loadConfig(f);
    assert.ok("config" in r);
    const { desired, health } = r.config;
    assert.equal(health.length, desired.services.length, f);
    desired.services.forEach((s, i) => {
      const h = health[i];
      assert.deepEqual(h?.key, s.key, f);
      assert.deepEqual(
        h?.realServers.map((rs) => [rs.addr, rs.port, rs.weight]),
        s.dests.map((d) => [d.addr, d.port, d.weight]),
        f,
      );
    });
  }
});

test("every checker spec from the fixtures is accepted by the health checkers", () => {
  let n = 0;
  for (const f of fixtures()) {
    const r = loadConfig(f);
    assert.ok("config" in r);
    for (const h of r.config.health)
      for (const rs of h.realServers)
        for (const spec of rs.checkers) {
          assert.doesNotThrow(() => createChecker(spec), `${f} ${rs.addr} ${spec.type}`);
          n++;
        }
  }
  assert.ok(n >= 20, `only ${n} checkers`);
});
