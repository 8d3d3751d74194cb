// Loads a director configuration, keepalived.conf or ldirectord.cf, into one DirectorConfig. The
// format is taken from the file name when it says (".cf", "ldirectord" → ldirectord; "keepalived"
// or ".conf" → keepalived) and otherwise from the content (ldirectord's `virtual=` lines versus
// keepalived's `{` blocks). Never throws: a broken configuration comes back as diagnostics, so a
// running daemon can refuse a reload with the same messages `tvs check-config` prints.

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { type Diagnostic, Diagnostics } from "./diagnostics.ts";
import type { ConfigFormat, DirectorConfig } from "./director-config.ts";
import { buildKeepalived } from "./keepalived/build.ts";
import { buildLdirectord } from "./ldirectord/parser.ts";

export type LoadResult = { config: DirectorConfig; diagnostics: Diagnostic[] } | { diagnostics: Diagnostic[] };

/** Guess the format from a file name and its text. */
export function detectFormat(path: string, text: string): ConfigFormat {
  const name = basename(path).toLowerCase();
  if (name.includes("ldirectord") || name.endsWith(".cf")) return "ldirectord";
  if (name.includes("keepalived")) return "keepalived";
  const body = text.replace(/^\s*[#!].*$/gm, "");
  if (/^\s*virtual6?\s*=/m.test(body) || /^\s*(checktimeout|checkinterval|quiescent|autoreload)\s*=/m.test(body))
    return "ldirectord";
  return "keepalived";
}

/**
 * Parse configuration text (includes are read from disk relative to `path`). With errors the result
 * has only diagnostics; otherwise the config and the warnings.
 */
export function loadConfigText(path: string, text: string, format?: ConfigFormat): LoadResult {
  try {
    const fmt = format ?? detectFormat(path, text);
    const { config, diagnostics } = fmt === "keepalived" ? buildKeepalived(path, text) : buildLdirectord(path, text);
    if (diagnostics.hasErrors) return { diagnostics: diagnostics.list };
    return { config, diagnostics: diagnostics.list };
  } catch (e) {
    const d = new Diagnostics();
    d.error({ file: path, line: 1, column: 1 }, `Internal error while reading the configuration: ${String(e)}`);
    return { diagnostics: d.list };
  }
}

/** Read and parse a configuration file. Never throws. */
export function loadConfig(path: string, format?: ConfigFormat): LoadResult {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code ?? String(e);
    const d = new Diagnostics();
    d.error({ file: path, line: 1, column: 1 }, `Cannot read configuration file "${path}" (${why})`);
    return { diagnostics: d.list };
  }
  return loadConfigText(path, text, format);
}
