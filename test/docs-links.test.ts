// The repository explains itself: every relative link in README.md and docs/*.md points at a file
// inside the repository that exists, and no page refers to working notes outside it (../shared,
// DESIGN.md and the reference notes).
// Links to web pages (http:, https:, mailto:) and to anchors on the same page are not checked.
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";

const root = resolve(import.meta.dirname, "..");
const pages = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

const LINK_RE = /\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g;

test("README and docs link only to files inside the repository", () => {
  const bad: string[] = [];
  for (const page of pages) {
    const text = readFileSync(join(root, page), "utf8");
    for (const m of text.matchAll(LINK_RE)) {
      const href = m[1] as string;
      if (/^[a-z]+:/i.test(href) || href.startsWith("#")) continue;
      const target = resolve(dirname(join(root, page)), href.split("#")[0] as string);
      const rel = relative(root, target);
      if (rel.startsWith("..")) bad.push(`${page}: "${href}" leaves the repository`);
      else if (!existsSync(target)) bad.push(`${page}: "${href}" does not exist`);
    }
    if (text.includes("../shared")) bad.push(`${page}: refers to ../shared`);
    // The working notes by name: the house plan and the reference notes beside it.
    for (const note of ["DESIGN.md", "ipvs-semantics.md", "packet-io.md", "vrrp-sync-metrics.md"])
      if (text.includes(note)) bad.push(`${page}: refers to the working notes' ${note}`);
  }
  assert.deepEqual(bad, []);
});

test("the link checker sees README's links to the architecture and compatibility pages", () => {
  const text = readFileSync(join(root, "README.md"), "utf8");
  const hrefs = [...text.matchAll(LINK_RE)].map((m) => m[1]);
  assert.ok(hrefs.includes("docs/architecture.md"));
  assert.ok(hrefs.includes("docs/compat.md"));
});
