// Reads ipvsadm rules (what `ipvsadm -S` prints, what `ipvsadm -R` and `tvsd --rules` read): one
// ipvsadm command per line, words split on blanks, blank lines and "#" comments skipped, the word
// "ipvsadm" ignored (so "ipvsadm -A -t ..." lines work too). Each line goes through the same
// argv grammar as tvsadm (ipvsadm-grammar.ts); only commands that change the table are allowed.
// Errors name the file, the line number and the line's text.
//
// Output: the requests in file order (for one atomic batch) and, for reconciling, the DesiredState
// those requests produce when applied to an empty table.

import type { DestSpec } from "../core/dest.ts";
import type { SingleRequest } from "../core/request.ts";
import { type ServiceKey, serviceKeyId } from "../core/service.ts";
import type { DesiredService, DesiredState } from "./desired.ts";
import { IpvsadmArgError, type NameResolver, parseIpvsadmArgv, toRequest } from "./ipvsadm-grammar.ts";

export interface RuleLine {
  /** 1-based line number. */
  line: number;
  /** The line as written (trimmed). */
  text: string;
  argv: string[];
}

export class RulesError extends Error {
  readonly file: string;
  readonly line: number;
  readonly text: string;
  /** What was wrong, without the position (ipvsadm's own words for argument errors). */
  readonly reason: string;
  /** ipvsadm's exit status for the underlying error (2 for argument errors). */
  readonly exitCode: number;
  constructor(file: string, at: RuleLine, reason: string, exitCode = 2) {
    super(`${file}:${at.line}: ${reason} in "${at.text}"`);
    this.name = "RulesError";
    this.file = file;
    this.line = at.line;
    this.text = at.text;
    this.reason = reason;
    this.exitCode = exitCode;
  }
}

/** Split rules text into command lines. */
export function splitRuleLines(text: string): RuleLine[] {
  const out: RuleLine[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const words: string[] = [];
    for (const w of raw.split(/[ \t\r]+/)) {
      if (w === "") continue;
      if (w.startsWith("#")) break;
      if (w === "ipvsadm") continue;
      words.push(w);
    }
    if (words.length > 0) out.push({ line: i + 1, text: raw.trim(), argv: words });
  });
  return out;
}

export interface ParsedRules {
  lines: RuleLine[];
  /** One request per line, in order (requests[i] came from lines[i]). */
  requests: SingleRequest[];
}

export interface ParseRulesOptions {
  /** Name used in errors ("-" or "<stdin>" for standard input). */
  file?: string;
  resolver?: NameResolver;
  /** argv[0] for ipvsadm's messages. */
  program?: string;
}

/** Parse rules text; throws RulesError at the first bad line. */
export async function parseIpvsadmRules(text: string, opts: ParseRulesOptions = {}): Promise<ParsedRules> {
  const file = opts.file ?? "<stdin>";
  const lines = splitRuleLines(text);
  const requests: SingleRequest[] = [];
  for (const l of lines) {
    let req: SingleRequest | undefined;
    try {
      const parsed = await parseIpvsadmArgv(l.argv, {
        program: opts.program ?? "ipvsadm",
        ...(opts.resolver ? { resolver: opts.resolver } : {}),
      });
      req = toRequest(parsed);
      if (!req) throw new RulesError(file, l, `The '${parsed.command}' command cannot be used in rules`);
    } catch (e) {
      if (e instanceof IpvsadmArgError) throw new RulesError(file, l, e.message.replace(/\n+$/, ""), e.exitCode);
      throw e;
    }
    requests.push(req);
  }
  return { lines, requests };
}

/**
 * The state the requests produce on an empty table. Inconsistent rules (a destination for a
 * service not defined, a service defined twice, ...) are errors naming the line.
 */
export function rulesToDesiredState(rules: ParsedRules, file = "<stdin>"): DesiredState {
  const services = new Map<string, DesiredService>();
  const find = (key: ServiceKey, at: RuleLine): DesiredService => {
    const s = services.get(serviceKeyId(key));
    if (!s) throw new RulesError(file, at, `Service ${serviceKeyId(key)} not defined`, 255);
    return s;
  };
  const destIndex = (s: DesiredService, addr: string, port: number): number =>
    s.dests.findIndex((d) => d.addr === addr && d.port === port);
  rules.requests.forEach((r, i) => {
    const at = rules.lines[i] as RuleLine;
    switch (r.op) {
      case "add-service":
        if (services.has(serviceKeyId(r.key)))
          throw new RulesError(file, at, `Service ${serviceKeyId(r.key)} already exists`, 255);
        services.set(serviceKeyId(r.key), { key: r.key, options: r.options, dests: [] });
        break;
      case "edit-service":
        find(r.key, at).options = r.options;
        break;
      case "del-service":
        find(r.key, at);
        services.delete(serviceKeyId(r.key));
        break;
      case "flush":
        services.clear();
        break;
      case "add-dest": {
        const s = find(r.key, at);
        if (destIndex(s, r.dest.addr, r.dest.port) !== -1)
          throw new RulesError(file, at, `Destination ${r.dest.addr}:${r.dest.port} already exists`, 255);
        s.dests.push(r.dest);
        break;
      }
      case "edit-dest": {
        const s = find(r.key, at);
        const j = destIndex(s, r.dest.addr, r.dest.port);
        if (j === -1) throw new RulesError(file, at, `No destination ${r.dest.addr}:${r.dest.port}`, 255);
        s.dests[j] = r.dest as DestSpec;
        break;
      }
      case "del-dest": {
        const s = find(r.key, at);
        const j = destIndex(s, r.addr, r.port);
        if (j === -1) throw new RulesError(file, at, `No destination ${r.addr}:${r.port}`, 255);
        s.dests.splice(j, 1);
        break;
      }
      default:
        // zero, set-timeout and the sync daemons do not describe table contents.
        break;
    }
  });
  return { services: [...services.values()] };
}

/**
 * The requests of a rules file that do not describe table contents (--set timeouts, sync daemons,
 * -Z), in file order, for a daemon that applies them after reconciling the table.
 */
export function rulesSideRequests(rules: ParsedRules): SingleRequest[] {
  return rules.requests.filter((r) => r.op === "set-timeout" || r.op === "start-daemon" || r.op === "stop-daemon");
}
