// Reads a keepalived.conf and everything it includes into one token stream. `include PATTERN...`
// is a line of its own; each pattern is a glob resolved against the directory of the file that
// contains the include (keepalived's behaviour for relative paths) and the matching files are
// spliced in where the include stood, so a block may even span files. Include loops, unreadable
// files and patterns matching nothing are reported at the include line. Files are read through
// read-config-file.ts: regular files only, bounded in size, never blocking on a FIFO or a device. Lines starting with
// keepalived's `@config-id` conditionals or `$NAME=value` definitions are skipped with a warning.

import { realpathSync } from "node:fs";
import { dirname, isAbsolute, relative, resolve } from "node:path";
import type { Diagnostics, SourcePos } from "../diagnostics.ts";
import { expandGlob, GlobError, hasGlobMagic } from "../glob.ts";
import { readConfigFile } from "../read-config-file.ts";
import { lexKeepalived, type Token } from "./lexer.ts";

/** Bounds a runaway include tree (keepalived has none; a loop is caught separately). */
const MAX_INCLUDE_DEPTH = 32;

export interface KeepalivedSource {
  tokens: Token[];
  /** Every file read, in the order read (the main file first). */
  files: string[];
}

function canonical(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/** Reads `path` (text given in `text` when already in memory) and all its includes. */
export function readKeepalivedSource(path: string, diags: Diagnostics, text?: string): KeepalivedSource {
  const files: string[] = [];
  const tokens: Token[] = [];
  const stack: string[] = [];
  // Included files are named the way the main file was: relative to the working directory when it
  // was given relative, absolute otherwise.
  const shown = (abs: string): string => (isAbsolute(path) ? abs : relative(process.cwd(), abs) || abs);

  const readOne = (file: string, content: string | undefined, from: SourcePos | undefined): void => {
    const real = canonical(file);
    if (stack.includes(real)) {
      diags.error(from as SourcePos, `Include loop: "${file}" is already being read`);
      return;
    }
    if (stack.length >= MAX_INCLUDE_DEPTH) {
      diags.error(from as SourcePos, `Includes nested deeper than ${MAX_INCLUDE_DEPTH} levels at "${file}"`);
      return;
    }
    let body = content;
    if (body === undefined) {
      // Regular files only, bounded in size, opened without blocking (see read-config-file.ts).
      const got = readConfigFile(file);
      if ("error" in got) {
        if (from) diags.error(from, `Cannot read included file "${file}" (${got.error})`);
        else diags.error({ file, line: 1, column: 1 }, `Cannot read configuration file "${file}" (${got.error})`);
        return;
      }
      body = got.text;
    }
    files.push(file);
    stack.push(real);
    const toks = lexKeepalived(body, file, diags);
    let i = 0;
    while (i < toks.length) {
      // One line: tokens up to and including its eol.
      let j = i;
      while ((toks[j] as Token).kind !== "eol") j++;
      const line = toks.slice(i, j + 1);
      i = j + 1;
      const first = line[0] as Token;
      if (first.kind === "word" && !first.quoted && first.text === "include") {
        includeLine(file, line);
        continue;
      }
      if (first.kind === "word" && !first.quoted && first.text.startsWith("@")) {
        diags.warning(first.pos, `Conditional configuration "${first.text}" is not supported - line ignored`);
        continue;
      }
      if (first.kind === "word" && !first.quoted && /^\$[A-Za-z_][A-Za-z0-9_]*=/.test(first.text)) {
        diags.warning(first.pos, `Parameter definition "${first.text}" is not supported - line ignored`);
        continue;
      }
      tokens.push(...line);
    }
    stack.pop();
  };

  const includeLine = (file: string, line: Token[]): void => {
    const kw = line[0] as Token;
    const args = line.filter((t, k) => k > 0 && t.kind === "word");
    const stray = line.find((t) => t.kind === "open" || t.kind === "close");
    if (stray) diags.error(stray.pos, `Unexpected "${stray.text}" on an include line`);
    if (args.length === 0) {
      diags.error(kw.pos, "Missing file name after include");
      return;
    }
    for (const arg of args) {
      const base = dirname(file);
      const pattern = isAbsolute(arg.text) ? arg.text : resolve(base, arg.text);
      if (hasGlobMagic(arg.text)) {
        let matches: string[];
        try {
          matches = expandGlob(pattern, base);
        } catch (e) {
          if (!(e instanceof GlobError)) throw e;
          diags.error(arg.pos, `Invalid include pattern "${arg.text}": ${e.message}`);
          continue;
        }
        if (matches.length === 0) diags.warning(arg.pos, `Include pattern "${arg.text}" matches no file`);
        for (const m of matches) readOne(shown(m), undefined, arg.pos);
      } else {
        readOne(shown(pattern), undefined, arg.pos);
      }
    }
  };

  readOne(path, text, undefined);
  return { tokens, files };
}
