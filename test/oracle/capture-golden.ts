// Captures real outputs from the kernel oracle into test/golden/kernel/<name>.txt: every tvsadm
// golden case (test/golden/tvsadm/cases) and every hand-written sequence of sequences.ts, each run
// on an empty table, each command followed by nothing else; a case ends with `ipvsadm -S -n` so
// the resulting state is captured too. Prints a summary of where tvsadm's .expected files differ
// from the kernel.
// Usage: node --import tsx test/oracle/capture-golden.ts [name-filter]

import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Case, formatTranscript, loadTvsadmCases, type Observed, tvsadmCaseDir } from "./cases.ts";
import { GUEST_RESET, guestSetupScript } from "./guest-env.ts";
import { handSequences } from "./sequences.ts";
import { KernelVm, shq } from "./vm.ts";

const outDir = join(import.meta.dirname, "..", "golden", "kernel");

/** Runs one case on an empty table; returns the transcript entries (setups, run, final -S -n). */
export async function runCaseOnKernel(vm: KernelVm, c: Case): Promise<Observed[]> {
  await vm.run(GUEST_RESET);
  const observed: Observed[] = [];
  for (const step of c.steps) {
    const argv0 = step.program ?? "ipvsadm";
    const command = [argv0, ...step.args].map(shq).join(" ");
    const script = step.stdin === undefined ? command : `printf '%s' ${shq(step.stdin)} | ${command}`;
    const r = await vm.run(script);
    const o: Observed = { command, code: r.code, stdout: r.stdout, stderr: r.stderr };
    if (step.stdin !== undefined) o.stdin = step.stdin;
    observed.push(o);
  }
  const s = await vm.run("ipvsadm -S -n");
  observed.push({ command: "ipvsadm -S -n", code: s.code, stdout: s.stdout, stderr: s.stderr });
  return observed;
}

function expectedOf(name: string): string | undefined {
  const f = join(tvsadmCaseDir, `${name}.expected`);
  return existsSync(f) ? readFileSync(f, "utf8") : undefined;
}

/** The kernel's answer in the layout of tvsadm's .expected files (the run, then the -S -n state). */
export function asExpected(observed: Observed[]): string {
  const state = observed[observed.length - 1];
  const runs = observed.slice(0, -1);
  const run = runs[runs.length - 1];
  if (!run || !state) return "";
  return (
    `--- exit ${run.code}\n--- stdout\n${run.stdout}--- stderr\n${run.stderr}` + `--- state (-S -n)\n${state.stdout}`
  );
}

async function main(): Promise<void> {
  const filter = process.argv[2];
  const cases = [...loadTvsadmCases().map((c) => ({ ...c, source: "tvsadm" })), ...handSequences()].filter(
    (c) => !filter || c.name.includes(filter),
  );
  mkdirSync(outDir, { recursive: true });
  const vm = await KernelVm.boot();
  const started = Date.now();
  let commands = 0;
  const differ: string[] = [];
  try {
    await vm.run(guestSetupScript());
    const version = (await vm.run("ipvsadm -v")).stdout.trim();
    for (const c of cases) {
      const observed = await runCaseOnKernel(vm, c);
      commands += observed.length;
      const header = [
        `Real output of ${version} on Linux ${vm.kernelRelease} (Debian), captured by test/oracle/capture-golden.ts`,
        `case: ${c.name}${"source" in c && c.source === "tvsadm" ? ` (test/golden/tvsadm/cases/${c.name}.case)` : ""}`,
        ...(c.comment ? [`about: ${c.comment}`] : []),
        ...c.unreproducible.map((l) => `not reproducible on the kernel (fake state in the tvsadm harness): ${l}`),
        "commands:",
        ...observed.map((o) => `  ${o.command}`),
      ];
      writeFileSync(join(outDir, `${c.name}.txt`), formatTranscript(header, observed));
      const exp = expectedOf(c.name);
      if (exp !== undefined && exp !== asExpected(observed)) differ.push(c.name);
    }
  } finally {
    await vm.close();
  }
  const ms = Date.now() - started;
  console.log(`boot ${vm.bootMs} ms; ${cases.length} cases, ${commands} commands in ${ms} ms`);
  console.log(`tvsadm .expected differing from the kernel (${differ.length}): ${differ.join(" ")}`);
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
