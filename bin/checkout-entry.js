// Which code a bin runs in a source checkout (the directory has src/): the compiled dist/ when it
// is at least as new as every source file, otherwise the TypeScript itself through tsx (a
// development dependency). So `npx tvsadm` after `npm ci` runs the compiled code (prepare builds
// dist/), and after an edit, a checkout or a rebase it runs what the sources say, never stale
// JavaScript; `npm run build` makes it fast again. An installed package has no src/ and never
// loads this file (see bin/tvsadm.js).
//
// "New" is by modification time against dist/.build-stamp, which tools/build.mjs dates to the
// moment the build started reading the sources. Directories count too, so a source file added or
// removed since the build is noticed. The walk stats a few hundred entries (about a millisecond).

import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

/** True when something under `dir` (not tests) changed after `since` (ms since the epoch). */
function changedSince(dir, since) {
  if (statSync(dir).mtimeMs > since) return true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (changedSince(path, since)) return true;
    } else if (!entry.name.includes(".test.") && statSync(path).mtimeMs > since) return true;
  }
  return false;
}

function compiledIsCurrent(root) {
  const stamp = join(root, "dist", ".build-stamp");
  if (!existsSync(stamp)) return false;
  const built = statSync(stamp).mtimeMs;
  return !changedSince(join(root, "src"), built) && !changedSince(join(root, "bin"), built);
}

/** Import the command `name` (tvs, tvsd, tvsadm) from dist/ or, when that is stale, through tsx. */
export async function runFromCheckout(root, name) {
  const compiled = join(root, "dist", "bin", `${name}.js`);
  if (compiledIsCurrent(root)) return import(pathToFileURL(compiled).href);
  let register;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    if (existsSync(compiled)) return import(pathToFileURL(compiled).href);
    process.stderr.write(
      `${name}: dist/ has no compiled code and tsx is not installed: run \`npm run build\` (or \`npm ci\`) in ${root}\n`,
    );
    process.exit(1);
  }
  register();
  return import(pathToFileURL(join(root, "bin", `${name}.ts`)).href);
}
