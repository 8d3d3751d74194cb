// keepalived.conf lexer: splits text into words, `{`, `}` and end-of-line tokens, each with its
// file:line:column. Rules follow keepalived's reader: a word starting with `#` or `!` begins a
// comment that runs to the end of the line (so `auth_pass ab#1` keeps its `#`); double quotes make
// one word of text with spaces (a backslash escapes a quote or a backslash inside them); `{` and
// `}` outside quotes are tokens of their own even when glued to a word.

import type { Diagnostics, SourcePos } from "../diagnostics.ts";

export type TokenKind = "word" | "open" | "close" | "eol";

export interface Token {
  kind: TokenKind;
  /** The word's text (without quotes), "{", "}" or "" for end of line. */
  text: string;
  quoted: boolean;
  pos: SourcePos;
}

const SPACE = /[ \t\r\f\v]/;

/** Tokens of one file; every line (including the last) ends with an "eol" token. */
export function lexKeepalived(text: string, file: string, diags: Diagnostics): Token[] {
  const out: Token[] = [];
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln] as string;
    const at = (col: number): SourcePos => ({ file, line: ln + 1, column: col + 1 });
    let i = 0;
    while (i < line.length) {
      const c = line[i] as string;
      if (SPACE.test(c)) {
        i++;
        continue;
      }
      if (c === "#" || c === "!") break;
      if (c === "{" || c === "}") {
        out.push({ kind: c === "{" ? "open" : "close", text: c, quoted: false, pos: at(i) });
        i++;
        continue;
      }
      if (c === '"') {
        const start = i;
        let value = "";
        i++;
        let closed = false;
        while (i < line.length) {
          const d = line[i] as string;
          if (d === "\\" && (line[i + 1] === '"' || line[i + 1] === "\\")) {
            value += line[i + 1];
            i += 2;
            continue;
          }
          if (d === '"') {
            closed = true;
            i++;
            break;
          }
          value += d;
          i++;
        }
        if (!closed) diags.error(at(start), "Unterminated quoted string");
        out.push({ kind: "word", text: value, quoted: true, pos: at(start) });
        continue;
      }
      const start = i;
      while (i < line.length) {
        const d = line[i] as string;
        if (SPACE.test(d) || d === "{" || d === "}" || d === '"') break;
        i++;
      }
      out.push({ kind: "word", text: line.slice(start, i), quoted: false, pos: at(start) });
    }
    out.push({ kind: "eol", text: "", quoted: false, pos: at(line.length) });
  }
  return out;
}
