// Loads a director configuration, keepalived.conf or ldirectord.cf, into one DirectorConfig. The
// format is taken from the file name when it says (".cf", "ldirectord" → ldirectord; "keepalived"
// or ".conf" → keepalived) and otherwise from the content (ldirectord's `virtual=` lines versus
// keepalived's `{` blocks). Never throws: a broken configuration comes back as diagnostics, so a
// running daemon can refuse a reload with the same messages `tvs check-config` prints.

import { basename } from "node:path";
import { type Diagnostic, Diagnostics } from "./diagnostics.ts";
import type { ConfigFormat, DirectorConfig } from "./director-config.ts";
import { buildKeepalived } from "./keepalived/build.ts";
import { buildLdirectord } from "./ldirectord/parser.ts";
import { readConfigFile } from "./read-config-file.ts";

export type LoadResult = { config: DirectorConfig; diagnostics: Diagnostic[] } | { diagnostics: Diagnostic[] };

/** Guess the format from a file name and its text. */
export function detectFormat(path: string, text: string): ConfigFormat {
  const name = basename(path).toLowerCase();
  if (name.includes("ldirectord") || name.endsWith(".cf")) return "ldirectord";
  if (name.includes("keepalived")) return "keepalived";
  // One pass over the lines, each tested on its own: a multiline regex over the whole text can
  // retry from every line start and turn a long file of comments into quadratic work.
  const ldirectordLine = /^(virtual6?|checktimeout|checkinterval|quiescent|autoreload)\s*=/;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trimStart();
    if (line !== "" && line[0] !== "#" && line[0] !== "!" && ldirectordLine.test(line)) return "ldirectord";
    start = end + 1;
  }
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
  const got = readConfigFile(path);
  if ("error" in got) {
    const d = new Diagnostics();
    d.error({ file: path, line: 1, column: 1 }, `Cannot read configuration file "${path}" (${got.error})`);
    return { diagnostics: d.list };
  }
  return loadConfigText(path, got.text, format);
}
