// Lexer and statement-tree tests: comments, quotes, glued braces, positions, unbalanced braces.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Diagnostics } from "../diagnostics.ts";
import { lexKeepalived } from "./lexer.ts";
import { parseTree, type Stmt } from "./tree.ts";

function lex(text: string) {
  const d = new Diagnostics();
  const toks = lexKeepalived(text, "t.conf", d);
  return { toks, d };
}

function shape(stmts: Stmt[]): unknown[] {
  return stmts.map((s) => {
    const w = s.words.map((t) => t.text).join(" ");
    return s.block ? { [w]: shape(s.block.stmts) } : w;
  });
}

function tree(text: string) {
  const d = new Diagnostics();
  return { stmts: parseTree(lexKeepalived(text, "t.conf", d), d), d };
}

test("words, braces and line ends carry 1-based line and column", () => {
  const { toks, d } = lex("global_defs {\n\trouter_id  LVS_1\n}\n");
  assert.deepEqual(d.list, []);
  assert.deepEqual(
    toks.map((t) => [t.kind, t.text, t.pos.line, t.pos.column]),
    [
      ["word", "global_defs", 1, 1],
      ["open", "{", 1, 13],
      ["eol", "", 1, 14],
      ["word", "router_id", 2, 2],
      ["word", "LVS_1", 2, 13],
      ["eol", "", 2, 18],
      ["close", "}", 3, 1],
      ["eol", "", 3, 2],
      ["eol", "", 4, 1],
    ],
  );
});

test("# and ! start comments only at the start of a word", () => {
  const { toks } = lex("auth_pass ab#1 ! trailing comment\n# whole line\n  ! bang line\nx!y # c\n");
  assert.deepEqual(
    toks.filter((t) => t.kind === "word").map((t) => t.text),
    ["auth_pass", "ab#1", "x!y"],
  );
});

test("quoted strings keep spaces, braces and comment characters; escapes work", () => {
  const { toks, d } = lex('notify_up "/bin/echo {up} # not a comment" x\nmisc_path "a \\"b\\" \\\\c"\n');
  assert.deepEqual(d.list, []);
  const words = toks.filter((t) => t.kind === "word");
  assert.equal(words[1]?.text, "/bin/echo {up} # not a comment");
  assert.equal(words[1]?.quoted, true);
  assert.equal(words[1]?.pos.column, 11);
  assert.equal(words[2]?.text, "x");
  assert.equal(words[4]?.text, 'a "b" \\c');
});

test("an unterminated quote is an error at the quote", () => {
  const { d } = lex('x 1\nnotify_up "/bin/true\n');
  assert.deepEqual(
    d.list.map((e) => [e.severity, e.line, e.column, e.message]),
    [["error", 2, 11, "Unterminated quoted string"]],
  );
});

test("braces glued to words are tokens of their own", () => {
  const { stmts, d } = tree("url{path /x}\nreal_server 1.2.3.4 80{\nweight 2}\n");
  assert.deepEqual(d.list, []);
  assert.deepEqual(shape(stmts), [{ url: ["path /x"] }, { "real_server 1.2.3.4 80": ["weight 2"] }]);
});

test("a block may open on the next line and share lines with its statements", () => {
  // Statements are lines: "path / digest x" on one line is one statement, as in keepalived.
  const { stmts, d } = tree(
    "virtual_server 10.0.0.1 80\n{\n  lb_algo rr\n  url { path /\n digest abc }\n url { path / digest x }\n}\n",
  );
  assert.deepEqual(d.list, []);
  assert.deepEqual(shape(stmts), [
    { "virtual_server 10.0.0.1 80": ["lb_algo rr", { url: ["path /", "digest abc"] }, { url: ["path / digest x"] }] },
  ]);
});

test("a stray } is an error at its position and parsing goes on", () => {
  const { stmts, d } = tree("a 1\n  }\nb 2\n");
  assert.deepEqual(shape(stmts), ["a 1", "b 2"]);
  assert.deepEqual(
    d.list.map((e) => [e.line, e.column, e.message]),
    [[2, 3, 'Unbalanced "}": no block is open here']],
  );
});

test("an unclosed { is reported where it was opened", () => {
  const { d } = tree("global_defs {\n  router_id x\nvirtual_server 1.1.1.1 80 {\n  lb_algo rr\n}\n");
  assert.deepEqual(
    d.list.map((e) => [e.line, e.column, e.message]),
    [[1, 13, 'Unclosed "{": no matching "}" before the end of the configuration']],
  );
});

test("a block without a keyword is an error", () => {
  const { d } = tree("{\n x 1\n}\n");
  assert.deepEqual(
    d.list.map((e) => [e.line, e.column, e.message]),
    [[1, 1, 'Block "{" without a keyword before it']],
  );
});
