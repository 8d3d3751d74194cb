// The commands' own help, their man pages, the bash completion and docs/lab.md name the same things.
// The lists are read from the code (tvsd's argument parser and its --help text, tvs's subcommand
// table, the lab registry), never written out here, so a new option or subcommand that is not
// documented fails this test, and so does a documented one that no longer exists.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";
import { USAGE } from "../src/control/tvsd-main.ts";
import { LAB_EXPERIMENTS } from "../src/lab/registry.ts";

const root = resolve(import.meta.dirname, "..");
const read = (path: string) => readFileSync(join(root, path), "utf8");

/** The flags tvsd's parser accepts: the `case "--flag":` labels of parseTvsdArgs. */
function tvsdParserFlags(): Set<string> {
  const src = read("src/control/tvsd-main.ts");
  const start = src.indexOf("export function parseTvsdArgs(");
  assert.ok(start >= 0, "parseTvsdArgs is in src/control/tvsd-main.ts");
  const end = src.indexOf("\n}\n", start);
  const body = src.slice(start, end);
  return new Set([...body.matchAll(/case "(--?[a-z0-9-]+)":/g)].map((m) => m[1] as string));
}

/** The flags tvsd --help lists: each option line's leading flags. */
function tvsdHelpFlags(): Set<string> {
  const flags = new Set<string>();
  for (const line of USAGE.split("\n")) {
    const m = /^ {2}(-h, )?(--[a-z0-9-]+)/.exec(line);
    if (m === null) continue;
    if (m[1] !== undefined) flags.add("-h");
    flags.add(m[2] as string);
  }
  return flags;
}

/** A man page's section (from `.SH NAME` to the next `.SH`), with roff's `\-` read as `-`. */
function manSection(page: string, name: string): string {
  const text = read(page);
  const start = text.indexOf(`\n.SH ${name}\n`);
  assert.ok(start >= 0, `${page} has a ${name} section`);
  const next = text.indexOf("\n.SH ", start + 1);
  return text.slice(start, next < 0 ? undefined : next).replace(/\\-/g, "-");
}

test("every tvsd option is parsed, listed by tvsd --help and described in tvsd(8), and nothing else", () => {
  const parsed = tvsdParserFlags();
  const help = tvsdHelpFlags();
  const options = manSection("man/tvsd.8", "OPTIONS");
  const man = new Set(options.match(/--[a-z0-9-]*[a-z0-9]/g) ?? []);
  if (/^\.BR? -h\b/m.test(options)) man.add("-h");
  assert.ok(parsed.size > 30, `the parser's flags were found (${parsed.size})`);
  const missing = (from: Set<string>, to: Set<string>) => [...from].filter((f) => !to.has(f)).sort();
  assert.deepEqual(missing(parsed, help), [], "parsed by tvsd but not in tvsd --help");
  assert.deepEqual(missing(help, parsed), [], "in tvsd --help but not parsed");
  assert.deepEqual(missing(parsed, man), [], "parsed by tvsd but not in man/tvsd.8 OPTIONS");
  assert.deepEqual(missing(man, parsed), [], "in man/tvsd.8 OPTIONS but not an option of tvsd");
});

/** tvs's subcommands: the keys of SUBCOMMANDS in src/cli/tvs/main.ts. */
function tvsSubcommands(): string[] {
  const src = read("src/cli/tvs/main.ts");
  const start = src.indexOf("const SUBCOMMANDS");
  const end = src.indexOf("\n};\n", start);
  assert.ok(start >= 0 && end > start, "SUBCOMMANDS is in src/cli/tvs/main.ts");
  return [...src.slice(start, end).matchAll(/^ {2}"?([a-z][a-z-]*)"?: \{/gm)].map((m) => m[1] as string);
}

test("every tvs subcommand is in tvs(8) and the bash completion, and both name no other", () => {
  const subs = tvsSubcommands();
  assert.ok(subs.length >= 7, `the subcommands were found (${subs.join(", ")})`);
  const commands = manSection("man/tvs.8", "COMMANDS");
  const manSubs = [...commands.matchAll(/^\.TP\n\.B ([a-z][a-z-]*)$/gm)].map((m) => m[1] as string);
  assert.deepEqual([...manSubs].sort(), [...subs].sort(), "man/tvs.8 COMMANDS");
  const synopsis = manSection("man/tvs.8", "SYNOPSIS");
  for (const s of subs) assert.match(synopsis, new RegExp(`\\\\fBtvs ${s}\\b`), `man/tvs.8 SYNOPSIS shows tvs ${s}`);

  const completion = read("packaging/bash-completion/tvs");
  const first = /COMP_CWORD -eq 1[\s\S]*?compgen -W "([^"]*)"/.exec(completion);
  assert.ok(first !== null, "the completion has a first-word list");
  const words = (first[1] as string).split(/\s+/).filter((w) => !w.startsWith("-"));
  assert.deepEqual([...words].sort(), [...subs].sort(), "packaging/bash-completion/tvs first words");
  for (const s of subs)
    assert.match(completion, new RegExp(`^\\s+(?:[a-z-]+\\|)*${s}(?:\\|[a-z-]+)*\\)`, "m"), `a case for ${s}`);
});

test("every tvs lab experiment has its section in docs/lab.md", () => {
  const headings = read("docs/lab.md")
    .split("\n")
    .filter((l) => l.startsWith("## "));
  for (const e of LAB_EXPERIMENTS)
    assert.ok(
      headings.some((h) => new RegExp(`^## (?:[a-z, ]*\\b)?${e.name}\\b`).test(h)),
      `docs/lab.md has a "## ${e.name}..." heading (headings: ${headings.join(" | ")})`,
    );
});
