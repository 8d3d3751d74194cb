// tvsadm against the real thing: test/golden/kernel/*.txt hold what ipvsadm 1.31 printed on a
// Debian 6.1 kernel for the commands of our golden cases (captured by test/oracle). Each capture is
// replayed here, command by command, on a fresh in-process Director, and exit status, stdout and
// stderr must match byte for byte (listings with names too: the VM knows the harness's host names).
// Deliberate deviations are listed in KNOWN (whole captures) and KNOWN_STEPS (single commands),
// each with its reason.

import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { main } from "../../../src/cli/tvsadm/main.ts";
import { DirectorClient, FakeSync, testBed, testResolver } from "./harness.ts";

const dir = join(import.meta.dirname, "..", "kernel");

interface Step {
  argv: string[];
  stdin: string | undefined;
  exit: number;
  stdout: string;
  stderr: string;
}

/** Case → reason; these captures are skipped whole. */
const KNOWN: Record<string, string> = {
  "add-server-fullnat": "--fullnat is a tvsadm extension (ipvsadm has no FULLNAT)",
  "help-tvsadm": "the capture ran as ipvsadm; this case runs as tvsadm (argv[0] in the usage)",
  "list-json": "--json is a tvsadm extension",
  "list-timeout-json": "--json is a tvsadm extension",
  "restore-ok":
    "ipvsadm -R has no comments (a '#' line becomes arguments and fails with the Try line); tvsadm skips comments",
  "restore-refused":
    "ipvsadm -R applies line by line, reports a refused line and goes on (exit 0); tvsadm -R is atomic and exits 255",
  "k-list-nosort":
    "--nosort lists services in the kernel's hash-bucket order, salted by a kernel pointer (differs per boot); tvsd lists them in creation order (destinations do match: newest first)",
  "k-daemon":
    "the kernel's sync daemon rounds a backup's maxlen and checks the interface (ENODEV); the harness's stand-in sync does neither (tvsd's sync owns that)",
  "restore-list-line": "ipvsadm -R runs a listing line; tvsadm -R accepts only table-changing lines",
  "restore-bad-line":
    "tvsadm -R names the failing line after ipvsadm's message (atomic restore: nothing applied); ipvsadm prints only the message",
};

function parseCapture(text: string): Step[] {
  const steps: Step[] = [];
  const parts = text.split(/^=== /m).slice(1);
  for (const p of parts) {
    const nl = p.indexOf("\n");
    const cmd = p.slice(0, nl);
    const body = p.slice(nl + 1);
    const m = /^(?:--- stdin\n([\s\S]*?))?--- exit (\d+)\n--- stdout\n([\s\S]*?)--- stderr\n([\s\S]*)$/.exec(body);
    if (!m) throw new Error(`Cannot read capture step "${cmd}"`);
    const argv = shellWords(cmd).slice(1);
    steps.push({ argv, stdin: m[1], exit: Number(m[2]), stdout: m[3] as string, stderr: m[4] as string });
  }
  return steps;
}

/** Split a captured command line as the shell did: blanks, 'single' and "double" quotes, \escapes. */
function shellWords(line: string): string[] {
  const out: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (c === " " || c === "\t") {
      if (word !== undefined) out.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      const end = line.indexOf('"', i + 1);
      word = (word ?? "") + line.slice(i + 1, end);
      i = end;
    } else if (c === "\\") {
      word = (word ?? "") + (line[i + 1] ?? "");
      i++;
    } else word = (word ?? "") + c;
  }
  if (word !== undefined) out.push(word);
  return out;
}

/**
 * Single commands the kernel answers differently on purpose; they are not run here (the kernel
 * refused them, so leaving them out keeps the two tables alike for the steps that follow).
 */
const KNOWN_STEPS: Record<string, Record<string, string>> = {
  "k-schedulers": { "-A -t 10.0.2.1:80 -s twos": "kernel 6.1 has no twos scheduler (6.12 has; tvs does)" },
  "k-persistence": {
    "-A -t 10.0.4.6:80 -p 60 -M 24":
      "ipvsadm takes -M 24 as the mask 0.0.0.24; tvs keeps persistence masks as prefix lengths and refuses masks with holes",
    "-A -t 10.0.4.8:80 -p 60 -M 255.0.255.0": "a mask with holes (see above)",
  },
};

/** Output lines about the services of skipped steps, left out of the kernel's output before comparing. */
const DROP_LINES: Record<string, RegExp> = { "k-persistence": /10\.0\.4\.[68]:/ };

const captures = existsSync(dir)
  ? readdirSync(dir)
      .filter((f) => f.endsWith(".txt"))
      .sort()
  : [];

for (const file of captures) {
  const name = file.slice(0, -4);
  test(`tvsadm agrees with ipvsadm 1.31 on the kernel: ${name}`, { skip: KNOWN[name] }, async () => {
    const steps = parseCapture(readFileSync(join(dir, file), "utf8"));
    // The oracle VM has the harness's host names in its /etc/hosts, and the ports the cases use
    // have the same names in its /etc/services as in the harness's table.
    const resolver = testResolver();
    const bed = await testBed();
    bed.director.sync = new FakeSync();
    const client = new DirectorClient(bed.director);
    for (const s of steps) {
      if (KNOWN_STEPS[name]?.[s.argv.join(" ")]) continue;
      let out = "";
      let err = "";
      const code = await main(s.argv, {
        client,
        stdout: { write: (x: string) => (out += x) },
        stderr: { write: (x: string) => (err += x) },
        resolver,
        program: "ipvsadm",
        readStdin: async () => s.stdin ?? "",
      });
      const what = `ipvsadm ${s.argv.join(" ")}`;
      const drop = DROP_LINES[name];
      const expected = drop
        ? s.stdout
            .split(/(?<=\n)/)
            .filter((l) => !drop.test(l))
            .join("")
        : s.stdout;
      assert.equal(code, s.exit, `${what}: exit status`);
      assert.equal(err, s.stderr, `${what}: stderr`);
      assert.equal(out, expected, `${what}: stdout`);
    }
  });
}
