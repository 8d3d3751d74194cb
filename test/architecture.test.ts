// Enforces the layer rules of docs/architecture.md by reading every import in src/.
// Each top-level area of src/ has a row in LAYERS listing what it may import besides itself; an
// import of anything else, an area with no row, or a relative import leaving src/ is a violation.
// Where a rule allows only a contract of another area (control/api, health/checker-spec.ts,
// dataplane/packet/codec), the row names that path rather than the whole area.
//
// The rules in words: core imports only core, with no Node module or package and no timers or
// wall clock. platform (the native addon loader, the package's version) is a leaf. dataplane, health, vrrp, sync and announce
// import core (vrrp, sync and the real server may use the packet codecs and the addon) and never
// each other, control, cli or lab. config turns files into plain specs: core types, the
// checker specs health defines and the VRRP specs vrrp defines. observe reads the control API's views. control composes
// everything and is imported by nobody in src/ except through its API contract (cli, observe, lab).
// Only cli (the `tvs lab` command) imports lab. bin/ (outside src/) is the top and may import all.
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const root = resolve(import.meta.dirname, "..");
const src = join(root, "src");

/** What each area may import besides itself: an area name, or a path inside one (a contract). */
const LAYERS: Record<string, readonly string[]> = {
  core: [],
  platform: [],
  dataplane: ["core", "platform"],
  health: ["core"],
  vrrp: ["core", "platform", "dataplane/packet/codec"],
  sync: ["core", "platform", "dataplane/packet/codec"],
  announce: ["core"],
  realserver: ["core", "platform", "dataplane/packet/codec"],
  config: ["core", "health/checker-spec.ts", "vrrp/spec.ts"],
  observe: ["core", "control/api"],
  control: ["core", "platform", "config", "dataplane", "health", "vrrp", "sync", "announce", "observe"],
  cli: ["core", "config", "control/api", "lab", "realserver", "platform"],
  lab: ["core", "config", "control/api"],
};

/** Areas whose code must not use Node's own modules or any package. */
const NO_PACKAGES = new Set(["core"]);

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

/** Top-level area of a path under src/ ("core", "dataplane", ...). */
function area(path: string): string {
  return relative(src, path).split("/")[0] as string;
}

/** Whether `target` (absolute) is covered by an allowance: an area name or a path inside src/. */
function allowedBy(target: string, allowance: string): boolean {
  const base = join(src, allowance);
  return target === base || target.startsWith(`${base}/`);
}

/** Every violation of the rules by one file's import specifiers. */
function violationsOf(file: string, specs: readonly string[]): string[] {
  const rel = relative(root, file);
  const from = area(file);
  const allowed = LAYERS[from];
  if (!allowed) return [`${rel}: area "${from}" has no row in LAYERS (test/architecture.test.ts); add its rules`];
  const out: string[] = [];
  for (const spec of specs) {
    if (!spec.startsWith(".")) {
      if (NO_PACKAGES.has(from)) out.push(`${rel}: ${from} imports package "${spec}"`);
      continue;
    }
    const target = resolve(dirname(file), spec);
    if (!target.startsWith(`${src}/`)) {
      out.push(`${rel}: imports "${spec}" outside src/`);
      continue;
    }
    const to = area(target);
    if (to === from) continue;
    if (!allowed.some((a) => allowedBy(target, a))) out.push(`${rel}: ${from} imports ${relative(src, target)}`);
  }
  return out;
}

const CLOCK_OR_TIMER =
  /\b(?:setTimeout|setInterval|setImmediate|queueMicrotask|Date\.now|performance\.now)\s*\(|new Date\(/;

test("every import in src/ follows the layer rules", () => {
  const violations: string[] = [];
  for (const file of walk(src)) violations.push(...violationsOf(file, importsOf(file)));
  assert.deepEqual(violations, []);
});

test("core never reads a clock or starts a timer (time is injected)", () => {
  const found: string[] = [];
  for (const file of walk(join(src, "core"))) {
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        const code = line.replace(/\/\/.*$/, "");
        if (CLOCK_OR_TIMER.test(code)) found.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(found, []);
});

/** Lines of src/ (outside tests) matching `re`, except in the files `allowed` names. */
function linesMatching(re: RegExp, allowed: readonly string[]): string[] {
  const found: string[] = [];
  for (const file of walk(src)) {
    const rel = relative(root, file);
    if (allowed.includes(rel)) continue;
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        if (re.test(line)) found.push(`${rel}:${i + 1}: ${line.trim()}`);
      });
  }
  return found;
}

test("one Logger interface: no layer declares its own logging shape", () => {
  // A method like `warn(msg: string, ...)` declared anywhere but core/log.ts is a copy of Logger.
  assert.deepEqual(linesMatching(/^\s*(?:debug|info|warn|error)\(msg: string/, ["src/core/log.ts"]), []);
});

test("one endpoint formatter: addr:port and [v6]:port are written by core's formatEndpoint", () => {
  // tvsadm's addrPort prints host and service names in place of addresses (ipvsadm's
  // addrport_to_anyname), which formatEndpoint cannot.
  const allowed = ["src/core/addr.ts", "src/cli/tvsadm/format.ts"];
  assert.deepEqual(linesMatching(/`\[\$\{[^}]+\}\]:\$\{/, allowed), []);
});

test("the rule checker sees a core file's imports", () => {
  const imports = importsOf(join(src, "core", "service-table.ts"));
  assert.ok(imports.includes("./addr.ts"));
});

test("the rule checker refuses the arrows that ran the wrong way", () => {
  const at = (p: string) => join(src, p);
  // control reaching up into the CLI (tvsd --demo once imported tvsadm).
  assert.deepEqual(violationsOf(at("control/tvsd-main.ts"), ["../cli/tvsadm/main.ts"]), [
    "src/control/tvsd-main.ts: control imports cli/tvsadm/main.ts",
  ]);
  // the real server reaching into the packet plane for the addon loader.
  assert.equal(violationsOf(at("realserver/decap.ts"), ["../dataplane/packet/native-io.ts"]).length, 1);
  assert.deepEqual(violationsOf(at("realserver/decap.ts"), ["../platform/native-addon.ts"]), []);
  // health taking its spec types from config; config using health's spec is the allowed direction.
  assert.equal(violationsOf(at("health/checkers/tcp.ts"), ["../../config/director-config.ts"]).length, 1);
  assert.deepEqual(violationsOf(at("config/keepalived/checkers.ts"), ["../../health/checker-spec.ts"]), []);
  assert.equal(violationsOf(at("config/keepalived/checkers.ts"), ["../../health/runner.ts"]).length, 1);
  // peers never import each other; core stays pure.
  assert.equal(violationsOf(at("sync/master.ts"), ["../vrrp/fsm.ts"]).length, 1);
  assert.equal(violationsOf(at("core/service.ts"), ["node:fs"]).length, 1);
  assert.equal(violationsOf(at("core/service.ts"), ["../dataplane/packet/codec/ipv4.ts"]).length, 1);
  // the API contract is open to cli and observe, the rest of control to nobody.
  assert.deepEqual(violationsOf(at("observe/metrics.ts"), ["../control/api/protocol.ts"]), []);
  assert.equal(violationsOf(at("observe/metrics.ts"), ["../control/daemon.ts"]).length, 1);
  assert.equal(violationsOf(at("dataplane/proxy/plane.ts"), ["../../lab/topology.ts"]).length, 1);
  // an area without rules is refused until it gets a row.
  assert.match(violationsOf(at("newarea/x.ts"), [])[0] ?? "", /no row in LAYERS/);
});
