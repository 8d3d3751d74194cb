// keepalived.conf → DirectorConfig: the seed configurations round-trip to the DesiredState that the
// equivalent ipvsadm commands create; each keyword family lands in the spec with keepalived's
// defaults; includes with globs; diagnostics at exact lines and columns.
import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { destSpec } from "../../core/dest.ts";
import { serviceOptions } from "../../core/service.ts";
import type { CheckerSpec } from "../../health/checker-spec.ts";
import type { Diagnostic } from "../diagnostics.ts";
import type { DirectorConfig } from "../director-config.ts";
import { parseIpvsadmRules, rulesToDesiredState } from "../ipvsadm-rules.ts";
import { type LoadResult, loadConfig, loadConfigText } from "../load.ts";

const FIX = join(import.meta.dirname, "../../../test/fixtures/config/keepalived");

function ok(r: LoadResult): DirectorConfig {
  if (!("config" in r))
    assert.fail(`unexpected errors:\n${r.diagnostics.map((d) => `${d.line}:${d.column} ${d.message}`).join("\n")}`);
  return r.config;
}

/** Diagnostics of one severity as [line, column, message], in line/column order. */
function pick(list: readonly Diagnostic[], severity: Diagnostic["severity"]): [number, number, string][] {
  return list
    .filter((d) => d.severity === severity)
    .map((d): [number, number, string] => [d.line, d.column, d.message])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1] || (a[2] < b[2] ? -1 : 1));
}

function errors(r: LoadResult): [number, number, string][] {
  assert.ok(!("config" in r), "expected the configuration to be refused");
  return pick(r.diagnostics, "error");
}

function warnings(list: readonly Diagnostic[]): [number, number, string][] {
  return pick(list, "warning");
}

async function ipvsadm(rules: string) {
  return rulesToDesiredState(await parseIpvsadmRules(rules));
}

/** A virtual_server block around `body`, for small cases. */
function vs(body: string, head = "127.0.0.100 80"): string {
  return `virtual_server ${head} {\n${body}\n}\n`;
}

test("seed 004 DR master: the same table as the ipvsadm commands, TCP_CHECK per real server", async () => {
  const c = ok(loadConfig(join(FIX, "dr-master.conf")));
  assert.equal(c.format, "keepalived");
  assert.deepEqual(
    c.desired,
    await ipvsadm(`
      ipvsadm -A -t 127.0.0.100:80 -s rr
      ipvsadm -a -t 127.0.0.100:80 -r 127.0.0.11:80 -g -w 1
      ipvsadm -a -t 127.0.0.100:80 -r 127.0.0.12:80 -g -w 1
    `),
  );
  const h = c.health[0];
  assert.equal(h?.serviceId, "tcp 127.0.0.100:80");
  assert.equal(h?.delayLoopMs, 6000);
  assert.deepEqual(
    h?.realServers.map((r) => [
      r.addr,
      r.port,
      r.weight,
      r.checkers.map((k) => [k.type, k.connectTimeoutMs, k.delayLoopMs]),
    ]),
    [
      ["127.0.0.11", 80, 1, [["TCP_CHECK", 3000, 6000]]],
      ["127.0.0.12", 80, 1, [["TCP_CHECK", 3000, 6000]]],
    ],
  );
  assert.deepEqual(c.globals, { router_id: ["LVS_DEVEL"] });
  const vi = c.vrrp.instances[0];
  assert.deepEqual(
    [vi?.name, vi?.state, vi?.interface, vi?.virtualRouterId, vi?.priority, vi?.advertIntMs, vi?.authentication],
    ["VI_1", "MASTER", "lo", 51, 100, 1000, { type: "PASS", pass: "1111" }],
  );
  assert.deepEqual(
    vi?.virtualIpaddresses.map((v) => [v.addr, v.prefix]),
    [["127.0.0.100", 32]],
  );
  assert.deepEqual(warnings(c.warnings), []);
});

test("seed 004 DR backup differs from the master only in VRRP state and priority", () => {
  const m = ok(loadConfig(join(FIX, "dr-master.conf")));
  const b = ok(loadConfig(join(FIX, "dr-backup.conf")));
  assert.deepEqual(b.desired, m.desired);
  assert.deepEqual([b.vrrp.instances[0]?.state, b.vrrp.instances[0]?.priority], ["BACKUP", 50]);
});

test("NAT wrr 2:1 with persistence, thresholds and port mapping equals the ipvsadm rules", async () => {
  const c = ok(loadConfig(join(FIX, "nat-wrr.conf")));
  assert.deepEqual(
    c.desired,
    await ipvsadm(`
      -A -t 127.0.0.100:8080 -s wrr -p 120 -M 255.255.255.0
      -a -t 127.0.0.100:8080 -r 127.0.0.11:8081 -m -w 2 -x 100 -y 10
      -a -t 127.0.0.100:8080 -r 127.0.0.12:8082 -m -w 1
    `),
  );
  const h = c.health[0];
  assert.ok(h);
  assert.deepEqual(
    [h.delayLoopMs, h.quorum, h.hysteresis, h.alpha, h.omega, h.inhibitOnFailure, h.virtualhost],
    [2000, 2, 1, true, true, true, "www.example.test"],
  );
  assert.deepEqual(h.quorumUp, { command: "/usr/local/bin/quorum.sh up" });
  assert.deepEqual(h.quorumDown, { command: "/usr/local/bin/quorum.sh" });
  assert.deepEqual(h.sorryServer, { dest: destSpec("127.0.0.1", 9999, { fwd: "masq" }), inhibit: true });
  const [r1, r2] = h.realServers;
  assert.deepEqual([r1?.inhibitOnFailure, r1?.alpha, r2?.inhibitOnFailure], [true, true, false]);
  assert.deepEqual(r1?.notifyUp, { command: "/bin/echo up", user: "nobody", group: "nogroup" });
  assert.deepEqual(r1?.notifyDown, { command: "/bin/echo" });
  const http = r1?.checkers[0];
  assert.equal(http?.type, "HTTP_GET");
  if (http?.type !== "HTTP_GET") return;
  assert.deepEqual(
    [http.connectTimeoutMs, http.retry, http.delayBeforeRetryMs, http.delayLoopMs, http.alpha, http.omega],
    [2000, 3, 500, 2000, true, true],
  );
  // virtualhost comes down from the virtual server when neither checker nor real server sets one.
  assert.equal(http.virtualhost, "www.example.test");
  assert.deepEqual(http.urls, [
    {
      path: "/health",
      statusCodes: [
        { from: 200, to: 200 },
        { from: 204, to: 204 },
        { from: 300, to: 302 },
      ],
    },
    { path: "/index.html", statusCodes: [{ from: 200, to: 299 }], digest: "9b3a0c85a887a256d6939da88aabd8cd" },
  ]);
  const tcp = r2?.checkers[0];
  assert.deepEqual([tcp?.type, tcp?.connectPort, tcp?.retry, tcp?.delayBeforeRetryMs], ["TCP_CHECK", 8082, 1, 1000]);
});

test("every checker type with its options and the virtual/real server inheritance", () => {
  const c = ok(loadConfig(join(FIX, "checkers.conf")));
  const list = c.health[0]?.realServers[0]?.checkers ?? [];
  const byType = new Map<string, CheckerSpec>(list.map((k) => [k.type, k]));
  assert.deepEqual(
    list.map((k) => k.type),
    [
      "TCP_CHECK",
      "HTTP_GET",
      "SSL_GET",
      "SMTP_CHECK",
      "DNS_CHECK",
      "MISC_CHECK",
      "UDP_CHECK",
      "PING_CHECK",
      "FILE_CHECK",
    ],
  );
  // Inherited from the virtual server (connect_timeout 4, retry 2, warmup 0, delay_loop 10) and
  // the real server (delay_before_retry 2).
  const tcp = byType.get("TCP_CHECK");
  assert.deepEqual(tcp, {
    type: "TCP_CHECK",
    connectTimeoutMs: 4000,
    retry: 2,
    delayBeforeRetryMs: 2000,
    warmupMs: 0,
    alpha: false,
    omega: false,
    delayLoopMs: 10_000,
    connectIp: "127.0.0.21",
    connectPort: 8080,
    bindTo: "127.0.0.1",
    bindPort: 40000,
  });
  const http = byType.get("HTTP_GET");
  assert.ok(http?.type === "HTTP_GET");
  assert.deepEqual([http.httpProtocol, http.virtualhost, http.sni], ["1.1", "site.test", undefined]);
  assert.deepEqual(http.urls, [
    { path: "/ok", statusCodes: [{ from: 200, to: 299 }], bodyRegex: "^OK", virtualhost: "other.test" },
  ]);
  const ssl = byType.get("SSL_GET");
  assert.ok(ssl?.type === "SSL_GET");
  assert.deepEqual([ssl.sni, ssl.verifyCert], ["tls.test", false]);
  const smtp = byType.get("SMTP_CHECK");
  assert.ok(smtp?.type === "SMTP_CHECK");
  assert.deepEqual([smtp.heloName, smtp.connectPort], ["director.test", 25]);
  const dns = byType.get("DNS_CHECK");
  assert.ok(dns?.type === "DNS_CHECK");
  assert.deepEqual([dns.queryType, dns.name, dns.retry, dns.delayBeforeRetryMs], ["AAAA", "example.test", 2, 2000]);
  const misc = byType.get("MISC_CHECK");
  assert.ok(misc?.type === "MISC_CHECK");
  assert.deepEqual(
    [misc.path, misc.timeoutMs, misc.dynamic, misc.user, misc.group],
    ["/usr/local/bin/check.sh 127.0.0.11 --quiet", 3000, true, "nobody", "nogroup"],
  );
  const udp = byType.get("UDP_CHECK");
  assert.ok(udp?.type === "UDP_CHECK");
  // keepalived's free-form hex: "Ab12f 3" → ab 12 0f 03.
  assert.deepEqual(
    [udp.payloadHex, udp.requireReply, udp.replyHex, udp.minReplyLength, udp.maxReplyLength],
    ["ab120f03", true, "0001", 2, 512],
  );
  assert.equal(byType.get("PING_CHECK")?.retry, 0);
  const file = byType.get("FILE_CHECK");
  assert.ok(file?.type === "FILE_CHECK");
  assert.deepEqual([file.file, file.weight, file.reverse], ["/run/tvs/web.weight", -5, true]);
});

test("checker defaults are keepalived's when nothing is set", () => {
  const c = ok(
    loadConfigText(
      "d.conf",
      vs(
        "lb_algo rr\nlb_kind DR\nprotocol TCP\nreal_server 127.0.0.11 80 {\nHTTP_GET {\nurl {\npath /\n}\n}\nDNS_CHECK {\n}\nMISC_CHECK {\nmisc_path /bin/true\n}\n}",
      ),
    ),
  );
  const [http, dns, misc] = c.health[0]?.realServers[0]?.checkers ?? [];
  assert.deepEqual(
    [http?.connectTimeoutMs, http?.retry, http?.delayBeforeRetryMs, http?.delayLoopMs, http?.warmupMs],
    [5000, 1, 3000, 60_000, 60_000],
  );
  assert.ok(dns?.type === "DNS_CHECK");
  assert.deepEqual([dns.retry, dns.delayBeforeRetryMs, dns.queryType, dns.name], [3, 60_000, "SOA", ""]);
  assert.ok(misc?.type === "MISC_CHECK");
  assert.deepEqual([misc.retry, misc.timeoutMs, misc.dynamic], [0, 60_000, false]);
});

test("virtual_server_group ranges, CIDR blocks and fwmarks expand like separate ipvsadm services", async () => {
  const c = ok(loadConfig(join(FIX, "groups.conf")));
  const expected = await ipvsadm(`
    -A -t 127.0.0.100:80 -s sh -b sh-fallback,sh-port
    -a -t 127.0.0.100:80 -r 127.0.0.11:80 -g -w 3
    -a -t 127.0.0.100:80 -r 127.0.0.12:80 -g -w 1
    -A -t 127.0.0.101:80 -s sh -b sh-fallback,sh-port
    -a -t 127.0.0.101:80 -r 127.0.0.11:80 -g -w 3
    -a -t 127.0.0.101:80 -r 127.0.0.12:80 -g -w 1
    -A -t 127.0.0.102:80 -s sh -b sh-fallback,sh-port
    -a -t 127.0.0.102:80 -r 127.0.0.11:80 -g -w 3
    -a -t 127.0.0.102:80 -r 127.0.0.12:80 -g -w 1
    -A -t 127.0.1.0:80 -s sh -b sh-fallback,sh-port
    -a -t 127.0.1.0:80 -r 127.0.0.11:80 -g -w 3
    -a -t 127.0.1.0:80 -r 127.0.0.12:80 -g -w 1
    -A -t 127.0.1.1:80 -s sh -b sh-fallback,sh-port
    -a -t 127.0.1.1:80 -r 127.0.0.11:80 -g -w 3
    -a -t 127.0.1.1:80 -r 127.0.0.12:80 -g -w 1
    -A -t 127.0.2.5:8080 -s sh -b sh-fallback,sh-port
    -a -t 127.0.2.5:8080 -r 127.0.0.11:8080 -g -w 3
    -a -t 127.0.2.5:8080 -r 127.0.0.12:8080 -g -w 1
    -A -f 7 -s mh -b mh-port -p 360
    -a -f 7 -r 127.0.0.21:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
    -A -f 9 -s wlc
    -a -f 9 -r 127.0.0.31:8000 -m -w 1
  `);
  assert.deepEqual(c.desired, expected);
  assert.deepEqual(
    c.health.map((h) => h.group ?? "-"),
    ["WEB", "WEB", "WEB", "WEB", "WEB", "WEB", "MARKS", "-"],
  );
  assert.deepEqual(warnings(c.warnings), [
    [27, 5, "Port 80 of 127.0.0.21 is ignored for a fwmark service with tunnel forwarding"],
  ]);
});

test("include: relative globs in file order, plain paths, VRRP blocks across files", () => {
  const c = ok(loadConfig(join(FIX, "include/main.conf")));
  assert.deepEqual(
    c.files.map((f) => f.slice(FIX.length + 1)),
    ["include/main.conf", "include/conf.d/10-web.conf", "include/conf.d/20-dns.conf", "include/vrrp.inc"],
  );
  assert.deepEqual(
    c.desired.services.map((s) => [
      s.key.kind === "vip" ? `${s.key.protocol} ${s.key.addr}:${s.key.port}` : "",
      s.options.ops,
    ]),
    [
      ["tcp 127.0.0.100:80", false],
      ["udp 127.0.0.100:53", true],
    ],
  );
  assert.deepEqual(c.vrrp.scripts[0], {
    name: "chk_web",
    script: "/usr/bin/curl -sf http://127.0.0.11/",
    intervalMs: 2000,
    weight: -20,
    rise: 3,
    fall: 2,
    origin: { file: join(FIX, "include/vrrp.inc"), line: 1, column: 1 },
  });
  const vi = c.vrrp.instances[0];
  assert.deepEqual(
    [
      vi?.advertIntMs,
      vi?.preempt,
      vi?.priority,
      vi?.trackScripts,
      vi?.virtualIpaddresses[0]?.dev,
      vi?.virtualIpaddresses[0]?.label,
    ],
    [500, false, 90, [{ name: "chk_web" }], "lo", "lo:vip"],
  );
  assert.deepEqual(c.vrrp.syncGroups[0]?.instances, ["VI_1"]);
  // Diagnostics name the included file and its own line.
  assert.deepEqual(
    c.warnings.map((w) => [w.file.slice(FIX.length + 1), w.line, w.column]),
    [["include/vrrp.inc", 8, 1]],
  );
});

test("an include loop is an error at the include that closes it", () => {
  const r = loadConfig(join(FIX, "include/loop/a.conf"));
  assert.ok(!("config" in r));
  assert.deepEqual(
    r.diagnostics.map((d) => [d.file.slice(FIX.length + 1), d.line, d.column, d.severity]),
    [["include/loop/b.conf", 8, 9, "error"]],
  );
  assert.match(r.diagnostics[0]?.message ?? "", /^Include loop: ".*a\.conf" is already being read$/);
});

test("a missing include is an error, a glob matching nothing a warning", () => {
  const file = join(FIX, "include/inline.conf");
  const r = loadConfigText(file, "include conf.d/*.nothing\ninclude   does-not-exist.conf\n");
  assert.ok(!("config" in r));
  assert.deepEqual(
    r.diagnostics.map((d) => [d.line, d.column, d.severity, d.message]),
    [
      [1, 9, "warning", 'Include pattern "conf.d/*.nothing" matches no file'],
      [2, 11, "error", `Cannot read included file "${join(FIX, "include/does-not-exist.conf")}" (ENOENT)`],
    ],
  );
});

test("persistence: bare persistence_timeout is keepalived's 360 s; 0 means not persistent", () => {
  const base = "lb_algo rr\nlb_kind DR\nprotocol TCP\nreal_server 127.0.0.11 80 {\n}\n";
  const bare = ok(loadConfigText("p.conf", vs(`${base}persistence_timeout`)));
  assert.deepEqual(
    bare.desired.services[0]?.options,
    serviceOptions(4, { scheduler: "rr", persistent: true, timeout: 360 }),
  );
  const zero = ok(loadConfigText("p.conf", vs(`${base}persistence_timeout 0`)));
  assert.deepEqual(zero.desired.services[0]?.options, serviceOptions(4, { scheduler: "rr", timeout: 0 }));
  // Granularity alone makes the service persistent with the default timeout, as keepalived does.
  const gran = ok(loadConfigText("p.conf", vs(`${base}persistence_granularity 255.255.0.0`)));
  assert.deepEqual(
    gran.desired.services[0]?.options,
    serviceOptions(4, { scheduler: "rr", persistent: true, timeout: 360, netmask: 16 }),
  );
  // Port 0 needs persistence: keepalived turns it on and says so.
  const port0 = loadConfigText("p.conf", vs(base, "127.0.0.100 0"));
  assert.deepEqual(ok(port0).desired.services[0]?.options.persistent, true);
  // ...and, as keepalived and ipvsadm do for DR, the real server takes the virtual port.
  assert.deepEqual(ok(port0).desired.services[0]?.dests, [destSpec("127.0.0.11", 0)]);
  assert.deepEqual(warnings(port0.diagnostics), [
    [1, 1, "virtual_server 127.0.0.100 0: port 0 is only valid for a persistent service - making it persistent"],
    [5, 1, "Port 80 of 127.0.0.11 differs from the virtual port 0, which droute forwarding keeps - using 0"],
  ]);
});

test("keepalived's defaults and corrections come with warnings", () => {
  const r = loadConfigText(
    "w.conf",
    vs(
      [
        "quorum 10",
        "hysteresis 5",
        "real_server 127.0.0.11 8080 {", // DR keeps the virtual port: reset with a warning
        "  weight 2",
        "}",
        "real_server 127.0.0.12 {", // no port: the virtual port
        "}",
        "real_server 127.0.0.11 8080 {", // duplicate
        "}",
      ].join("\n"),
    ).replace("{\n", "{\nlb_kind DR\n"),
  );
  const c = ok(r);
  assert.deepEqual(c.desired.services[0], {
    key: { kind: "vip", protocol: "udp", addr: "127.0.0.100", port: 80 },
    options: serviceOptions(4, { timeout: 0 }),
    dests: [destSpec("127.0.0.11", 80, { weight: 2 }), destSpec("127.0.0.12", 80)],
  });
  assert.deepEqual([c.health[0]?.quorum, c.health[0]?.hysteresis], [3, 2]);
  assert.deepEqual(warnings(r.diagnostics), [
    [1, 1, "hysteresis 5 must be below quorum 3 - using 2"],
    [1, 1, "quorum 10 exceeds the total weight 3 of the real servers - using 3"],
    [1, 1, "virtual_server 127.0.0.100 80 has no lb_algo - using wlc"],
    [1, 1, "virtual_server 127.0.0.100 80 has no protocol - defaulting to UDP as keepalived does"],
    [5, 1, "Port 8080 of 127.0.0.11 differs from the virtual port 80, which droute forwarding keeps - using 80"],
    [10, 1, "real_server 127.0.0.11 8080 is listed twice in virtual_server 127.0.0.100 80 - second ignored"],
  ]);
});

test("unknown keywords are warnings and the configuration still loads", () => {
  const r = loadConfigText(
    "u.conf",
    "global_defs {\n  router_idd x\n}\nvirtual_server 127.0.0.100 80 {\n  lb_algo rr\n  lb_kind NAT\n  protocol TCP\n  frobnicate 3\n  real_server 127.0.0.11 80 {\n    wieght 3\n    TCP_CHECK {\n      conect_timeout 1\n    }\n  }\n}\nmystery_block {\n}\n",
  );
  ok(r);
  assert.deepEqual(warnings(r.diagnostics), [
    [2, 3, 'Unknown keyword "router_idd" in global_defs - ignored'],
    [8, 3, 'Unknown keyword "frobnicate" in virtual_server - ignored'],
    [10, 5, 'Unknown keyword "wieght" in real_server - ignored'],
    [12, 7, 'Unknown keyword "conect_timeout" in TCP_CHECK - ignored'],
    [16, 1, 'Unknown keyword "mystery_block" in the configuration - ignored'],
  ]);
});

test("bad values are errors at the value; missing values right after the keyword", () => {
  const text = [
    "virtual_server 127.0.0.100 80 {", // 1
    "    lb_algo roundrobin", // 2
    "    lb_kind DSR", // 3
    "    protocol TCP", // 4
    "    delay_loop soon", // 5
    "    persistence_granularity 255.0.255.0", // 6
    "    real_server 127.0.0.300 80 {", // 7
    "    }", // 8
    "    real_server 127.0.0.11 80 {", // 9
    "        weight -1", // 10
    "        HTTP_GET {", // 11
    "            url {", // 12
    "                status_code 2xx", // 13
    "            }", // 14
    "        }", // 15
    "        uthreshold", // 16
    "    }", // 17
    "}", // 18
  ].join("\n");
  assert.deepEqual(errors(loadConfigText("e.conf", text)), [
    [2, 13, 'Invalid lb_algo "roundrobin" (expected one of rr wrr lc wlc lblc sh mh dh fo ovf lblcr sed nq twos)'],
    [3, 13, 'Invalid lb_kind "DSR" (expected NAT, DR, TUN or FNAT)'],
    [5, 16, 'Invalid delay_loop "soon" (expected seconds >= 0.001, e.g. 3 or 0.5)'],
    [6, 29, 'Invalid persistence_granularity "255.0.255.0" (expected a contiguous netmask like 255.255.255.0)'],
    [7, 17, 'Invalid real_server IP address "127.0.0.300"'],
    [10, 16, 'Invalid weight "-1" (expected an integer 0..2147483647)'],
    [12, 13, "url block has no path"],
    [13, 29, 'Invalid status_code "2xx" (expected a code 100..599 or a range like 200-299)'],
    [16, 19, 'Missing an integer (0..4294967295) after "uthreshold"'],
  ]);
});

test("structural errors: real_server outside a virtual_server, checkers outside a real_server, unknown group", () => {
  const text = [
    "real_server 127.0.0.11 80 {", // 1
    "}", // 2
    "TCP_CHECK {", // 3
    "}", // 4
    "virtual_server 127.0.0.100 80 {", // 5
    "  lb_algo rr", // 6
    "  lb_kind DR", // 7
    "  protocol TCP", // 8
    "  TCP_CHECK {", // 9
    "  }", // 10
    "  real_server 127.0.0.11 80 {", // 11
    "  }", // 12
    "}", // 13
    "virtual_server group NOPE {", // 14
    "  real_server 127.0.0.11 80 {", // 15
    "  }", // 16
    "}", // 17
    "virtual_server 127.0.0.100 80 {", // 18
    "  lb_algo rr", // 19
    "  lb_kind DR", // 20
    "  protocol TCP", // 21
    "  real_server 127.0.0.12 80 {", // 22
    "  }", // 23
    "}", // 24
  ].join("\n");
  assert.deepEqual(errors(loadConfigText("s.conf", text)), [
    [1, 1, "real_server outside a virtual_server"],
    [3, 1, "TCP_CHECK outside a real_server"],
    [9, 3, "TCP_CHECK must be inside a real_server block"],
    [14, 22, 'Unknown virtual_server_group "NOPE"'],
    [18, 1, "Virtual service tcp 127.0.0.100:80 is defined twice (first at s.conf:5)"],
  ]);
});

test("VRRP blocks are validated: state, virtual_router_id, priority, addresses, sync groups", () => {
  const text = [
    "vrrp_instance VI_1 {", // 1
    "  state PRIMARY", // 2
    "  interface lo", // 3
    "  virtual_router_id 300", // 4
    "  priority 0", // 5
    "  advert_int 1", // 6
    "  virtual_ipaddress {", // 7
    "    127.0.0.100/33", // 8
    "    10.0.0.x", // 9
    "  }", // 10
    "  authentication {", // 11
    "    auth_type KERBEROS", // 12
    "    auth_pass 123456789", // 13
    "  }", // 14
    "  track_script {", // 15
    "    chk_missing weight 300", // 16
    "  }", // 17
    "}", // 18
    "vrrp_instance VI_2 {", // 19
    "  interface lo", // 20
    "}", // 21
    "vrrp_sync_group G {", // 22
    "  group {", // 23
    "    VI_1 VI_9", // 24
    "  }", // 25
    "}", // 26
  ].join("\n");
  assert.deepEqual(errors(loadConfigText("v.conf", text)), [
    [2, 9, 'Invalid state "PRIMARY" (expected MASTER or BACKUP)'],
    [4, 21, 'Invalid virtual_router_id "300" (expected an integer 1..255)'],
    [5, 12, 'Invalid priority "0" (expected an integer 1..255)'],
    [8, 5, 'Invalid prefix length "/33" in "127.0.0.100/33" (expected 0..32)'],
    [9, 5, 'Invalid virtual IP address "10.0.0.x"'],
    [11, 3, "authentication needs both auth_type and auth_pass"],
    [12, 15, 'Invalid auth_type "KERBEROS" (expected PASS or AH)'],
    [16, 24, 'Invalid track weight "300" (expected -254..254)'],
    [19, 1, "vrrp_instance VI_2 has no virtual_router_id"],
    [22, 1, 'vrrp_sync_group G names unknown vrrp_instance "VI_9"'],
  ]);
});

test("a valid VRRP instance loads and keeps its settings; keywords tvs does not act on are warned about", () => {
  const text =
    'vrrp_script chk {\n script /bin/true\n}\nvrrp_instance A {\n state MASTER\n interface lo\n virtual_router_id 7\n priority 150\n unicast_src_ip 127.0.0.1\n unicast_peer {\n  127.0.0.2\n }\n track_script {\n  chk weight -10\n }\n notify_master "/bin/echo master"\n garp_master_delay 5\n dont_track_primary\n}\n';
  const r = loadConfigText("vr.conf", text);
  const c = ok(r);
  const a = c.vrrp.instances[0];
  assert.deepEqual(
    [a?.priority, a?.unicastSrcIp, a?.unicastPeers, a?.trackScripts, a?.notify, a?.garpMasterDelayMs, a?.extra],
    [
      150,
      "127.0.0.1",
      ["127.0.0.2"],
      [{ name: "chk", weight: -10 }],
      { master: "/bin/echo master" },
      5000,
      { dont_track_primary: [] },
    ],
  );
  assert.deepEqual(warnings(r.diagnostics), [[18, 2, "dont_track_primary is not supported by tvs VRRP - ignored"]]);
});

test("VRRP refusals: use_vmac, auth_type AH, a VIP in two instances, mixed families", () => {
  const text = [
    "vrrp_instance A {", // 1
    "  interface lo", // 2
    "  virtual_router_id 1", // 3
    "  use_vmac", // 4
    "  authentication {", // 5
    "    auth_type AH", // 6
    "    auth_pass 1111", // 7
    "  }", // 8
    "  virtual_ipaddress {", // 9
    "    127.0.0.100/32", // 10
    "  }", // 11
    "}", // 12
    "vrrp_instance B {", // 13
    "  interface tvs-no-such0", // 14
    "  virtual_router_id 2", // 15
    "  virtual_ipaddress {", // 16
    "    127.0.0.100/32", // 17
    "    ::1/128", // 18
    "  }", // 19
    "}", // 20
  ].join("\n");
  assert.deepEqual(errors(loadConfigText("r.conf", text)), [
    [
      4,
      3,
      'use_vmac is not supported by tvs (it does not create a VMAC or ipvlan interface per instance): remove it; the VIPs are configured on "lo" itself',
    ],
    [
      5,
      3,
      "auth_type AH (IPsec AH authentication, removed from VRRP by RFC 3768) is not supported by tvs: use auth_type PASS or no authentication",
    ],
    [
      13,
      1,
      "vrrp_instance B mixes IPv4 and IPv6 virtual_ipaddress (use virtual_ipaddress_excluded for the other family)",
    ],
    [17, 5, "Virtual address 127.0.0.100 is in vrrp_instance A and B"],
  ]);
});

test("forwarding methods: TUN options, FNAT as fullnat, per-real-server lvs_method overrides", async () => {
  const c = ok(
    loadConfigText(
      "f.conf",
      vs(
        "lb_algo wlc\nlb_kind FNAT\nprotocol TCP\nreal_server 127.0.0.11 8080 {\n}\nreal_server 127.0.0.12 80 {\n  lvs_method TUN type gre nocsum\n}\nreal_server 127.0.0.13 80 {\n  lvs_method TUN\n}\n",
      ),
    ),
  );
  assert.deepEqual(c.desired.services[0]?.dests, [
    destSpec("127.0.0.11", 8080, { fwd: "fullnat" }),
    destSpec("127.0.0.12", 80, {
      fwd: "tunnel",
      tun: { type: "gre", port: 0, nocsum: true, csum: false, remcsum: false },
    }),
    destSpec("127.0.0.13", 80, { fwd: "tunnel" }),
  ]);
  assert.deepEqual(
    errors(loadConfigText("f.conf", vs("lb_kind TUN type gue\nprotocol TCP\nreal_server 127.0.0.11 80 {\n}"))),
    [[2, 9, "A gue tunnel needs a port, and only a gue tunnel takes one"]],
  );
});

test("IPv6: addresses, prefix-length granularity, group ranges, and family mismatches", async () => {
  const text =
    "virtual_server 2001:db8::100 80 {\n lb_algo rr\n lb_kind DR\n protocol TCP\n persistence_granularity 64\n persistence_timeout 50\n real_server 2001:db8::11 80 {\n }\n}\n" +
    "virtual_server_group G6 {\n 2001:db8::1-2 443\n}\nvirtual_server group G6 {\n lb_algo rr\n lb_kind NAT\n protocol TCP\n real_server 2001:db8::11 8443 {\n }\n}\n";
  assert.deepEqual(
    ok(loadConfigText("v6.conf", text)).desired,
    await ipvsadm(`
      -A -t [2001:db8::100]:80 -s rr -p 50 -M 64
      -a -t [2001:db8::100]:80 -r [2001:db8::11]:80 -g -w 1
      -A -t [2001:db8::1]:443 -s rr
      -a -t [2001:db8::1]:443 -r [2001:db8::11]:8443 -m -w 1
      -A -t [2001:db8::2]:443 -s rr
      -a -t [2001:db8::2]:443 -r [2001:db8::11]:8443 -m -w 1
    `),
  );
  const mixed = text.replace(" real_server 2001:db8::11 80 {", " real_server 127.0.0.11 80 {");
  assert.deepEqual(errors(loadConfigText("v6.conf", mixed)), [
    [7, 2, "real_server 127.0.0.11 is IPv4 but virtual_server 2001:db8::100 80 is IPv6"],
  ]);
});

test("retry is at least 1 on virtual and real servers, 0 is allowed on a checker", () => {
  const body = (where: string) =>
    vs(
      `lb_algo rr\nlb_kind DR\nprotocol TCP\n${where === "vs" ? "retry 0\n" : ""}real_server 127.0.0.11 80 {\n${where === "rs" ? "retry 0\n" : ""}TCP_CHECK {\n${where === "checker" ? "retry 0\n" : ""}}\n}`,
    );
  assert.deepEqual(errors(loadConfigText("r.conf", body("vs"))), [
    [5, 7, 'Invalid retry "0" (expected an integer 1..4294967295)'],
  ]);
  assert.deepEqual(errors(loadConfigText("r.conf", body("rs"))), [
    [6, 7, 'Invalid retry "0" (expected an integer 1..4294967295)'],
  ]);
  assert.equal(ok(loadConfigText("r.conf", body("checker"))).health[0]?.realServers[0]?.checkers[0]?.retry, 0);
});

test("include inside a block, with a quoted glob, splices the lines into that block", async () => {
  const c = ok(loadConfig(join(FIX, "include/inside-block.conf")));
  assert.deepEqual(
    c.desired,
    await ipvsadm(`
      -A -t 127.0.0.100:80 -s wrr
      -a -t 127.0.0.100:80 -r 127.0.0.11:80 -g -w 2
      -a -t 127.0.0.100:80 -r 127.0.0.12:80 -g -w 1
    `),
  );
  assert.deepEqual(
    c.health[0]?.realServers.map((r) => [r.origin.file.slice(FIX.length + 1), r.origin.line]),
    [
      ["include/servers/web-rs.conf", 2],
      ["include/servers/web-rs.conf", 5],
    ],
  );
});

test("a group mixing IPv4 and IPv6 needs tunnelled real servers", () => {
  const text = (kind: string) =>
    `virtual_server_group MIX {\n 127.0.0.100 80\n 2001:db8::100 80\n}\nvirtual_server group MIX {\n lb_algo rr\n lb_kind ${kind}\n protocol TCP\n real_server 127.0.0.11 80 {\n }\n}\n`;
  assert.deepEqual(errors(loadConfigText("mix.conf", text("DR"))), [
    [
      5,
      1,
      "virtual_server group MIX mixes IPv4 and IPv6 (tcp [2001:db8::100]:80); only tunnelled real servers allow that",
    ],
  ]);
  const c = ok(loadConfigText("mix.conf", text("TUN")));
  assert.deepEqual(
    c.desired.services.map((s) => [s.key.kind === "vip" && s.key.addr, s.options.netmask, s.dests[0]?.fwd]),
    [
      ["127.0.0.100", 32, "tunnel"],
      ["2001:db8::100", 128, "tunnel"],
    ],
  );
});
