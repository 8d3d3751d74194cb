// `tvs lab --list` and `tvs lab NAME [options] [--addresses seed001|seed000] [--keep] [--json]`:
// runs one seed experiment from the registry in network namespaces. Options are parsed here
// against what the experiment declares; the experiment prints the seed's commands and tables as
// it goes, or, with --json, nothing but one JSON summary at the end.

import { parseArgs } from "node:util";
import { ADDRESS_PLANS, addressPlan } from "../../lab/addresses.ts";
import { isRoot } from "../../lab/exec.ts";
import type { LabEntry, LabExperiment } from "../../lab/lab-experiment.ts";
import { LabOptionError } from "../../lab/option-values.ts";
import { findExperiment, LAB_EXPERIMENTS } from "../../lab/registry.ts";

const COMMON = {
  addresses: { type: "string", default: "seed001" },
  keep: { type: "boolean", default: false },
  json: { type: "boolean", default: false },
  help: { type: "boolean", short: "h", default: false },
  list: { type: "boolean", default: false },
} as const;

function usage(): string {
  return `Usage: tvs lab --list
       tvs lab NAME [options] [--addresses ${ADDRESS_PLANS.map((p) => p.name).join("|")}] [--keep] [--json]
       tvs lab NAME --help
Experiments: ${LAB_EXPERIMENTS.map((e) => e.name).join(", ")}
`;
}

function listing(): string {
  const width = Math.max(...LAB_EXPERIMENTS.map((e) => e.name.length)) + 2;
  const seedWidth = Math.max(...LAB_EXPERIMENTS.map((e) => e.seed.length)) + 2;
  return LAB_EXPERIMENTS.map((e) => `${e.name.padEnd(width)}${e.seed.padEnd(seedWidth)}${e.summary}\n`).join("");
}

function experimentHelp(entry: LabEntry, exp: LabExperiment): string {
  const lines = [`Usage: tvs lab ${entry.name} [options]`, `${entry.seed}: ${entry.summary}`, "", "Options:"];
  for (const [name, o] of Object.entries(exp.options)) {
    const arg = o.type === "string" ? ` ${name.toUpperCase().replace(/-/g, "_")}` : "";
    const dflt = o.type === "string" && o.default !== undefined && o.default !== "" ? ` (default ${o.default})` : "";
    lines.push(`  --${name}${arg}`.padEnd(30) + `${o.help}${dflt}`);
  }
  lines.push(`  --addresses PLAN`.padEnd(30) + `the seed's addresses: ${ADDRESS_PLANS.map((p) => p.name).join(", ")}`);
  lines.push("  --keep".padEnd(30) + "leave the namespaces and processes running");
  lines.push("  --json".padEnd(30) + "print one JSON summary instead of the commands and tables");
  return `${lines.join("\n")}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const name = argv[0];
  if (name === undefined || name === "--list" || name === "-h" || name === "--help") {
    if (name === "--list") process.stdout.write(listing());
    else process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const entry = findExperiment(name);
  if (!entry) {
    process.stderr.write(`tvs lab: Unknown experiment "${name}" (tvs lab --list shows them)\n${usage()}`);
    return 2;
  }
  const exp = await entry.load();
  let values: Record<string, string | boolean | undefined>;
  try {
    const options: Record<string, { type: "string" | "boolean"; default?: string | boolean; short?: string }> = {
      ...COMMON,
    };
    for (const [k, o] of Object.entries(exp.options)) {
      if (k in COMMON) throw new Error(`Experiment "${name}" redeclares --${k}`);
      options[k] =
        o.type === "string" && o.default !== undefined ? { type: "string", default: o.default } : { type: o.type };
    }
    const parsed = parseArgs({ args: argv.slice(1), allowPositionals: true, options });
    if (parsed.positionals.length) throw new Error(`Unexpected argument "${parsed.positionals[0]}"`);
    values = parsed.values as Record<string, string | boolean | undefined>;
    if (values.list) throw new Error("--list takes no experiment name");
  } catch (e) {
    process.stderr.write(`tvs lab ${name}: ${(e as Error).message}\n${usage()}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(experimentHelp(entry, exp));
    return 0;
  }
  let addresses: ReturnType<typeof addressPlan>;
  try {
    addresses = addressPlan(String(values.addresses));
  } catch (e) {
    process.stderr.write(`tvs lab ${name}: ${(e as Error).message}\n`);
    return 2;
  }
  if (!isRoot()) {
    process.stderr.write("tvs lab: needs root (it creates network namespaces); run it with sudo\n");
    return 1;
  }
  const json = values.json === true;
  const log = json ? () => undefined : (line: string) => process.stdout.write(`${line}\n`);
  try {
    const outcome = await exp.run(values, { log, keep: values.keep === true, addresses });
    if (json) process.stdout.write(`${JSON.stringify(outcome.summary)}\n`);
    return outcome.ok ? 0 : 1;
  } catch (e) {
    process.stderr.write(`tvs lab ${name}: ${(e as Error).message}\n`);
    return e instanceof LabOptionError ? 2 : 1;
  }
}
