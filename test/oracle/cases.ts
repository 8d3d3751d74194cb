// Scripted ipvsadm sequences for the kernel oracle: the tvsadm golden case files
// (test/golden/tvsadm/cases/*.case) read as plain command sequences, and the captured kernel
// transcript format of test/golden/kernel/*.txt (write and read).
//
// A case file has "setup <args>" (must succeed), "run <args>" (the command under test), "program
// <name>" (argv[0]), "stdin" … "end" (stdin of the next run), "sync" (sync daemons may be started),
// and "conn/stats/rates/dconns" lines that plant fake counters in tvsadm's harness. The kernel cannot
// plant those: such lines are kept as notes, and the outputs that depend on them will differ.

import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface Step {
  kind: "setup" | "run";
  args: string[];
  stdin?: string;
  program?: string;
}

export interface Case {
  name: string;
  comment: string;
  steps: Step[];
  /** Lines the kernel cannot reproduce (fake counters and connections). */
  unreproducible: string[];
}

const FAKE = new Set(["conn", "stats", "rates", "dconns"]);

export function parseCase(name: string, text: string): Case {
  const lines = text.split("\n");
  const steps: Step[] = [];
  const unreproducible: string[] = [];
  let comment = "";
  let stdin: string | undefined;
  let program: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line.startsWith("#")) {
      if (!comment) comment = line.slice(1).trim();
      continue;
    }
    if (line.trim() === "") continue;
    const [word, ...args] = line.trim().split(/\s+/) as [string, ...string[]];
    if (word === "stdin") {
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== "end"; i++) body.push(lines[i] ?? "");
      stdin = body.length ? `${body.join("\n")}\n` : "";
    } else if (word === "program") program = args[0];
    else if (word === "sync") continue;
    else if (FAKE.has(word)) unreproducible.push(line.trim());
    else if (word === "setup" || word === "run") {
      const step: Step = { kind: word, args };
      if (word === "run" && stdin !== undefined) step.stdin = stdin;
      if (word === "run" && program !== undefined) step.program = program;
      steps.push(step);
      if (word === "run") stdin = undefined;
    } else throw new Error(`Unknown line "${line}" in case "${name}"`);
  }
  return { name, comment, steps, unreproducible };
}

export const tvsadmCaseDir = join(import.meta.dirname, "..", "golden", "tvsadm", "cases");

export function loadTvsadmCases(dir = tvsadmCaseDir): Case[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith(".case"))
    .sort()
    .map((f) => parseCase(f.slice(0, -5), readFileSync(join(dir, f), "utf8")));
}

/** One command's observed result, as in a kernel transcript. */
export interface Observed {
  command: string;
  stdin?: string;
  code: number;
  stdout: string;
  stderr: string;
}

function block(title: string, text: string): string {
  if (text === "") return `--- ${title}\n`;
  return text.endsWith("\n") ? `--- ${title}\n${text}` : `--- ${title} (no newline at end)\n${text}\n`;
}

/**
 * Transcript format: "#" header lines, then per command
 *   "=== <command line>" [ "--- stdin" lines ] "--- exit N" "--- stdout" lines "--- stderr" lines
 * A block's title says "(no newline at end)" when its text did not end in a newline.
 */
export function formatTranscript(header: string[], observed: Observed[]): string {
  let s = header.map((h) => `# ${h}\n`).join("");
  for (const o of observed) {
    s += `=== ${o.command}\n`;
    if (o.stdin !== undefined) s += block("stdin", o.stdin);
    s += `--- exit ${o.code}\n` + block("stdout", o.stdout) + block("stderr", o.stderr);
  }
  return s;
}

export function parseTranscript(text: string): Observed[] {
  const out: Observed[] = [];
  let cur: Observed | undefined;
  let field: "stdin" | "stdout" | "stderr" | undefined;
  let noNl = false;
  const finish = () => {
    if (cur && field && noNl) cur[field] = (cur[field] ?? "").replace(/\n$/, "");
    field = undefined;
    noNl = false;
  };
  for (const line of text.split("\n").slice(0, text.endsWith("\n") ? -1 : undefined)) {
    if (line.startsWith("=== ")) {
      finish();
      cur = { command: line.slice(4), code: -1, stdout: "", stderr: "" };
      out.push(cur);
    } else if (!cur) continue;
    else if (line.startsWith("--- exit ")) {
      finish();
      cur.code = Number(line.slice(9));
    } else if (/^--- (stdin|stdout|stderr)( \(no newline at end\))?$/.test(line)) {
      finish();
      field = line.split(" ")[1] as "stdin" | "stdout" | "stderr";
      noNl = line.includes("no newline");
      cur[field] = "";
    } else if (field) cur[field] = `${cur[field] ?? ""}${line}\n`;
  }
  finish();
  return out;
}
