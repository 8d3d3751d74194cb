// Differential CLI suite: the same ipvsadm command sequences run against the real kernel IPVS with
// the real ipvsadm 1.31 (qemu microvm, test/oracle/vm.ts) and against tvsadm + a real tvsd child
// (packet data plane in a namespace: "[tvsd]") and tvsadm + the in-process Director with no data
// plane ("[director]": CLI and control logic alone, not hidden by data-plane limits);
// stdout, stderr and the exit code of every command, and the final `-S -n` state, must be equal byte
// for byte. Sequences: tvsadm's golden cases (those that plant no fake counters), the hand-written
// k-* sequences (sequences.ts) and seeded random sequences (random-sequences.ts; ORACLE_SEED and
// ORACLE_RANDOM=count override). Every mismatch is also written to
// .cache/ipvs-oracle/cli-mismatches.md for docs/compat.md.

import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, type TestContext, test } from "node:test";
import { type Case, loadTvsadmCases, type Observed } from "./cases.ts";
import { GUEST_RESET, guestSetupScript } from "./guest-env.ts";
import { isDataPlaneLimit, KNOWN_CLI_DIFFERENCES } from "./known-differences.ts";
import { generateSequences } from "./random-sequences.ts";
import { handSequences } from "./sequences.ts";
import { DirectorSide, TvsSide } from "./tvs-side.ts";
import { KernelVm, oracleCache, shq } from "./vm.ts";

/** tvsadm's own extensions: the kernel's ipvsadm rejects them by design (see docs/compat.md). */
const EXTENSIONS = ["--json", "--fullnat", "--socket"];
const usesExtension = (c: Case) => c.steps.some((s) => s.args.some((a) => EXTENSIONS.some((e) => a.startsWith(e))));

const seed = Number(process.env.ORACLE_SEED ?? 20261121);
const randomCount = Number(process.env.ORACLE_RANDOM ?? 40);

const only = process.env.ORACLE_FILTER;
const cases: Case[] = [
  ...loadTvsadmCases().filter((c) => c.unreproducible.length === 0 && !usesExtension(c)),
  ...handSequences(),
  ...generateSequences(seed, randomCount, 10),
].filter((c) => !only || c.name.includes(only));

function commandLine(program: string, args: readonly string[]): string {
  return [program, ...args].map(shq).join(" ");
}

async function onKernel(vm: KernelVm, c: Case): Promise<Observed[]> {
  // Everything is sent at once; the guest answers in order.
  const reset = vm.run(GUEST_RESET);
  const runs = c.steps.map((s) => {
    const cmd = commandLine(s.program ?? "ipvsadm", s.args);
    return vm.run(s.stdin === undefined ? cmd : `printf '%s' ${shq(s.stdin)} | ${cmd}`);
  });
  const state = vm.run("ipvsadm -S -n");
  await reset;
  const results = await Promise.all([...runs, state]);
  return results.map((r, i) => ({
    command: i < c.steps.length ? commandLine("ipvsadm", c.steps[i]?.args ?? []) : "ipvsadm -S -n",
    ...r,
  }));
}

async function onTvs(tvs: TvsSide | DirectorSide, c: Case): Promise<Observed[]> {
  await tvs.reset();
  const out: Observed[] = [];
  for (const s of c.steps) {
    const opts: { stdin?: string; program?: string } = {};
    if (s.stdin !== undefined) opts.stdin = s.stdin;
    if (s.program !== undefined) opts.program = s.program;
    out.push({ command: commandLine("ipvsadm", s.args), ...(await tvs.tvsadm(s.args, opts)) });
  }
  out.push({ command: "ipvsadm -S -n", ...(await tvs.tvsadm(["-S", "-n"])) });
  return out;
}

function describeMismatch(title: string, c: Case, k: Observed[], t: Observed[]): string {
  let s = `### ${title}${c.comment ? ` — ${c.comment}` : ""}\n\n`;
  for (let i = 0; i < k.length; i++) {
    const a = k[i];
    const b = t[i];
    if (!a || !b) continue;
    if (a.code === b.code && a.stdout === b.stdout && a.stderr === b.stderr) continue;
    s += `\`${a.command}\`\n\n`;
    if (a.code !== b.code) s += `- exit: kernel ${a.code}, tvs ${b.code}\n`;
    if (a.stdout !== b.stdout) s += `- stdout: kernel ${JSON.stringify(a.stdout)}\n  tvs ${JSON.stringify(b.stdout)}\n`;
    if (a.stderr !== b.stderr) s += `- stderr: kernel ${JSON.stringify(a.stderr)}\n  tvs ${JSON.stringify(b.stderr)}\n`;
    s += "\n";
    break; // the first differing command; later ones usually follow from it
  }
  return s;
}

describe("ipvsadm CLI: tvsadm + tvsd against kernel IPVS + ipvsadm 1.31", { timeout: 3_600_000 }, () => {
  let vm: KernelVm;
  let tvs: TvsSide;
  const director = new DirectorSide();
  const mismatches: string[] = [];

  before(async () => {
    [vm, tvs] = await Promise.all([KernelVm.boot(), TvsSide.start()]);
    const setup = await vm.run(guestSetupScript());
    assert.equal(setup.code, 0, `Guest setup failed: ${setup.stderr}`);
  });

  after(async () => {
    await Promise.allSettled([vm?.close(), tvs?.stop()]);
    mkdirSync(oracleCache, { recursive: true });
    writeFileSync(
      join(oracleCache, "cli-mismatches.md"),
      `# CLI mismatches (seed ${seed}, ${cases.length} sequences)\n\n${mismatches.join("")}`,
    );
  });

  const compare = (t: TestContext, target: "tvsd" | "director", c: Case, k: Observed[], u: Observed[]) => {
    const first = k.findIndex((o, i) => {
      const v = u[i];
      return v === undefined || o.code !== v.code || o.stdout !== v.stdout || o.stderr !== v.stderr;
    });
    if (first >= 0) {
      mismatches.push(describeMismatch(`${c.name} [${target}]`, c, k, u));
      const known = KNOWN_CLI_DIFFERENCES[c.name];
      if (known && (known.target === "*" || known.target === target)) t.todo(`${known.kind}: ${known.reason}`);
      else if (target === "tvsd" && isDataPlaneLimit(u[first]?.stderr ?? ""))
        t.todo(`tvsd data-plane limit: ${u[first]?.stderr.trim()}`);
    }
    assert.deepEqual(u, k, `${target} differs from the kernel in "${c.name}"`);
  };

  for (const c of cases) {
    // One kernel run per case, compared with both tvs targets.
    let kernel: Promise<Observed[]> | undefined;
    const onK = () => (kernel ??= onKernel(vm, c));
    test(`${c.name} [tvsd]`, async (t) => compare(t, "tvsd", c, await onK(), await onTvs(tvs, c)));
    test(`${c.name} [director]`, async (t) => compare(t, "director", c, await onK(), await onTvs(director, c)));
  }

  test("the real tvsadm binary (TVS_SOCKET) answers like ipvsadm for a small sequence", async () => {
    const seqs: { args: string[]; stdin?: string }[] = [
      { args: ["-A", "-t", "10.0.0.1:80", "-s", "rr"] },
      { args: ["-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1:80", "-m", "-w", "2"] },
      { args: ["-A", "-t", "10.0.0.1:80", "-s", "rr"] },
      { args: ["-d", "-t", "10.0.0.1:80", "-r", "10.1.0.9:80"] },
      { args: ["-R"], stdin: "-A -u 10.0.0.2:53 -s sh\n" },
      { args: ["-L", "-n"] },
      { args: ["-S", "-n"] },
      { args: ["-L", "-n", "--timeout"] },
      { args: ["-a", "-t", "10.0.0.1:80", "-r", "10.1.0.2", "-w", "x"] },
    ];
    await vm.run(GUEST_RESET);
    await tvs.reset();
    for (const s of seqs) {
      const cmd = commandLine("ipvsadm", s.args);
      const k = await vm.run(s.stdin === undefined ? cmd : `printf '%s' ${shq(s.stdin)} | ${cmd}`);
      const t = await tvs.binary(s.args, s.stdin === undefined ? {} : { stdin: s.stdin });
      assert.deepEqual(t, k, `bin/tvsadm.js ${s.args.join(" ")}`);
    }
  });
});
