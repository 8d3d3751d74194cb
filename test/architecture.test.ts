// Enforces DESIGN.md's dependency rules by reading every import in src/: core imports only core
// (and no Node modules); dataplane, health, vrrp and sync never import control, cli, lab or each
// other; only cli (the tvs lab command), tests and bench import lab; only bin imports control, except
// that cli and observe may use the API contract in control/api (protocol and client); observe is
// imported only by control (which composes it), cli and bin.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const root = resolve(import.meta.dirname, "..");
const src = join(root, "src");

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith(".ts") && !p.endsWith(".test.ts")) out.push(p);
  }
  return out;
}

const IMPORT_RE = /(?:^|\n)\s*(?:import|export)[^;'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(IMPORT_RE)) out.push((m[1] ?? m[2]) as string);
  return out;
}

/** Top-level area of a file under src/ ("core", "dataplane", ...). */
function area(file: string): string {
  return relative(src, file).split("/")[0] as string;
}

const PEERS = new Set(["dataplane", "health", "vrrp", "sync"]);

test("every import in src/ follows the dependency rules", () => {
  const violations: string[] = [];
  for (const file of walk(src)) {
    const from = area(file);
    for (const spec of importsOf(file)) {
      const rel = relative(root, file);
      if (!spec.startsWith(".")) {
        if (from === "core" && (spec.startsWith("node:") || !spec.includes("/") || spec.startsWith("@")))
          violations.push(`${rel}: core imports package "${spec}"`);
        continue;
      }
      const target = resolve(dirname(file), spec);
      if (!target.startsWith(src)) continue;
      const to = area(target);
      if (from === "core" && to !== "core") violations.push(`${rel}: core imports ${to}`);
      if (PEERS.has(from) && (to === "control" || to === "cli" || to === "lab"))
        violations.push(`${rel}: ${from} imports ${to}`);
      if (PEERS.has(from) && PEERS.has(to) && to !== from) violations.push(`${rel}: ${from} imports ${to}`);
      if (to === "lab" && from !== "lab" && from !== "cli") violations.push(`${rel}: ${from} imports lab`);
      const apiContract = target.startsWith(join(src, "control", "api"));
      if (to === "control" && from !== "control" && !((from === "cli" || from === "observe") && apiContract))
        violations.push(`${rel}: ${from} imports control`);
      if (to === "observe" && from !== "observe" && from !== "control" && from !== "cli")
        violations.push(`${rel}: ${from} imports observe`);
      if (from === "config" && to !== "config" && to !== "core") violations.push(`${rel}: config imports ${to}`);
    }
  }
  assert.deepEqual(violations, []);
});

test("the rule checker sees a core file's imports", () => {
  const imports = importsOf(join(src, "core", "service-table.ts"));
  assert.ok(imports.includes("./addr.ts"));
});
