// The shape every `tvs lab` experiment has: the options it takes beyond the common ones (--json,
// --keep, --addresses, --help), and a run() that prints what the seed prints as it goes (through
// the context's log, silent under --json) and returns one JSON-able summary and a verdict. The
// `tvs lab` command parses argv against these options, so an experiment never touches argv.

import type { AddressPlan } from "./addresses.ts";

export type LabOptionSpec = { type: "string"; default?: string; help: string } | { type: "boolean"; help: string };

export type LabValues = Record<string, string | boolean | undefined>;

export interface LabContext {
  /** Progress lines (the commands typed, the tables printed); a no-op under --json. */
  log(line: string): void;
  /** Leave the namespaces and processes running (--keep). */
  keep: boolean;
  /** The seed whose addresses the topology uses (--addresses). */
  addresses: AddressPlan;
}

export interface LabOutcome {
  /** True when the experiment showed what the seed shows; the command exits 0 then, else 1. */
  ok: boolean;
  /** What --json prints (one line). */
  summary: object;
}

export interface LabExperiment {
  /** Options beyond the common ones, by long name (without the dashes). */
  options: Record<string, LabOptionSpec>;
  run(values: LabValues, ctx: LabContext): Promise<LabOutcome>;
}

/** One line of the registry: what `tvs lab --list` prints, and how to load the experiment. */
export interface LabEntry {
  name: string;
  /** The seed article it reproduces, as "seed 003" or "seeds 001+003". */
  seed: string;
  /** One line: what it shows. */
  summary: string;
  load(): Promise<LabExperiment>;
}
