// PROXY protocol header encodings against the byte layouts of HAProxy's proxy-protocol.txt.
import assert from "node:assert/strict";
import { test } from "node:test";
import { proxyHeaderV1, proxyHeaderV2 } from "./proxy-protocol.ts";

test("v1 is one line: PROXY, family, source, destination, ports, CRLF", () => {
  const h = proxyHeaderV1({ caddr: "192.168.0.1", cport: 56324, vaddr: "192.168.0.11", vport: 443 });
  assert.equal(h.toString(), "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  const h6 = proxyHeaderV1({ caddr: "2001:db8::1", cport: 1, vaddr: "2001:db8::2", vport: 2 });
  assert.equal(h6.toString(), "PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n");
});

test("v2 over IPv4: signature, PROXY command, TCP4, 12 address bytes", () => {
  const h = proxyHeaderV2({ caddr: "10.1.2.3", cport: 0x1234, vaddr: "10.9.8.7", vport: 80 });
  assert.equal(h.length, 28);
  assert.equal(h.subarray(0, 12).toString("hex"), "0d0a0d0a000d0a515549540a");
  assert.deepEqual([...h.subarray(12, 16)], [0x21, 0x11, 0, 12]);
  assert.deepEqual([...h.subarray(16, 24)], [10, 1, 2, 3, 10, 9, 8, 7]);
  assert.deepEqual([...h.subarray(24, 28)], [0x12, 0x34, 0, 80]);
});

test("v2 over IPv6 (and UDP): 36 address bytes, :: expanded", () => {
  const h = proxyHeaderV2({ caddr: "2001:db8::1", cport: 7, vaddr: "::ffff:10.0.0.1", vport: 53 }, "udp");
  assert.equal(h.length, 16 + 36);
  assert.equal(h[13], 0x22);
  assert.equal(h.readUInt16BE(14), 36);
  assert.equal(h.subarray(16, 32).toString("hex"), "20010db8000000000000000000000001");
  assert.equal(h.subarray(32, 48).toString("hex"), "00000000000000000000ffff0a000001");
  assert.equal(h.readUInt16BE(48), 7);
  assert.equal(h.readUInt16BE(50), 53);
});

test("v2 with one IPv4 and one IPv6 address sends both as IPv6", () => {
  const h = proxyHeaderV2({ caddr: "10.0.0.2", cport: 1, vaddr: "2001:db8::9", vport: 2 });
  assert.equal(h[13], 0x21);
  assert.equal(h.subarray(16, 32).toString("hex"), "00000000000000000000ffff0a000002");
});
