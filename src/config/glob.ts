// A small file-name glob for `include` (keepalived passes include patterns to glob(3)): `*`, `?`
// and `[...]` within one path segment, no `**`, no brace expansion. Matches are sorted like glob(3)
// and hidden files only match a pattern segment that itself starts with a dot.

import { readdirSync, statSync } from "node:fs";
import { isAbsolute, join, resolve, sep } from "node:path";

/** A pattern glob(3) cannot use (e.g. a range out of order); the message says why. */
export class GlobError extends Error {}

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
        re += bracketClass(segment.slice(i + 1, end));
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\\]]/g, "\\$&");
  }
  return new RegExp(`${re}$`, "u");
}

/**
 * A `[...]` body as a regex class: a leading `!` negates, `a-z` is a range whose ends must be in
 * order, everything else is literal. Each character is escaped, so no body can make an invalid
 * regex; an out-of-order range is a GlobError naming it.
 */
function bracketClass(body: string): string {
  let out = "[";
  let i = 0;
  if (body.startsWith("!")) {
    out += "^";
    i = 1;
  }
  const esc = (c: string) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`;
  const chars = [...body.slice(i)];
  for (let k = 0; k < chars.length; k++) {
    const c = chars[k] as string;
    const to = chars[k + 2];
    if (chars[k + 1] === "-" && to !== undefined) {
      if ((c.codePointAt(0) as number) > (to.codePointAt(0) as number))
        throw new GlobError(`range "${c}-${to}" is out of order`);
      out += `${esc(c)}-${esc(to)}`;
      k += 2;
    } else out += esc(c);
  }
  return `${out}]`;
}

/** Paths matching `pattern` (resolved against `cwd` when relative), sorted; [] when none. Throws GlobError for a malformed pattern. */
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
