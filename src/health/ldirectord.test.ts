// ldirectord checktype/service settings mapped onto CheckerSpecs, table-driven, plus the errors
// for bad values and one mapped negotiate check run against a loopback HTTP server.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkWithTimeout } from "./checker.ts";
import { createChecker } from "./create-checker.ts";
import { type LdirectordCheckInput, ldirectordCheck } from "./ldirectord.ts";
import { listenTcp } from "./test-listeners.ts";

const base: LdirectordCheckInput = {
  realAddress: "192.168.10.1",
  realPort: 80,
  virtualAddress: "10.0.0.100",
  virtualPort: 80,
};

test("checktypes and services choose the checker ldirectord would run", () => {
  const cases: [Partial<LdirectordCheckInput>, string, Record<string, unknown>?][] = [
    [{ checktype: "connect" }, "TCP_CHECK", { connectTimeoutMs: 5000 }],
    [{ checktype: "connect", protocol: "udp" }, "PING_CHECK"],
    [{ checktype: "ping" }, "PING_CHECK"],
    [{ checktype: "on" }, "STATIC_CHECK", { up: true }],
    [{ checktype: "off" }, "STATIC_CHECK", { up: false, alpha: true }],
    [{ checktype: "on" }, "STATIC_CHECK", { up: true, alpha: false }],
    [{}, "HTTP_GET", { connectTimeoutMs: 30000, httpProtocol: "1.0" }],
    [{ checktype: "negotiate", service: "https", virtualPort: 443 }, "SSL_GET", { verifyCert: false }],
    [{ checktype: "negotiate", virtualPort: 25 }, "SMTP_CHECK"],
    [{ checktype: "negotiate", service: "submission" }, "SMTP_CHECK"],
    [
      { checktype: "negotiate", virtualPort: 53, request: "www.example.com", receive: "10\\.0\\.0\\.1" },
      "DNS_CHECK",
      { queryType: "A", name: "www.example.com", answerRegex: "10\\.0\\.0\\.1" },
    ],
    [
      { checktype: "negotiate", service: "simpletcp", request: "/PING\\n", receive: "PONG" },
      "TCP_CHECK",
      { send: "PING\n", expectRegex: "PONG" },
    ],
    [{ checktype: "negotiate", service: "none" }, "STATIC_CHECK", { up: true }],
    [{ checktype: "negotiate", virtualPort: 3306 }, "TCP_CHECK"],
    [{ checktype: "3", service: "http" }, "HTTP_GET", { connectChecksBetween: 3 }],
    [
      { checktype: "external", checkcommand: "/usr/local/bin/chk" },
      "MISC_CHECK",
      { path: "/usr/local/bin/chk '10.0.0.100' '80' '192.168.10.1' '80'", dynamic: false, timeoutMs: 5000 },
    ],
  ];
  for (const [over, type, fields] of cases) {
    const { spec } = ldirectordCheck({ ...base, ...over });
    assert.equal(spec.type, type, JSON.stringify(over));
    for (const [k, v] of Object.entries(fields ?? {}))
      assert.deepEqual((spec as unknown as Record<string, unknown>)[k], v, `${JSON.stringify(over)} ${k}`);
  }
});

test("timing: checkinterval is delay_loop, failurecount F is F-1 retries an interval apart, checkport overrides", () => {
  const { spec } = ldirectordCheck({
    ...base,
    checktype: "connect",
    checkinterval: 2,
    failurecount: 3,
    checktimeout: 1.5,
    checkport: 8080,
  });
  assert.equal(spec.delayLoopMs, 2000);
  assert.equal(spec.retry, 2);
  assert.equal(spec.delayBeforeRetryMs, 2000);
  assert.equal(spec.connectTimeoutMs, 1500);
  assert.equal(spec.connectPort, 8080);
  assert.equal(spec.warmupMs, 0);
  // negotiatetimeout falls back on checktimeout.
  assert.equal(ldirectordCheck({ ...base, checktimeout: 4 }).spec.connectTimeoutMs, 4000);
  assert.equal(ldirectordCheck({ ...base, checktimeout: 4, negotiatetimeout: 9 }).spec.connectTimeoutMs, 9000);
});

test("http negotiate: request becomes the path, receive the body regex, a URL request its own host", () => {
  const { spec } = ldirectordCheck({
    ...base,
    request: "index.html",
    receive: "Test Page",
    virtualhost: "www.example.com",
  });
  assert.equal(spec.type, "HTTP_GET");
  if (spec.type !== "HTTP_GET") return;
  assert.deepEqual(spec.urls, [{ path: "/index.html", statusCodes: [{ from: 200, to: 299 }], bodyRegex: "Test Page" }]);
  assert.equal(spec.virtualhost, "www.example.com");
  const url = ldirectordCheck({ ...base, request: "http://app.example:8080/status" }).spec;
  assert.equal(url.type === "HTTP_GET" && url.urls[0]?.path, "/status");
  assert.equal(url.type === "HTTP_GET" && url.virtualhost, "app.example:8080");
  const https = ldirectordCheck({ ...base, service: "https", virtualhost: "secure.example" }).spec;
  assert.equal(https.type === "SSL_GET" && https.sni, "secure.example");
});

test("unsupported services warn; bad values throw naming the value", () => {
  assert.match(
    ldirectordCheck({ ...base, checktype: "negotiate", service: "ftp" }).warnings[0] ?? "",
    /service "ftp" has no negotiate checker/,
  );
  assert.throws(
    () => ldirectordCheck({ ...base, checktype: "bogus", where: "ldirectord.cf:7" }),
    /Invalid checktype "bogus" in ldirectord.cf:7/,
  );
  assert.throws(() => ldirectordCheck({ ...base, checktype: "0" }), /Invalid checktype "0"/);
  assert.throws(() => ldirectordCheck({ ...base, service: "gopher" }), /Invalid service "gopher"/);
  assert.throws(() => ldirectordCheck({ ...base, failurecount: 0 }), /Invalid failurecount "0"/);
  assert.throws(() => ldirectordCheck({ ...base, checkinterval: -1 }), /Invalid checkinterval "-1"/);
  assert.throws(() => ldirectordCheck({ ...base, receive: "(" }), /Invalid receive regular expression "\("/);
  assert.throws(() => ldirectordCheck({ ...base, checkport: 70000 }), /Invalid checkport "70000"/);
});

test("a mapped negotiate check runs against a real server: the receive regex decides", async (t) => {
  const l = await listenTcp((s) => s.once("data", () => s.end("HTTP/1.0 200 OK\r\n\r\n<h1>Test Page</h1>")));
  t.after(() => l.close());
  const target = { address: "127.0.0.1", port: l.port };
  const good = ldirectordCheck({ ...base, realPort: l.port, request: "index.html", receive: "Test Page" }).spec;
  assert.equal((await checkWithTimeout(createChecker(good), target, 1000)).ok, true);
  const bad = ldirectordCheck({ ...base, realPort: l.port, request: "index.html", receive: "Maintenance" }).spec;
  const r = await checkWithTimeout(createChecker(bad), target, 1000);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "/index.html: body does not match /Maintenance/");
});
