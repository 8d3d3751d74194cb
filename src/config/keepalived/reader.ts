// Typed access to keepalived statements with diagnostics: "this keyword takes one integer in
// 1..255", "this keyword opens a block", "unknown keyword here". Every reader reports the problem
// at the offending word and returns undefined, so the builders stay short and never throw.

import { type Diagnostics, quotable, type SourcePos } from "../diagnostics.ts";
import { parseBool, parseInt32, parseIp, parseTimerMs, parseUint } from "../values.ts";
import type { Token } from "./lexer.ts";
import type { Stmt } from "./tree.ts";

export class StmtReader {
  readonly diags: Diagnostics;

  constructor(diags: Diagnostics) {
    this.diags = diags;
  }

  kw(s: Stmt): string {
    return (s.words[0] as Token).text;
  }

  pos(s: Stmt): SourcePos {
    return (s.words[0] as Token).pos;
  }

  /** The n-th word after the keyword, or an error "Missing ..." when absent. */
  arg(s: Stmt, n: number, what: string): Token | undefined {
    const t = s.words[n];
    if (t === undefined) {
      const last = s.words[s.words.length - 1] as Token;
      this.diags.error(
        { ...last.pos, column: last.pos.column + (last.quoted ? last.text.length + 2 : last.text.length) },
        `Missing ${what} after "${this.kw(s)}"`,
      );
    }
    return t;
  }

  /** Warn about words beyond the expected count. */
  noExtra(s: Stmt, count: number): void {
    const t = s.words[count + 1];
    if (t) this.diags.warning(t.pos, `Extra value "${t.text}" after "${this.kw(s)}" - ignored`);
  }

  /** The single value of `kw VALUE`. */
  value(s: Stmt, what: string): Token | undefined {
    const t = this.arg(s, 1, what);
    if (t) this.noExtra(s, 1);
    return t;
  }

  uint(s: Stmt, min: number, max: number, what = "an integer"): number | undefined {
    const t = this.value(s, `${what} (${min}..${max})`);
    if (!t) return undefined;
    const v = parseUint(t.text, min, max);
    if (v === undefined) this.diags.error(t.pos, `Invalid ${this.kw(s)} "${t.text}" (expected ${what} ${min}..${max})`);
    return v;
  }

  int(s: Stmt, min: number, max: number): number | undefined {
    const t = this.value(s, `an integer (${min}..${max})`);
    if (!t) return undefined;
    const v = parseInt32(t.text, min, max);
    if (v === undefined)
      this.diags.error(t.pos, `Invalid ${this.kw(s)} "${t.text}" (expected an integer ${min}..${max})`);
    return v;
  }

  timerMs(s: Stmt, minMs = 0): number | undefined {
    const t = this.value(s, "a time in seconds");
    if (!t) return undefined;
    const v = parseTimerMs(t.text, minMs);
    if (v === undefined)
      this.diags.error(
        t.pos,
        `Invalid ${this.kw(s)} "${t.text}" (expected seconds${minMs > 0 ? ` >= ${minMs / 1000}` : ""}, e.g. 3 or 0.5)`,
      );
    return v;
  }

  /** A flag keyword with an optional boolean (`alpha`, `alpha off`): bare means true. */
  flag(s: Stmt): boolean | undefined {
    const t = s.words[1];
    if (!t) return true;
    this.noExtra(s, 1);
    const v = parseBool(t.text);
    if (v === undefined)
      this.diags.error(t.pos, `Invalid ${this.kw(s)} "${t.text}" (expected true/false, on/off or yes/no)`);
    return v;
  }

  /** A bare keyword that takes no value. */
  bare(s: Stmt): void {
    this.noExtra(s, 0);
  }

  ip(s: Stmt, n = 1): string | undefined {
    const t = this.arg(s, n, "an IP address");
    if (!t) return undefined;
    const v = parseIp(t.text);
    if (v === undefined) this.diags.error(t.pos, `Invalid IP address "${t.text}" for ${this.kw(s)}`);
    return v;
  }

  str(s: Stmt, what = "a value"): string | undefined {
    return this.value(s, what)?.text;
  }

  /** The rest of the line joined by spaces (script command lines). */
  rest(s: Stmt, from: number, what: string): string | undefined {
    if (!this.arg(s, from, what)) return undefined;
    return s.words
      .slice(from)
      .map((w) => w.text)
      .join(" ");
  }

  /** Report a block where none belongs; true when the statement is fine. */
  noBlock(s: Stmt): boolean {
    if (!s.block) return true;
    this.diags.error(s.block.open.pos, `"${this.kw(s)}" does not take a { } block`);
    return false;
  }

  /** The statements of the block this keyword needs, or an error. */
  block(s: Stmt): Stmt[] | undefined {
    if (s.block) return s.block.stmts;
    const last = s.words[s.words.length - 1] as Token;
    this.diags.error(
      { ...last.pos, column: last.pos.column + last.text.length + (last.quoted ? 2 : 0) },
      `"${this.kw(s)}" needs a { } block`,
    );
    return undefined;
  }

  unknown(s: Stmt, where: string): void {
    this.diags.warning(this.pos(s), `Unknown keyword "${quotable(this.kw(s))}" in ${where} - ignored`);
  }

  unsupported(s: Stmt, where: string): void {
    this.diags.warning(this.pos(s), `Keyword "${quotable(this.kw(s))}" in ${where} is not supported by tvs - ignored`);
  }
}
