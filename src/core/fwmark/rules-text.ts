// A firewall-mark rules file (tvsd --fwmark-rules FILE): one rule per line in rule.ts's grammar,
// `#` starts a comment (to the end of the line), blank lines are skipped. Every bad line is
// reported, each as FILE:LINE:COL: message, so one run of `tvsd` names all of them (up to
// MAX_REPORTED_ERRORS: a file that is not a rules file at all, say a log or a binary given by
// mistake, stops there rather than building millions of messages); a file with any error yields
// no rules at all (a reload keeps the rules in force). Reading stops as soon as the file has more
// rules than tvs takes.

import { type FwmarkRule, FwmarkRuleError, parseFwmarkRule } from "./rule.ts";

/** The most rules tvs takes (all sources together). */
export const MAX_FWMARK_RULES = 4096;
/** Errors reported from one file before reading stops. */
export const MAX_REPORTED_ERRORS = 20;

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
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const raw = lines[index] as string;
    const line = index + 1;
    const hash = raw.indexOf("#");
    const body = hash === -1 ? raw : raw.slice(0, hash);
    if (body.trim() === "") continue;
    if (errors.length >= MAX_REPORTED_ERRORS) {
      errors.push({ file, line, col: 1, message: `Stopped reading after ${MAX_REPORTED_ERRORS} errors` });
      break;
    }
    if (rules.length === MAX_FWMARK_RULES) {
      errors.push({ file, line, col: 1, message: `Too many rules (more than ${MAX_FWMARK_RULES})` });
      break;
    }
    try {
      rules.push(parseFwmarkRule(body, `${file}:${line}`));
    } catch (e) {
      if (!(e instanceof FwmarkRuleError)) throw e;
      errors.push({ file, line, col: e.col, message: e.message });
    }
  }
  return errors.length > 0 ? { errors } : { rules };
}
