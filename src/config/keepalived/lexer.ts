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

/** Blank characters between words: space, tab, CR, FF, VT. */
function isSpace(code: number): boolean {
  return code === 32 || code === 9 || code === 13 || code === 12 || code === 11;
}

/** Tokens of one file; every line (including the last) ends with an "eol" token. */
export function lexKeepalived(text: string, file: string, diags: Diagnostics): Token[] {
  const out: Token[] = [];
  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const line = lines[ln] as string;
    const lineNo = ln + 1;
    let i = 0;
    while (i < line.length) {
      const code = line.charCodeAt(i);
      if (isSpace(code)) {
        i++;
        continue;
      }
      const c = line[i] as string;
      if (c === "#" || c === "!") break;
      if (c === "{" || c === "}") {
        out.push({
          kind: c === "{" ? "open" : "close",
          text: c,
          quoted: false,
          pos: { file, line: lineNo, column: i + 1 },
        });
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
        const pos = { file, line: lineNo, column: start + 1 };
        if (!closed) diags.error(pos, "Unterminated quoted string");
        out.push({ kind: "word", text: value, quoted: true, pos });
        continue;
      }
      const start = i;
      while (i < line.length) {
        const d = line.charCodeAt(i);
        // Blank, ", { or } end a word.
        if (isSpace(d) || d === 34 || d === 123 || d === 125) break;
        i++;
      }
      out.push({
        kind: "word",
        text: line.slice(start, i),
        quoted: false,
        pos: { file, line: lineNo, column: start + 1 },
      });
    }
    out.push({ kind: "eol", text: "", quoted: false, pos: { file, line: lineNo, column: line.length + 1 } });
  }
  return out;
}
