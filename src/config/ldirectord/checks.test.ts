// ldirectord's checktype/service settings mapped onto CheckerSpecs (the one mapping tvs has; the
// parser resolves defaults such as the service from the port before calling it), table-driven.
import assert from "node:assert/strict";
import { test } from "node:test";
import { type LdirectordCheckSettings, ldirectordChecker } from "./checks.ts";

const base: LdirectordCheckSettings = {
  checktype: "negotiate",
  service: "http",
  protocol: "tcp",
  realAddress: "192.168.10.1",
  realPort: 80,
  virtualAddress: "10.0.0.100",
  virtualPort: 80,
  intervalMs: 10_000,
  failurecount: 1,
};

const check = (over: Partial<LdirectordCheckSettings>) => ldirectordChecker({ ...base, ...over });

test("checktypes and services choose the checker ldirectord would run", () => {
  const cases: [Partial<LdirectordCheckSettings>, string, Record<string, unknown>?][] = [
    [{ checktype: "connect" }, "TCP_CHECK", { connectTimeoutMs: 5000 }],
    [{ checktype: "connect", protocol: "udp" }, "PING_CHECK"],
    [{ checktype: "ping" }, "PING_CHECK"],
    [{ checktype: "on" }, "STATIC_CHECK", { up: true, alpha: false }],
    [{ checktype: "off" }, "STATIC_CHECK", { up: false, alpha: true }],
    [{}, "HTTP_GET", { connectTimeoutMs: 30000, httpProtocol: "1.0" }],
    [{ service: "https", virtualPort: 443 }, "SSL_GET", { verifyCert: false }],
    [{ service: "smtp" }, "SMTP_CHECK"],
    [{ service: "submission" }, "SMTP_CHECK"],
    [
      { service: "dns", request: "www.example.com", receive: "10\\.0\\.0\\.1" },
      "DNS_CHECK",
      { queryType: "A", name: "www.example.com", answerRegex: "10\\.0\\.0\\.1" },
    ],
    [
      { service: "simpletcp", request: "/PING\\n", receive: "PONG" },
      "TCP_CHECK",
      { send: "PING\n", expectRegex: "PONG" },
    ],
    [{ service: "none" }, "STATIC_CHECK", { up: true }],
    [{ checktype: "3", service: "http" }, "HTTP_GET", { connectChecksBetween: 3 }],
    [
      { checktype: "external", checkcommand: "/usr/local/bin/chk", checkTimeoutMs: 5000 },
      "MISC_CHECK",
      { path: "/usr/local/bin/chk '10.0.0.100' '80' '192.168.10.1' '80'", dynamic: false, timeoutMs: 5000 },
    ],
  ];
  for (const [over, type, fields] of cases) {
    const { spec } = check(over);
    assert.equal(spec.type, type, JSON.stringify(over));
    for (const [k, v] of Object.entries(fields ?? {}))
      assert.deepEqual((spec as unknown as Record<string, unknown>)[k], v, `${JSON.stringify(over)} ${k}`);
  }
});

test("timing: checkinterval is delay_loop, failurecount F is F-1 retries an interval apart, checkport overrides", () => {
  const { spec } = check({
    checktype: "connect",
    intervalMs: 2000,
    failurecount: 3,
    checkTimeoutMs: 1500,
    checkport: 8080,
  });
  assert.equal(spec.delayLoopMs, 2000);
  assert.equal(spec.retry, 2);
  assert.equal(spec.delayBeforeRetryMs, 2000);
  assert.equal(spec.connectTimeoutMs, 1500);
  assert.equal(spec.connectPort, 8080);
  assert.equal(spec.warmupMs, 0);
  // negotiatetimeout falls back on checktimeout.
  assert.equal(check({ checkTimeoutMs: 4000 }).spec.connectTimeoutMs, 4000);
  assert.equal(check({ checkTimeoutMs: 4000, negotiateTimeoutMs: 9000 }).spec.connectTimeoutMs, 9000);
});

test("http negotiate: request becomes the path, receive the body regex, a URL request its own host", () => {
  const { spec } = check({ request: "index.html", receive: "Test Page", virtualhost: "www.example.com" });
  assert.equal(spec.type, "HTTP_GET");
  if (spec.type !== "HTTP_GET") return;
  assert.deepEqual(spec.urls, [{ path: "/index.html", statusCodes: [{ from: 200, to: 299 }], bodyRegex: "Test Page" }]);
  assert.equal(spec.virtualhost, "www.example.com");
  const url = check({ request: "http://app.example:8080/status" }).spec;
  assert.equal(url.type === "HTTP_GET" && url.urls[0]?.path, "/status");
  assert.equal(url.type === "HTTP_GET" && url.virtualhost, "app.example:8080");
  const https = check({ service: "https", virtualhost: "secure.example" }).spec;
  assert.equal(https.type === "SSL_GET" && https.sni, "secure.example");
});

test("services without a negotiate checker warn and fall back to a TCP connect", () => {
  const r = check({ service: "ftp" });
  assert.equal(r.spec.type, "TCP_CHECK");
  assert.match(r.warnings[0] ?? "", /service "ftp" has no negotiate checker/);
});
