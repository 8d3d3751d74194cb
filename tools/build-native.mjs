#!/usr/bin/env node
// Builds the native addon in native/ with npm's node-gyp (run by `npm install` and
// `npm run build:native`). The addon is optional: when it cannot be built (not Linux, no compiler,
// no node-gyp, no headers) this prints why and exits 0 so `npm ci` still succeeds; only
// `--dataplane packet` needs it and says so when it is missing. `--strict` exits 1 instead.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";

const strict = process.argv.includes("--strict");
const root = resolve(import.meta.dirname, "..");
const nativeDir = join(root, "native");

function giveUp(why, hint) {
  process.stderr.write(`tvs: native addon not built: ${why}\n`);
  if (hint) process.stderr.write(`tvs: ${hint}\n`);
  process.stderr.write("tvs: everything except --dataplane packet works without it\n");
  process.exit(strict ? 1 : 0);
}

if (process.env.TVS_SKIP_NATIVE === "1") giveUp("TVS_SKIP_NATIVE=1 is set");
if (process.platform !== "linux") giveUp(`the packet data plane needs Linux (this is "${process.platform}")`);

/** npm's own node-gyp: npm tells scripts where it is; otherwise look beside npm or on PATH. */
function findNodeGyp() {
  const fromNpm = process.env.npm_config_node_gyp;
  if (fromNpm && existsSync(fromNpm)) return [process.execPath, fromNpm];
  const candidates = [
    join(
      dirname(process.execPath),
      "..",
      "lib",
      "node_modules",
      "npm",
      "node_modules",
      "node-gyp",
      "bin",
      "node-gyp.js",
    ),
    "/usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
    "/usr/local/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js",
  ];
  try {
    candidates.unshift(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"));
  } catch {}
  for (const c of candidates) if (existsSync(c)) return [process.execPath, c];
  const which = spawnSync("sh", ["-c", "command -v node-gyp"], { encoding: "utf8" });
  if (which.status === 0 && which.stdout.trim()) return [which.stdout.trim()];
  return undefined;
}

const gyp = findNodeGyp();
if (!gyp) giveUp("node-gyp was not found", "install npm (which bundles node-gyp) or `npm i -g node-gyp`");
const cc = spawnSync("sh", ["-c", "command -v cc || command -v gcc || command -v clang"], { encoding: "utf8" });
if (cc.status !== 0) giveUp("no C compiler found", "install one (Debian: apt-get install build-essential)");

// Use the headers installed with this node when they are there, so no download is needed.
const args = ["rebuild", "--loglevel=warn", "--directory", nativeDir];
const prefix = resolve(dirname(process.execPath), "..");
if (existsSync(join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);

const [cmd, ...pre] = gyp;
const r = spawnSync(cmd, [...pre, ...args], { stdio: ["ignore", "inherit", "inherit"], cwd: nativeDir });
if (r.status !== 0) giveUp(`node-gyp failed (exit ${r.status ?? r.signal})`, "see the compiler output above");
process.stdout.write(`tvs: native addon built: ${join(nativeDir, "build", "Release", "tvs_native.node")}\n`);
