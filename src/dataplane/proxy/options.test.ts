// Text forms of the socket data plane's extension settings (tvsd flags).
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseEndpoint, parseFwmarkAddr, parseProxyProtocolRule, proxyProtocolFor } from "./options.ts";

test("endpoints: IPv4, bracketed IPv6 (canonicalised), and refusals", () => {
  assert.deepEqual(parseEndpoint("127.0.0.1:80"), { addr: "127.0.0.1", port: 80 });
  assert.deepEqual(parseEndpoint("[2001:DB8:0::1]:443"), { addr: "2001:db8::1", port: 443 });
  assert.equal(parseEndpoint("127.0.0.1:70000"), undefined);
  assert.equal(parseEndpoint("host:80"), undefined);
  assert.equal(parseEndpoint("127.0.0.1"), undefined);
});

test("--fwmark-addr MARK=PROTO:ADDR:PORT", () => {
  assert.deepEqual(parseFwmarkAddr("7=udp:127.0.0.6:53"), {
    mark: 7,
    listen: { protocol: "udp", addr: "127.0.0.6", port: 53 },
  });
  assert.throws(() => parseFwmarkAddr("0=tcp:127.0.0.1:1"), /Invalid --fwmark-addr "0=tcp:127\.0\.0\.1:1"/);
  assert.throws(() => parseFwmarkAddr("7=sctp:127.0.0.1:1"), /Invalid --fwmark-addr/);
});

test("--proxy-protocol rules and which one applies", () => {
  const svc = parseProxyProtocolRule("tcp:127.0.0.1:8080=v1");
  const dest = parseProxyProtocolRule("tcp:127.0.0.1:8080->127.0.0.1:8082=v2");
  const mark = parseProxyProtocolRule("fwmark:3=v2");
  assert.deepEqual(svc, { service: "tcp 127.0.0.1:8080", dest: undefined, version: 1 });
  assert.deepEqual(dest, { service: "tcp 127.0.0.1:8080", dest: "127.0.0.1:8082", version: 2 });
  assert.deepEqual(mark, { service: "fwmark 3 ipv4", dest: undefined, version: 2 });
  const rules = [dest, svc];
  assert.equal(proxyProtocolFor(rules, "tcp 127.0.0.1:8080", "127.0.0.1:8082"), 2);
  assert.equal(proxyProtocolFor(rules, "tcp 127.0.0.1:8080", "127.0.0.1:8081"), 1);
  assert.equal(proxyProtocolFor(rules, "tcp 127.0.0.1:9090", "127.0.0.1:8081"), 0);
  assert.throws(() => parseProxyProtocolRule("tcp:127.0.0.1:8080=v3"), /Invalid --proxy-protocol/);
  assert.throws(() => parseProxyProtocolRule("udp:127.0.0.1:8080=v1"), /Invalid --proxy-protocol/);
});
