// `tvs lab nat|dr|tun|fullnat [--real-servers N] [--scheduler S] [--weights 2,1] [--requests N]
// [--workers N] [--keep] [--json]`: reproduces a seed experiment in network namespaces and prints what the
// seeds print (the commands, the curl loop, the distribution, tvsadm -L -n --stats), or one JSON
// summary with --json.

import { parseArgs } from "node:util";
import { isRoot } from "../../lab/exec.ts";
import { runExperiment } from "../../lab/experiment.ts";
import { LAB_MODES, type LabMode } from "../../lab/topology.ts";

const USAGE =
  "Usage: tvs lab nat|dr|tun|fullnat [--real-servers N] [--scheduler S] [--weights 2,1] [--requests N] [--workers N] [--keep] [--json]\n";

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (e) {
    process.stderr.write(`tvs lab: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (parsed === "help") {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!isRoot()) {
    process.stderr.write("tvs lab: needs root (it creates network namespaces); run it with sudo\n");
    return 1;
  }
  const { json, ...opts } = parsed;
  const log = json ? undefined : (line: string) => process.stdout.write(`${line}\n`);
  try {
    const summary = await runExperiment({ ...opts, ...(log ? { log } : {}) });
    if (json) {
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    } else {
      process.stdout.write("\n# distribution\n");
      for (const [name, n] of Object.entries(summary.counts)) {
        const pct = summary.requests ? ((100 * n) / summary.requests).toFixed(1) : "0.0";
        process.stdout.write(`${name}: ${n} (${pct}%)\n`);
      }
      if (summary.failures) process.stdout.write(`failed: ${summary.failures}\n`);
      process.stdout.write(`\n# tvsadm -L -n --stats\n${summary.stats}`);
      process.stdout.write(
        `\n# replies bypassed the director: ${summary.repliesBypassedDirector ? "yes" : "no"} (tvsd OutPkts ${summary.directorOutPackets}, captured replies ${summary.capturedReplyPackets})\n`,
      );
      if (opts.keep) process.stdout.write(`# kept namespaces: ${summary.namespaces.join(" ")}\n`);
    }
    return summary.failures === 0 ? 0 : 1;
  } catch (e) {
    process.stderr.write(`tvs lab: ${(e as Error).message}\n`);
    return 1;
  }
}

function parse(argv: string[]) {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      "real-servers": { type: "string", default: "2" },
      scheduler: { type: "string", short: "s", default: "rr" },
      weights: { type: "string" },
      requests: { type: "string", default: "10" },
      workers: { type: "string", default: "1" },
      keep: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return "help" as const;
  const mode = positionals[0];
  if (positionals.length !== 1 || !LAB_MODES.includes(mode as LabMode))
    throw new Error(`Mode "${positionals.join(" ")}" must be one of ${LAB_MODES.join(", ")}`);
  const realServers = positiveInt(values["real-servers"], "--real-servers");
  const requests = positiveInt(values.requests, "--requests");
  const weights = values.weights === undefined ? [] : values.weights.split(",").map((w) => nonNegInt(w, "--weights"));
  if (weights.length > realServers) throw new Error(`--weights "${values.weights}" has more weights than real servers`);
  return {
    mode: mode as LabMode,
    realServers,
    scheduler: values.scheduler,
    weights,
    requests,
    workers: positiveInt(values.workers, "--workers"),
    keep: values.keep,
    json: values.json,
  };
}

function positiveInt(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${flag} "${v}" must be a positive integer`);
  return n;
}

function nonNegInt(v: string, flag: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n)) throw new Error(`${flag} value "${v}" must be a non-negative integer`);
  return n;
}
