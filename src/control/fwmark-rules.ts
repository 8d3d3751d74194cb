// tvsd's firewall-mark rules: where they come from and how they are shown. The rules are given by
// `--fwmark-rule 'tcp 10.0.0.1 80,443 mark 1'` (repeatable) and `--fwmark-rules FILE`
// (repeatable; one rule per line, # comments), in command-line order; files are read again on
// every reload (SIGHUP, POST /v1/reload), and a file with any bad line refuses the reload with
// every FILE:LINE:COL error while the rules in force stay. The packet plane classifies frames
// with them (dataplane/packet/packet-marks.ts); GET /v1/fwmark and `tvs fwmark` show them with
// the fwmark service each one feeds.

import { readConfigFile } from "../config/read-config-file.ts";
import { fwmarkServiceSet, marksWithoutRules, ruleReachesService } from "../core/fwmark/coverage.ts";
import {
  type FwmarkRule,
  FwmarkRuleError,
  formatFwmarkRule,
  formatPorts,
  formatPrefix,
  parseFwmarkRule,
} from "../core/fwmark/rule.ts";
import { formatFwmarkRulesError, MAX_FWMARK_RULES, parseFwmarkRulesText } from "../core/fwmark/rules-text.ts";
import type { ServiceKey } from "../core/service.ts";
import { serviceKeyId } from "../core/service-key.ts";
import type { FwmarkView } from "./api/protocol.ts";

/** One source of rules, in command-line order. */
export type FwmarkRuleSource = { kind: "rule"; rule: FwmarkRule } | { kind: "file"; path: string };

/** `--fwmark-rule TEXT` (the n-th): the rule, or an Error naming the option and column. */
export function parseFwmarkRuleOption(text: string, n: number): FwmarkRule {
  try {
    return parseFwmarkRule(text, `--fwmark-rule ${n}`);
  } catch (e) {
    if (e instanceof FwmarkRuleError)
      throw new Error(`Invalid --fwmark-rule "${text}" at column ${e.col}: ${e.message}`);
    throw e;
  }
}

/** Read every source now; throws one Error listing every problem (FILE:LINE:COL: message). */
export function loadFwmarkRules(sources: readonly FwmarkRuleSource[]): FwmarkRule[] {
  const rules: FwmarkRule[] = [];
  const problems: string[] = [];
  for (const s of sources) {
    if (s.kind === "rule") {
      rules.push(s.rule);
      continue;
    }
    const got = readConfigFile(s.path);
    if ("error" in got) {
      problems.push(`Cannot read fwmark rules file "${s.path}" (${got.error})`);
      continue;
    }
    const r = parseFwmarkRulesText(got.text, s.path);
    if ("errors" in r) problems.push(...r.errors.map(formatFwmarkRulesError));
    else rules.push(...r.rules);
  }
  if (problems.length === 0 && rules.length > MAX_FWMARK_RULES)
    problems.push(`Too many firewall-mark rules (${rules.length}; at most ${MAX_FWMARK_RULES})`);
  if (problems.length > 0) throw new Error(problems.join("; "));
  return rules;
}

/** GET /v1/fwmark's answer. */
export function fwmarkView(
  rules: readonly FwmarkRule[],
  keys: readonly ServiceKey[],
  plane: { supported: boolean; note?: string },
): FwmarkView {
  const served = fwmarkServiceSet(keys);
  const fw = keys.filter((k): k is Extract<ServiceKey, { kind: "fwmark" }> => k.kind === "fwmark");
  return {
    supported: plane.supported,
    ...(plane.note !== undefined ? { note: plane.note } : {}),
    rules: rules.map((r, i) => ({
      n: i + 1,
      text: formatFwmarkRule(r),
      protocol: r.protocol,
      dst: formatPrefix(r.dst),
      ports: formatPorts(r.ports),
      ...(r.src ? { src: formatPrefix(r.src) } : {}),
      mark: r.mark,
      origin: r.origin,
      service: ruleReachesService(r, served)
        ? serviceKeyId({ kind: "fwmark", fwmark: r.mark, family: r.dst.family })
        : null,
    })),
    services: fw.map((k) => ({
      id: serviceKeyId(k),
      fwmark: k.fwmark,
      family: k.family,
      rules: rules.filter((r) => r.mark === k.fwmark && r.dst.family === k.family).length,
    })),
    warnings: plane.supported
      ? marksWithoutRules(keys, rules).map(
          (m) =>
            `FWM ${m.fwmark}${m.family === 6 ? " IPv6" : ""}: no rule sets mark ${m.fwmark} for IPv${m.family}, so no traffic reaches this service`,
        )
      : [],
  };
}
