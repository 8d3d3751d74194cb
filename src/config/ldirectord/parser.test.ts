// ldirectord.cf → DirectorConfig: seed 003's configuration round-trips to the table its ipvsadm
// commands create; the option families land in the spec with ldirectord's defaults; the checkers
// are the mapping of checks.ts; diagnostics carry exact lines and columns.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { destSpec } from "../../core/dest.ts";
import type { Diagnostic } from "../diagnostics.ts";
import type { DirectorConfig } from "../director-config.ts";
import { parseIpvsadmRules, rulesToDesiredState } from "../ipvsadm-rules.ts";
import { type LoadResult, loadConfig, loadConfigText } from "../load.ts";

const FIX = join(import.meta.dirname, "../../../test/fixtures/config/ldirectord");

function ok(r: LoadResult): DirectorConfig {
  if (!("config" in r))
    assert.fail(`unexpected errors:\n${r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`).join("\n")}`);
  return r.config;
}

function pick(list: readonly Diagnostic[], severity: Diagnostic["severity"]): [number, number, string][] {
  return list
    .filter((d) => d.severity === severity)
    .map((d): [number, number, string] => [d.line, d.column, d.message])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1]);
}

async function ipvsadm(rules: string) {
  return rulesToDesiredState(await parseIpvsadmRules(rules));
}

test("seed 003: the table of `ipvsadm -A -t VIP:80 -s rr -p 600` with two -g real servers", async () => {
  const c = ok(loadConfig(join(FIX, "seed003.cf")));
  assert.equal(c.format, "ldirectord");
  assert.deepEqual(
    c.desired,
    await ipvsadm(`
      -A -t 127.0.0.100:80 -s rr -p 600
      -a -t 127.0.0.100:80 -r 127.0.0.11:80 -g -w 1
      -a -t 127.0.0.100:80 -r 127.0.0.12:80 -g -w 1
    `),
  );
  const h = c.health[0];
  assert.ok(h);
  // quiescent=no: failed servers are removed; fallback = the sorry server (quorum 1).
  assert.deepEqual([h.delayLoopMs, h.inhibitOnFailure, h.quorum, h.hysteresis], [1000, false, 1, 0]);
  assert.deepEqual(h.sorryServer, { dest: destSpec("127.0.0.1", 80), inhibit: false });
  const k = h.realServers[0]?.checkers[0];
  assert.ok(k?.type === "HTTP_GET");
  // checktype negotiate, service http, checktimeout 3 (negotiatetimeout falls back on it), checkport 80.
  assert.deepEqual(
    [k.connectTimeoutMs, k.delayLoopMs, k.retry, k.warmupMs, k.connectPort, k.urls],
    [3000, 1000, 0, 0, 80, [{ path: "/", statusCodes: [{ from: 200, to: 299 }] }]],
  );
  assert.deepEqual(c.globals, {
    checktimeout: ["3"],
    checkinterval: ["1"],
    autoreload: ["yes"],
    logfile: ["/var/log/ldirectord.log"],
    quiescent: ["no"],
  });
  assert.deepEqual(c.warnings, []);
});

test("the option families: masq port mapping, ranges, fwmark, external, on, simpletcp", async () => {
  const c = ok(loadConfig(join(FIX, "full.cf")));
  assert.deepEqual(
    c.desired,
    await ipvsadm(`
      -A -t 127.0.0.100:8080 -s wlc -p 300 -M 255.255.255.0
      -a -t 127.0.0.100:8080 -r 127.0.0.11:8081 -m -w 2
      -a -t 127.0.0.100:8080 -r 127.0.0.12:8082 -m -w 1
      -A -u 127.0.0.100:53 -s rr
      -a -u 127.0.0.100:53 -r 127.0.0.21:53 -g -w 1
      -a -u 127.0.0.100:53 -r 127.0.0.22:53 -g -w 1
      -a -u 127.0.0.100:53 -r 127.0.0.23:53 -g -w 1
      -A -f 7 -s wrr
      -a -f 7 -r 127.0.0.31:0 -g -w 1
      -a -f 7 -r 127.0.0.32:0 -i -w 5
      -A -t 127.0.0.100:25 -s wrr
      -a -t 127.0.0.100:25 -r 127.0.0.41:25 -g -w 1
      -A -t 127.0.0.100:7000 -s wrr
      -a -t 127.0.0.100:7000 -r 127.0.0.51:7000 -g -w 1
    `),
  );
  const [web, dns, mark, smtp, tcp] = c.health;
  // Per-real request/receive override the virtual's; quiescent=no overrides the global yes.
  const [w1, w2] = web?.realServers ?? [];
  assert.equal(web?.inhibitOnFailure, false);
  assert.deepEqual(
    [
      w1?.checkers[0]?.type,
      w1?.checkers[0]?.connectTimeoutMs,
      w1?.checkers[0]?.retry,
      w1?.checkers[0]?.delayBeforeRetryMs,
    ],
    ["HTTP_GET", 8000, 2, 5000],
  );
  const u1 = w1?.checkers[0]?.type === "HTTP_GET" ? w1.checkers[0] : undefined;
  const u2 = w2?.checkers[0]?.type === "HTTP_GET" ? w2.checkers[0] : undefined;
  assert.deepEqual(u1?.urls[0], { path: "/status", statusCodes: [{ from: 200, to: 299 }], bodyRegex: "alive" });
  assert.deepEqual(u2?.urls[0], { path: "/index.html", statusCodes: [{ from: 200, to: 299 }], bodyRegex: "Welcome" });
  assert.equal(u2?.virtualhost, "www.example.test");
  // The global fallback applies where the virtual has none.
  assert.deepEqual(web?.sorryServer, { dest: destSpec("127.0.0.1", 8080), inhibit: false });
  // connect on UDP is a ping (ldirectord pings UDP services); global quiescent=yes.
  assert.deepEqual(
    dns?.realServers.map((r) => [r.addr, r.checkers[0]?.type, r.checkers[0]?.connectTimeoutMs, r.inhibitOnFailure]),
    [
      ["127.0.0.21", "PING_CHECK", 4000, true],
      ["127.0.0.22", "PING_CHECK", 4000, true],
      ["127.0.0.23", "PING_CHECK", 4000, true],
    ],
  );
  const ext = mark?.realServers[1]?.checkers[0];
  assert.ok(ext?.type === "MISC_CHECK");
  assert.deepEqual(
    [ext.path, ext.timeoutMs, ext.connectTimeoutMs],
    ["/usr/local/bin/check-mark '7' '0' '127.0.0.32' '0'", 2000, 2000],
  );
  assert.deepEqual(
    smtp?.realServers[0]?.checkers.map((k) => [k.type, k.type === "STATIC_CHECK" && k.up]),
    [["STATIC_CHECK", true]],
  );
  assert.deepEqual(smtp?.sorryServer, { dest: destSpec("127.0.0.2", 25, { fwd: "masq" }), inhibit: true });
  const st = tcp?.realServers[0]?.checkers[0];
  assert.ok(st?.type === "TCP_CHECK");
  assert.deepEqual(
    [st.send, st.expectRegex, st.connectChecksBetween, st.connectPort, st.connectTimeoutMs],
    ["PING\n", "PONG", 3, 7001, 8000],
  );
});

test("errors and warnings point at the line and column", () => {
  const text = [
    "checktimeout = soon", // 1
    "frobnicate = 1", // 2
    "  real = 127.0.0.11:80 gate", // 3: indented before any virtual
    "virtual = 127.0.0.100:80", // 4
    "    real = 127.0.0.11:80 bridge", // 5
    "    real = host.example:80 gate", // 6
    "    real = 127.0.0.12:80 gate heavy", // 7
    "    scheduler = rr", // 8
    "    checktype = sometimes", // 9
    "    protocol = icmp", // 10
    "    colour = blue", // 11
    "service = http", // 12: virtual-only option at the top level
    "virtual = www.example.test:80", // 13
    "this line is not an option", // 14
  ].join("\n");
  const r = loadConfigText("bad.cf", text);
  assert.ok(!("config" in r));
  assert.deepEqual(pick(r.diagnostics, "error"), [
    [1, 16, 'Invalid checktimeout "soon" (expected seconds > 0)'],
    [3, 3, 'Indented "real" without a virtual= line before it'],
    [10, 16, 'Invalid protocol "icmp" (expected tcp, udp, sctp or fwm)'],
    [12, 1, '"service" must be inside a virtual section (indent it under a virtual= line)'],
    [13, 11, 'Invalid virtual address "www.example.test" (host names are not resolved; use an IP address)'],
    [14, 1, 'Expected "key = value", found "this line is not an option"'],
  ]);
  assert.deepEqual(pick(r.diagnostics, "warning"), [
    [2, 1, 'Unknown option "frobnicate" - ignored'],
    [11, 5, 'Unknown option "colour" in a virtual section - ignored'],
  ]);
  // With the protocol fixed, the virtual's own problems appear.
  const r2 = loadConfigText("bad.cf", text.replace("protocol = icmp", "protocol = tcp"));
  assert.deepEqual(
    pick(r2.diagnostics, "error").filter((e) => e[0] >= 5 && e[0] <= 9),
    [
      [5, 26, 'Invalid forwarding method "bridge" for real (expected gate, masq or ipip)'],
      [6, 12, 'Invalid real server address "host.example" (host names are not resolved; use an IP address)'],
      [7, 31, 'Invalid weight "heavy" (expected 0..65535)'],
      [
        9,
        17,
        'Invalid checktype "sometimes" (expected connect, negotiate, ping, external, external-perl, on, off or a number)',
      ],
    ],
  );
});

test("defaults: wrr, negotiate by port, tcp (udp on 53), checkinterval 10 s, quiescent yes", () => {
  const c = ok(loadConfigText("d.cf", "virtual=127.0.0.100:443\n\treal=127.0.0.11:443 gate\n"));
  assert.deepEqual(c.desired.services[0]?.options.scheduler, "wrr");
  const h = c.health[0];
  const k = h?.realServers[0]?.checkers[0];
  assert.deepEqual(
    [h?.inhibitOnFailure, h?.delayLoopMs, k?.type, k?.connectTimeoutMs, k?.retry],
    [true, 10_000, "SSL_GET", 30_000, 0],
  );
  const u = ok(loadConfigText("d.cf", "virtual=127.0.0.100:53\n\treal=127.0.0.11:53 gate\n"));
  assert.equal(u.desired.services[0]?.key.kind === "vip" && u.desired.services[0].key.protocol, "udp");
});

test("gate real servers keep the virtual port; a different one is reset with a warning", () => {
  const r = loadConfigText("p.cf", "virtual=127.0.0.100:80\n\treal=127.0.0.11:8080 gate\n\tchecktype=on\n");
  assert.deepEqual(ok(r).desired.services[0]?.dests, [destSpec("127.0.0.11", 80)]);
  assert.deepEqual(pick(r.diagnostics, "warning"), [
    [2, 7, "Port 8080 of real 127.0.0.11 differs from the virtual port 80, which gate forwarding keeps - using 80"],
  ]);
});

test("checktimeout and negotiatetimeout default to each other, the virtual's first", () => {
  const timeouts = (text: string) => {
    const c = ok(loadConfigText("t.cf", text));
    return c.health.map((h) => h.realServers[0]?.checkers[0]?.connectTimeoutMs);
  };
  // connect uses checktimeout, negotiate (service http) negotiatetimeout.
  const v = (extra: string) =>
    `virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tchecktype=connect\n${extra}virtual=127.0.0.100:81\n\treal=127.0.0.11:81 gate\n\tservice=http\n${extra}`;
  assert.deepEqual(timeouts(v("")), [5000, 30000]);
  assert.deepEqual(timeouts(`negotiatetimeout=7\n${v("")}`), [7000, 7000]);
  assert.deepEqual(timeouts(`checktimeout=2\n${v("")}`), [2000, 2000]);
  assert.deepEqual(timeouts(`checktimeout=2\nnegotiatetimeout=9\n${v("")}`), [2000, 9000]);
  assert.deepEqual(timeouts(`checktimeout=2\nnegotiatetimeout=9\n${v("\tnegotiatetimeout=4\n")}`), [4000, 4000]);
});

test("a per-virtual checkinterval counts only with fork = yes", () => {
  const text = "virtual=127.0.0.100:80\n\treal=127.0.0.11:80 gate\n\tcheckinterval=3\n";
  const nofork = loadConfigText("i.cf", text);
  assert.equal(ok(nofork).health[0]?.delayLoopMs, 10_000);
  assert.deepEqual(pick(nofork.diagnostics, "warning"), [
    [3, 2, "checkinterval in a virtual section is ignored unless fork = yes (as ldirectord does)"],
  ]);
  const fork = ok(loadConfigText("i.cf", `fork=yes\n${text}`));
  assert.deepEqual(
    [fork.health[0]?.delayLoopMs, fork.health[0]?.realServers[0]?.checkers[0]?.delayLoopMs],
    [3000, 3000],
  );
});
