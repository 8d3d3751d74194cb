// The tvs-specific top-level block `tvs_fwmark_rules { ... }` of keepalived.conf: the packet
// plane's firewall-mark rules, one per line in the grammar of tvsd --fwmark-rule
// (core/fwmark/rule.ts), so a `virtual_server fwmark N` and the rule that feeds it live in one
// file and reload together on SIGHUP. keepalived itself leaves marking to iptables; tvs's packet
// plane sees frames before iptables, hence the block (docs/fwmark.md):
//
//   tvs_fwmark_rules {
//       tcp 192.168.122.22 80,443 mark 1      # http and https of one VIP share mark 1
//       udp 192.168.122.0/24 53 mark 2
//   }
//
// A bad rule is an error at the file, line and column of the offending word. The block may be
// given once; its rules come after tvsd's own --fwmark-rule/--fwmark-rules (first match wins).

import { type FwmarkRule, FwmarkRuleError, parseFwmarkRule } from "../../core/fwmark/rule.ts";
import type { StmtReader } from "./reader.ts";
import type { Stmt } from "./tree.ts";

export function readFwmarkRules(r: StmtReader, s: Stmt): FwmarkRule[] {
  const out: FwmarkRule[] = [];
  for (const g of r.block(s) ?? []) {
    if (g.block) {
      r.diags.error(g.block.open.pos, "A firewall-mark rule has no block (one rule per line)");
      continue;
    }
    // The words joined by single spaces, remembering where each starts, so an error's column in
    // the joined text maps back to the word in the file.
    let text = "";
    const starts: number[] = [];
    for (const w of g.words) {
      if (text !== "") text += " ";
      starts.push(text.length);
      text += w.text;
    }
    const first = g.words[0]!;
    try {
      out.push(parseFwmarkRule(text, `${first.pos.file}:${first.pos.line}`));
    } catch (e) {
      if (!(e instanceof FwmarkRuleError)) throw e;
      let i = starts.length - 1;
      while (i > 0 && starts[i]! > e.col - 1) i--;
      const w = g.words[i]!;
      const inside = Math.min(Math.max(0, e.col - 1 - starts[i]!), w.text.length);
      r.diags.error({ ...w.pos, column: w.pos.column + inside }, e.message);
    }
  }
  return out;
}
