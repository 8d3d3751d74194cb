// A firewall-mark rules file (tvsd --fwmark-rules FILE): one rule per line in rule.ts's grammar,
// `#` starts a comment (to the end of the line), blank lines are skipped. Every bad line is
// reported, each as FILE:LINE:COL: message, so one run of `tvsd` names all of them; a file with
// any error yields no rules at all (a reload keeps the rules in force).

import { type FwmarkRule, FwmarkRuleError, parseFwmarkRule } from "./rule.ts";

/** The most rules tvs takes (all sources together). */
export const MAX_FWMARK_RULES = 4096;

export interface FwmarkRulesError {
  file: string;
  line: number;
  col: number;
  message: string;
}

export function formatFwmarkRulesError(e: FwmarkRulesError): string {
  return `${e.file}:${e.line}:${e.col}: ${e.message}`;
}

/** Rules of a file's text, or every error in it. */
export function parseFwmarkRulesText(
  text: string,
  file: string,
): { rules: FwmarkRule[] } | { errors: FwmarkRulesError[] } {
  const rules: FwmarkRule[] = [];
  const errors: FwmarkRulesError[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const hash = raw.indexOf("#");
    const body = hash === -1 ? raw : raw.slice(0, hash);
    if (body.trim() === "") return;
    try {
      rules.push(parseFwmarkRule(body, `${file}:${line}`));
    } catch (e) {
      if (!(e instanceof FwmarkRuleError)) throw e;
      errors.push({ file, line, col: e.col, message: e.message });
    }
  });
  if (errors.length === 0 && rules.length > MAX_FWMARK_RULES)
    errors.push({ file, line: 1, col: 1, message: `Too many rules (${rules.length}; at most ${MAX_FWMARK_RULES})` });
  return errors.length > 0 ? { errors } : { rules };
}
