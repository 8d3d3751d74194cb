// Tests for reading ipvsadm -S rules: line splitting, file:line errors, the desired state.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  parseIpvsadmRules,
  RulesError,
  rulesSideRequests,
  rulesToDesiredState,
  splitRuleLines,
} from "./ipvsadm-rules.ts";

const SAVED = `# ipvsadm -S -n
-A -t 10.0.0.100:80 -s rr

ipvsadm -a -t 10.0.0.100:80 -r 192.168.10.1:80 -m -w 1
-a -t 10.0.0.100:80 -r 192.168.10.2:80 -m -w 2   # second
-A -f 1 -s wlc -p 300
-a -f 1 -r 192.168.10.3 -g -w 1
`;

test("lines: comments and blank lines skipped, the ipvsadm word dropped, numbers kept", () => {
  const lines = splitRuleLines(SAVED);
  assert.deepEqual(
    lines.map((l) => [l.line, l.argv.join(" ")]),
    [
      [2, "-A -t 10.0.0.100:80 -s rr"],
      [4, "-a -t 10.0.0.100:80 -r 192.168.10.1:80 -m -w 1"],
      [5, "-a -t 10.0.0.100:80 -r 192.168.10.2:80 -m -w 2"],
      [6, "-A -f 1 -s wlc -p 300"],
      [7, "-a -f 1 -r 192.168.10.3 -g -w 1"],
    ],
  );
});

test("rules become requests and a desired state with dests in add order", async () => {
  const rules = await parseIpvsadmRules(SAVED, { file: "rules.txt" });
  assert.equal(rules.requests.length, 5);
  assert.equal(rules.requests[0]?.op, "add-service");
  const state = rulesToDesiredState(rules, "rules.txt");
  assert.equal(state.services.length, 2);
  assert.deepEqual(
    state.services[0]?.dests.map((d) => `${d.addr}:${d.port} ${d.fwd} ${d.weight}`),
    ["192.168.10.1:80 masq 1", "192.168.10.2:80 masq 2"],
  );
  assert.deepEqual(state.services[1]?.key, { kind: "fwmark", fwmark: 1, family: 4 });
  assert.equal(state.services[1]?.options.timeout, 300);
});

test("a bad line is an error naming file, line and text", async () => {
  await assert.rejects(
    parseIpvsadmRules("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 1.2.3.4 -w x9\n", { file: "r.txt" }),
    (e) => {
      assert.ok(e instanceof RulesError);
      assert.equal(e.line, 2);
      assert.equal(e.reason, "illegal weight specified");
      assert.equal(e.message, 'r.txt:2: illegal weight specified in "-a -t 10.0.0.1:80 -r 1.2.3.4 -w x9"');
      return true;
    },
  );
});

test("listing commands are refused in rules", async () => {
  await assert.rejects(parseIpvsadmRules("-L -n\n"), /The 'list' command cannot be used in rules/);
});

test("inconsistent rules are errors in the desired state", async () => {
  const rules = await parseIpvsadmRules("-a -t 10.0.0.1:80 -r 1.2.3.4\n", { file: "r.txt" });
  assert.throws(() => rulesToDesiredState(rules, "r.txt"), /r\.txt:1: Service tcp 10\.0\.0\.1:80 not defined/);
  const dup = await parseIpvsadmRules("-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80 -s rr\n");
  assert.throws(() => rulesToDesiredState(dup), /:2: Service tcp 10\.0\.0\.1:80 already exists/);
});

test("timeouts and sync daemons are kept apart from the table contents", async () => {
  const rules = await parseIpvsadmRules("-A -t 10.0.0.1:80\n--set 60 0 30\n--start-daemon master --syncid 4\n");
  assert.equal(rulesToDesiredState(rules).services.length, 1);
  assert.deepEqual(
    rulesSideRequests(rules).map((r) => r.op),
    ["set-timeout", "start-daemon"],
  );
});
