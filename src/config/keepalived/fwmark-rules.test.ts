// The tvs_fwmark_rules block: rules read in order with their file:line as origin, next to the
// virtual_server fwmark they feed; a bad rule refused at the file, line and column of the word
// at fault; the block given twice, or a rule with a block, refused.
import assert from "node:assert/strict";
import { test } from "node:test";
import { formatFwmarkRule } from "../../core/fwmark/rule.ts";
import { loadConfigText } from "../load.ts";

const FILE = "/etc/keepalived/keepalived.conf";

function load(text: string) {
  return loadConfigText(FILE, text);
}

const errors = (r: ReturnType<typeof load>) =>
  r.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.line}:${d.column} ${d.message}`);

test("tvs_fwmark_rules beside a virtual_server fwmark", () => {
  const r = load(
    [
      "tvs_fwmark_rules {",
      "    tcp 192.168.122.22 80,443 mark 1   # web",
      '    udp "192.168.122.0/24" 53 from 10.0.0.0/8 mark 2',
      "}",
      "virtual_server fwmark 1 {",
      "    lb_algo rr",
      "    lb_kind DR",
      "    persistence_timeout 300",
      "    real_server 192.168.122.45 { weight 1 }",
      "}",
      "",
    ].join("\n"),
  );
  assert.ok("config" in r, JSON.stringify(r.diagnostics));
  assert.deepEqual(
    r.config.fwmarkRules?.map((x) => [formatFwmarkRule(x), x.origin]),
    [
      ["tcp 192.168.122.22 80,443 mark 1", `${FILE}:2`],
      ["udp 192.168.122.0/24 53 from 10.0.0.0/8 mark 2", `${FILE}:3`],
    ],
  );
  assert.deepEqual(
    r.config.desired.services.map((s) => s.key),
    [{ kind: "fwmark", fwmark: 1, family: 4 }],
  );
  const plain = load("virtual_server fwmark 1 {\n lb_algo rr\n}\n");
  assert.ok("config" in plain);
  assert.equal(plain.config.fwmarkRules, undefined);
});

test("bad rules are refused at the word at fault", () => {
  assert.deepEqual(
    errors(
      load(
        [
          "tvs_fwmark_rules {",
          "  tcp 10.0.0.1 80,443 mark 0x",
          "      icmp   10.0.0.1 mark 1",
          "  tcp 10.0.0.1/24   80 mark 1",
          "  tcp 10.0.0.1 443-80 mark 1",
          "  tcp 10.0.0.1 80",
          "  tcp 10.0.0.1 mark 1 { }",
          "}",
          "tvs_fwmark_rules {",
          "}",
          "",
        ].join("\n"),
      ),
    ),
    [
      '2:28 Invalid mark "0x" (expected 1..4294967295, decimal or 0x hex)',
      '3:7 Unknown protocol "icmp" (expected tcp, udp, sctp or any)',
      '4:7 The destination "10.0.0.1/24" has address bits set past /24 (did you mean 10.0.0.0/24?)',
      '5:16 Port range "443-80" is reversed (write 80-443)',
      '6:18 Missing "mark N"',
      "7:23 A firewall-mark rule has no block (one rule per line)",
      "9:1 tvs_fwmark_rules is given twice",
    ],
  );
});
