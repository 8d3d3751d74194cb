#!/usr/bin/env node
// Builds dist/: tsc compiles src/ and bin/*.ts (tsconfig.build.json: every source file except
// tests, picked up by directory, so new files need no list), then the files tsc does not emit
// (other modules and assets under src/, such as a worker's .mjs boot file or static pages) are
// copied beside the compiled code, dist/bin/tvsadm.js becomes one file (start-up time; see
// bundleModule), and dist/.build-stamp records when the build began reading
// the sources (bin/checkout-entry.js compares it with the sources' times).
//
//   node tools/build.mjs            # `npm run build`, and `prepare` (so `npm ci` builds dist/)
//   node tools/build.mjs --strict   # `prepack`: a type error or a missing compiler fails the build
//
// Without --strict a type error exits 0 and writes no stamp (so the bins in a checkout run the
// sources through tsx), and a work-in-progress type error does not make `npm ci` fail (`npm run
// typecheck` is the gate); a checkout installed without development dependencies (no typescript)
// is left to the bins' fallback with a message.
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readdirSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, relative, resolve } from "node:path";

const strict = process.argv.includes("--strict");
// npm pack and npm publish run prepack (the strict build) and then prepare: build once.
if (!strict && process.env.npm_lifecycle_event === "prepare" && ["pack", "publish"].includes(process.env.npm_command)) {
  process.exit(0);
}
const root = resolve(import.meta.dirname, "..");
const dist = join(root, "dist");

let tsc;
try {
  tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
} catch {
  process.stderr.write("tvs: dist/ not built: typescript is not installed (a development dependency)\n");
  process.exit(strict ? 1 : 0);
}

const started = new Date();
rmSync(dist, { recursive: true, force: true });
const r = spawnSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit", cwd: root });
const compiled = r.status === 0;
if (!compiled) {
  process.stderr.write(`tvs: tsc reported errors (exit ${r.status ?? r.signal}); dist/ is left without a stamp\n`);
  if (strict) process.exit(1);
}

/** Files under src/ that are not TypeScript and not tests: shipped as they are. */
function assets(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "testdata" && entry.name !== "fixtures") out.push(...assets(path));
    } else if (!entry.name.endsWith(".ts") && !entry.name.includes(".test.") && entry.name !== "tsconfig.json") {
      out.push(path);
    }
  }
  return out;
}

for (const file of assets(join(root, "src"))) {
  const to = join(dist, relative(root, file));
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(file, to);
}

// tvsadm is called in loops by scripts, so its start-up is part of its contract (bench/cli-latency.ts).
// Node 20 loads each ES module separately (resolve, read, compile, link), which costs more than
// the code itself; the compiled entry and the modules it imports are joined into one file with
// esbuild (a development dependency, used here only to concatenate tsc's output). A module that
// reads import.meta (its own location) would see the bundle's instead, so such a bundle is not
// used and the plain tsc output stays.
// tvsadm also gets a CommonJS copy, dist/bin/tvsadm.cjs, which bin/tvsadm.cjs (the installed
// command) requires: then Node never starts its ES module loader at all; likewise `tvs status`
// (dist/src/cli/tvs/status.cjs, required by bin/tvs.cjs). The same single file for
// `tvs status` (its subcommand module; tvs's other subcommands stay separate files).
if (compiled) {
  await bundleModule("bin/tvsadm.js", "bin/tvsadm.cjs", "cjs");
  await bundleModule("src/cli/tvs/status.js", "src/cli/tvs/status.cjs", "cjs");
  for (const m of ["bin/tvsadm.js", "src/cli/tvs/status.js"]) await bundleModule(m, m, "esm");
}

async function bundleModule(rel, outRel, format) {
  let esbuild;
  try {
    esbuild = await import(createRequire(join(root, "package.json")).resolve("esbuild"));
  } catch {
    process.stderr.write(`tvs: esbuild is not installed: dist/${outRel} is not made (slower start)\n`);
    return;
  }
  const entry = join(dist, rel);
  const out = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format,
    target: "node20",
    write: false,
    logLevel: "silent",
  });
  const text = out.outputFiles[0]?.text ?? "";
  if (text === "" || text.includes("import.meta")) {
    process.stderr.write(`tvs: dist/${outRel} not made: a module ${rel} loads uses import.meta\n`);
    if (strict) process.exit(1);
    return;
  }
  const source = rel.replace(/\.js$/, ".ts");
  writeFileSync(
    join(dist, outRel),
    `// ${source} and the modules it loads, compiled by tsc and joined by tools/build.mjs.\n${text}`,
  );
}

// Without a stamp the bins in a checkout run the sources through tsx rather than a broken build.
if (compiled) {
  const stamp = join(dist, ".build-stamp");
  writeFileSync(stamp, `${started.toISOString()}\n`);
  utimesSync(stamp, started, started);
  process.stderr.write("tvs: built dist/\n");
}
