// keepalived.conf statement tree: a statement is the words of one line (its keyword first), and
// optionally a `{ ... }` block of statements, whose `{` may end the line or stand at the start of
// the next one, and whose statements may share a line with the braces (`url { path / }`).
// Unbalanced braces are errors pointing at the stray `}` or at the `{` never closed.

import type { Diagnostics } from "../diagnostics.ts";
import type { Token } from "./lexer.ts";

export interface Stmt {
  /** words[0] is the keyword (or, in value blocks such as virtual_ipaddress, the first value). */
  words: Token[];
  block?: Block;
}

export interface Block {
  open: Token;
  stmts: Stmt[];
}

/** Builds the statement tree; never throws. */
export function parseTree(tokens: readonly Token[], diags: Diagnostics): Stmt[] {
  let i = 0;
  const peek = (): Token | undefined => tokens[i];

  const parseStmts = (open: Token | undefined): Stmt[] => {
    const stmts: Stmt[] = [];
    for (;;) {
      const t = peek();
      if (t === undefined) {
        if (open) diags.error(open.pos, `Unclosed "{": no matching "}" before the end of the configuration`);
        return stmts;
      }
      if (t.kind === "eol") {
        i++;
        continue;
      }
      if (t.kind === "close") {
        i++;
        if (open) return stmts;
        diags.error(t.pos, `Unbalanced "}": no block is open here`);
        continue;
      }
      if (t.kind === "open") {
        // A block with no keyword: parse it to keep the braces balanced, then drop it.
        i++;
        diags.error(t.pos, `Block "{" without a keyword before it`);
        parseStmts(t);
        continue;
      }
      const words: Token[] = [];
      while (peek()?.kind === "word") words.push(tokens[i++] as Token);
      const stmt: Stmt = { words };
      // `{` on the same line, or alone at the start of a following line.
      let k = i;
      while (tokens[k]?.kind === "eol") k++;
      const next = tokens[k];
      if (next?.kind === "open" && (k === i || tokens[k - 1]?.kind === "eol")) {
        i = k + 1;
        stmt.block = { open: next, stmts: parseStmts(next) };
      }
      stmts.push(stmt);
    }
  };

  return parseStmts(undefined);
}
