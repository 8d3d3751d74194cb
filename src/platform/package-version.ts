// The version every command prints for --version: the "version" of tvs's package.json, found by
// walking up from this module, so the sources (src/platform/) and the compiled package
// (dist/src/platform/) read the same file. Read only when asked for. Part of src/platform, a leaf
// every command (tvs, tvsadm, tvsd) may import.

import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

export function packageVersion(): string {
  for (let dir = import.meta.dirname; ; dir = dirname(dir)) {
    const file = join(dir, "package.json");
    if (existsSync(file)) {
      try {
        const pkg = JSON.parse(readFileSync(file, "utf8")) as { name?: unknown; version?: unknown };
        if (pkg.name === "tvs" && typeof pkg.version === "string") return pkg.version;
      } catch {}
    }
    if (dirname(dir) === dir) return "unknown";
  }
}
