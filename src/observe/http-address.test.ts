import assert from "node:assert/strict";
import { test } from "node:test";
import { DEFAULT_HTTP_PORT, formatHttpAddress, parseHttpAddress } from "./http-address.ts";

test("--http forms", () => {
  const cases: [string, ReturnType<typeof parseHttpAddress>][] = [
    ["none", undefined],
    ["off", undefined],
    ["9999", { host: "127.0.0.1", port: 9999, loopback: true }],
    ["127.0.0.1:0", { host: "127.0.0.1", port: 0, loopback: true }],
    ["127.0.0.2:80", { host: "127.0.0.2", port: 80, loopback: true }],
    ["0.0.0.0:7420", { host: "0.0.0.0", port: 7420, loopback: false }],
    ["192.0.2.1", { host: "192.0.2.1", port: DEFAULT_HTTP_PORT, loopback: false }],
    ["[::1]:8000", { host: "::1", port: 8000, loopback: true }],
    ["[2001:db8::1]", { host: "2001:db8::1", port: DEFAULT_HTTP_PORT, loopback: false }],
    ["::1", { host: "::1", port: DEFAULT_HTTP_PORT, loopback: true }],
    ["localhost:81", { host: "localhost", port: 81, loopback: true }],
  ];
  for (const [arg, want] of cases) assert.deepEqual(parseHttpAddress(arg), want, arg);
});

test("bad --http values are refused with the value quoted", () => {
  assert.throws(() => parseHttpAddress("127.0.0.1:70000"), /Invalid --http port "70000" in "127.0.0.1:70000"/);
  assert.throws(() => parseHttpAddress("example.com:80"), /Invalid --http address "example.com"/);
  assert.throws(() => parseHttpAddress(":80"), /give the address too/);
  assert.throws(() => parseHttpAddress("[nope]:80"), /Invalid --http address "\[nope\]:80"/);
  assert.throws(() => parseHttpAddress("127.0.0.1:x"), /Invalid --http port "x"/);
});

test("addresses print as a URL host part", () => {
  assert.equal(formatHttpAddress({ host: "::1", port: 7420 }), "[::1]:7420");
  assert.equal(formatHttpAddress({ host: "127.0.0.1", port: 7420 }), "127.0.0.1:7420");
});
