#!/usr/bin/env node
// Finds test files (Node 20's --test takes no globs) and runs them under node:test with tsx.
// Usage: node tools/run-tests.mjs [unit|lab|oracle|all] [extra node --test flags]
import { spawnSync } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";

const kind = process.argv[2] ?? "unit";
const extra = process.argv.slice(3);

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    if (name === "node_modules" || name.startsWith(".")) continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else out.push(p);
  }
  return out;
}

const all = [...walk("src"), ...walk("test")].filter((f) => f.endsWith(".test.ts")).sort();
const isLab = (f) => f.endsWith(".lab.test.ts");
const isOracle = (f) => f.endsWith(".oracle.test.ts");
const pick = {
  unit: all.filter((f) => !isLab(f) && !isOracle(f)),
  lab: all.filter(isLab),
  oracle: all.filter(isOracle),
  all,
}[kind];
if (!pick) {
  console.error(`Unknown test kind "${kind}" (unit, lab, oracle, all)`);
  process.exit(2);
}
if (pick.length === 0) {
  console.log(`No ${kind} tests found`);
  process.exit(0);
}
const concurrency = kind === "unit" ? "2" : "1";
const r = spawnSync(
  process.execPath,
  ["--import", "tsx", "--test", `--test-concurrency=${concurrency}`, ...extra, ...pick],
  { stdio: "inherit" },
);
process.exit(r.status ?? 1);
