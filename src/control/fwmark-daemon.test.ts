// tvsd's firewall-mark rules through the Daemon, on a packet plane over the memory io: rules from
// an option and a file in command-line order, GET /v1/fwmark's view (each rule's service, the
// services no rule feeds), a reload that reads the file again, a bad file refused with
// FILE:LINE:COL while the rules in force stay, and the socket plane refusing rules clearly. The
// command-line side: --fwmark-rule errors name the column, and need the packet plane.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { formatFwmark } from "../cli/tvs/fwmark.ts";
import { destSpec } from "../core/dest.ts";
import { silentLogger } from "../core/log.ts";
import { serviceOptions } from "../core/service.ts";
import { parseMac } from "../dataplane/packet/codec/eth.ts";
import { MemoryPacketIo } from "../dataplane/packet/memory-io.ts";
import { LoopPacketPlane } from "../dataplane/packet/plane.ts";
import { defaultProxyOptions } from "../dataplane/proxy/options.ts";
import { ProxyPlane } from "../dataplane/proxy/plane.ts";
import { Daemon } from "./daemon.ts";
import { type FwmarkRuleSource, loadFwmarkRules, parseFwmarkRuleOption } from "./fwmark-rules.ts";
import { loadConfigFile, parseTvsdArgs, UsageError } from "./tvsd-main.ts";

function tempDir(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), "fwmark-daemon-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function packetDaemon(sources: FwmarkRuleSource[]): Daemon {
  return new Daemon({
    log: silentLogger,
    fwmarkRules: () => loadFwmarkRules(sources),
    makePlane: async (deps) =>
      new LoopPacketPlane({
        ...deps,
        interface: "mem0",
        io: new MemoryPacketIo(),
        mac: parseMac("02:00:00:00:00:01"),
        addr4: "10.0.0.1",
        guard: false,
      }),
  });
}

const fwm = (mark: number) => ({ kind: "fwmark" as const, fwmark: mark, family: 4 as const });

test("rules from an option and a file, in order, shown with the service each one feeds; reload reads the file again", async (t) => {
  const dir = tempDir(t);
  const file = join(dir, "fwmark.rules");
  writeFileSync(file, "# web\ntcp 10.0.0.10 80,443 mark 1\nudp 10.0.0.10 53 mark 2\n");
  const d = packetDaemon([
    { kind: "rule", rule: parseFwmarkRuleOption("tcp 10.0.0.0/24 22 mark 9", 1) },
    { kind: "file", path: file },
  ]);
  t.after(() => d.stop(0));
  await d.start();
  await d.exec({ op: "add-service", key: fwm(1), options: serviceOptions(4, { scheduler: "rr", persistent: true }) });
  await d.exec({ op: "add-dest", key: fwm(1), dest: destSpec("10.0.0.21", 0, { fwd: "droute" }) });
  await d.exec({ op: "add-service", key: fwm(7), options: serviceOptions(4, { scheduler: "rr" }) });
  let v = await d.fwmark();
  assert.equal(v.supported, true);
  assert.deepEqual(
    v.rules.map((r) => [r.n, r.text, r.origin, r.service]),
    [
      [1, "tcp 10.0.0.0/24 22 mark 9", "--fwmark-rule 1", null],
      [2, "tcp 10.0.0.10 80,443 mark 1", `${file}:2`, "fwmark 1 ipv4"],
      [3, "udp 10.0.0.10 53 mark 2", `${file}:3`, null],
    ],
  );
  assert.deepEqual(
    v.services.map((s) => [s.id, s.rules]),
    [
      ["fwmark 1 ipv4", 1],
      ["fwmark 7 ipv4", 0],
    ],
  );
  assert.equal(v.warnings.length, 1);
  assert.match(v.warnings[0]!, /FWM 7: no rule sets mark 7 for IPv4/);
  assert.ok((await d.status()).notes.some((n) => /FWM 7: no firewall-mark rule sets mark 7/.test(n)));
  const text = formatFwmark(v);
  assert.match(text, /Firewall-mark rules \(3, first match wins\):/);
  assert.match(text, /2 +tcp +10\.0\.0\.10 +80,443 +\* +1 +FWM 1 +.*fwmark\.rules:2/);
  assert.match(text, /Warning: FWM 7: no rule sets mark 7/);

  // A bad line refuses the reload, naming file, line and column; the rules in force stay.
  writeFileSync(file, "tcp 10.0.0.10 80,443 mark 1\ntcp 10.0.0.10 80,443 mark seven\n");
  await assert.rejects(d.reload(), /Reload refused: .*fwmark\.rules:2:27: Invalid mark "seven"/);
  assert.equal((await d.fwmark()).rules.length, 3);

  writeFileSync(file, "tcp 10.0.0.10 80,443 mark 7\n");
  await d.reload();
  v = await d.fwmark();
  assert.deepEqual(
    v.rules.map((r) => [r.text, r.service]),
    [
      ["tcp 10.0.0.0/24 22 mark 9", null],
      ["tcp 10.0.0.10 80,443 mark 7", "fwmark 7 ipv4"],
    ],
  );
  assert.deepEqual(v.warnings.length, 1);
  assert.match(v.warnings[0]!, /FWM 1: no rule sets mark 1/);
});

test("keepalived.conf: tvs_fwmark_rules after tvsd's own rules, with virtual_server fwmark; reloaded with the file", async (t) => {
  const dir = tempDir(t);
  const conf = join(dir, "keepalived.conf");
  const write = (rule: string) =>
    writeFileSync(
      conf,
      [
        "tvs_fwmark_rules {",
        `    ${rule}`,
        "}",
        "virtual_server fwmark 1 {",
        "    lb_algo rr",
        "    lb_kind DR",
        "    persistence_timeout 300",
        "    real_server 10.0.0.21 { weight 1 }",
        "}",
        "",
      ].join("\n"),
    );
  write("tcp 10.0.0.10 80,443 mark 1");
  const d = new Daemon({
    log: silentLogger,
    source: async () => loadConfigFile(conf, "start"),
    fwmarkRules: () => loadFwmarkRules([{ kind: "rule", rule: parseFwmarkRuleOption("udp 10.0.0.10 53 mark 1", 1) }]),
    makePlane: async (deps) =>
      new LoopPacketPlane({
        ...deps,
        interface: "mem0",
        io: new MemoryPacketIo(),
        mac: parseMac("02:00:00:00:00:01"),
        addr4: "10.0.0.1",
        guard: false,
      }),
  });
  t.after(() => d.stop(0));
  await d.start();
  let v = await d.fwmark();
  assert.deepEqual(
    v.rules.map((r) => [r.text, r.origin, r.service]),
    [
      ["udp 10.0.0.10 53 mark 1", "--fwmark-rule 1", "fwmark 1 ipv4"],
      ["tcp 10.0.0.10 80,443 mark 1", `${conf}:2`, "fwmark 1 ipv4"],
    ],
  );
  assert.deepEqual(v.warnings, []);
  write("tcp 10.0.0.10 8443 mark 1");
  await d.reload();
  v = await d.fwmark();
  assert.deepEqual(
    v.rules.map((r) => r.text),
    ["udp 10.0.0.10 53 mark 1", "tcp 10.0.0.10 8443 mark 1"],
  );
  write("tcp 10.0.0.10 8443 mark one");
  await assert.rejects(d.reload(), /keepalived\.conf:2:29: error: Invalid mark "one"/);
  assert.equal((await d.fwmark()).rules[1]?.text, "tcp 10.0.0.10 8443 mark 1", "the rules in force stay");
});

test("an unreadable rules file stops the start with its name", async (t) => {
  const d = packetDaemon([{ kind: "file", path: "/nonexistent/fwmark.rules" }]);
  t.after(() => d.stop(0));
  await assert.rejects(d.start(), /Cannot read fwmark rules file "\/nonexistent\/fwmark\.rules" \(ENOENT\)/);
});

test("the socket plane refuses firewall-mark rules and says how its fwmark services work", async (t) => {
  const d = new Daemon({
    log: silentLogger,
    fwmarkRules: () => loadFwmarkRules([{ kind: "rule", rule: parseFwmarkRuleOption("tcp 127.0.0.1 80 mark 1", 1) }]),
    makePlane: async (deps) => new ProxyPlane(deps, defaultProxyOptions()),
  });
  t.after(() => d.stop(0));
  await assert.rejects(d.start(), /Firewall-mark rules need the packet data plane \(--dataplane packet\)/);
  const plain = new Daemon({
    log: silentLogger,
    makePlane: async (deps) => new ProxyPlane(deps, defaultProxyOptions()),
  });
  t.after(() => plain.stop(0));
  await plain.start();
  const v = await plain.fwmark();
  assert.equal(v.supported, false);
  assert.match(v.note ?? "", /--fwmark-addr/);
  assert.match(formatFwmark(v), /Firewall-mark rules: none \(.*--fwmark-addr/);
});

test("tvsd --fwmark-rule: parsed at once (the column of a bad word), repeatable, packet plane only", () => {
  const packet = ["--dataplane", "packet", "--interface", "eth0"];
  const a = parseTvsdArgs([
    ...packet,
    "--fwmark-rule",
    "tcp 10.0.0.1 80,443 mark 1",
    "--fwmark-rules",
    "/etc/tvs/fwmark.rules",
    "--fwmark-rule=udp 10.0.0.1 53 mark 2",
  ]);
  assert.deepEqual(
    a.fwmarkRules.map((s) => (s.kind === "rule" ? `${s.rule.origin}: ${s.rule.mark}` : `file ${s.path}`)),
    ["--fwmark-rule 1: 1", "file /etc/tvs/fwmark.rules", "--fwmark-rule 2: 2"],
  );
  assert.throws(
    () =>
      parseTvsdArgs([...packet, "--fwmark-rule", "tcp 10.0.0.1 80 mark 1", "--fwmark-rule", "tcp 10.0.0.1/8 mark 1"]),
    (e: unknown) =>
      e instanceof UsageError &&
      e.message ===
        'Invalid --fwmark-rule "tcp 10.0.0.1/8 mark 1" at column 5: The destination "10.0.0.1/8" has address bits set past /8 (did you mean 10.0.0.0/8?)',
  );
  assert.throws(
    () => parseTvsdArgs(["--fwmark-rule", "tcp 10.0.0.1 80 mark 1"]),
    (e: unknown) => e instanceof UsageError && /need --dataplane packet .*--fwmark-addr/.test(e.message),
  );
});
