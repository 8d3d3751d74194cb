// A small file-name glob for `include` (keepalived passes include patterns to glob(3)): `*`, `?`
// and `[...]` within one path segment, no `**`, no brace expansion. Matches are sorted like glob(3)
// and hidden files only match a pattern segment that itself starts with a dot.

import { readdirSync, statSync } from "node:fs";
import { isAbsolute, join, resolve, sep } from "node:path";

export function hasGlobMagic(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

function segmentRegex(segment: string): RegExp {
  let re = "^";
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] as string;
    if (c === "*") re += "[^/]*";
    else if (c === "?") re += "[^/]";
    else if (c === "[") {
      const end = segment.indexOf("]", i + 2);
      if (end === -1) re += "\\[";
      else {
        let body = segment.slice(i + 1, end);
        if (body.startsWith("!")) body = `^${body.slice(1)}`;
        re += `[${body.replace(/\\/g, "\\\\")}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`${re}$`);
}

/** Paths matching `pattern` (resolved against `cwd` when relative), sorted; [] when none. */
export function expandGlob(pattern: string, cwd: string): string[] {
  const abs = isAbsolute(pattern) ? pattern : resolve(cwd, pattern);
  const parts = abs.split(sep).filter((p) => p !== "");
  let current: string[] = [sep];
  for (const part of parts) {
    const next: string[] = [];
    if (!hasGlobMagic(part)) {
      for (const dir of current) next.push(join(dir, part));
    } else {
      const re = segmentRegex(part);
      for (const dir of current) {
        let names: string[];
        try {
          names = readdirSync(dir).sort();
        } catch {
          continue;
        }
        for (const name of names) {
          if (name.startsWith(".") && !part.startsWith(".")) continue;
          if (re.test(name)) next.push(join(dir, name));
        }
      }
    }
    current = next;
  }
  return current.filter((p) => {
    try {
      return statSync(p).isFile();
    } catch {
      return false;
    }
  });
}
