// Tests for ipvsadm's number formatting and libipvs's sort order.
import assert from "node:assert/strict";
import { test } from "node:test";
import { compareServices, largeNum } from "./format.ts";

test("large numbers: 9 columns, then K, M, G, T at ipvsadm's thresholds", () => {
  const cases: Array<[number, string]> = [
    [0, "        0"],
    [99_999_999, " 99999999"],
    [100_000_000, "  100000K"],
    [999_999_999, "  999999K"],
    [1_000_000_000, "    1000M"],
    [99_999_999_999, "   99999M"],
    [100_000_000_000, "     100G"],
    [99_999_999_999_999, "   99999G"],
    [100_000_000_000_000, "     100T"],
  ];
  for (const [n, s] of cases) assert.equal(largeNum(n, false), s, String(n));
});

test("--exact: 9 columns up to 8 digits, then one space more than the digits", () => {
  assert.equal(largeNum(12345678, true), " 12345678");
  assert.equal(largeNum(123456789, true), " 123456789");
  assert.equal(largeNum(1234567890123, true), " 1234567890123");
});

test("service order: mark, family, protocol, then the wrapping address difference, then port", () => {
  const tcp = (addr: string, port = 80) => ({ kind: "vip" as const, protocol: "tcp" as const, addr, port });
  const keys = [
    { kind: "fwmark" as const, fwmark: 2, family: 4 as const },
    tcp("10.0.0.1"),
    { kind: "vip" as const, protocol: "udp" as const, addr: "1.1.1.1", port: 53 },
    tcp("192.168.0.1"),
    tcp("10.0.0.1", 22),
    tcp("2001:db8::1"),
    { kind: "fwmark" as const, fwmark: 1, family: 6 as const },
  ];
  const sorted = [...keys]
    .sort(compareServices)
    .map((k) => (k.kind === "fwmark" ? `fwm${k.fwmark}` : `${k.protocol} ${k.addr}:${k.port}`));
  assert.deepEqual(sorted, [
    "tcp 192.168.0.1:80",
    "tcp 10.0.0.1:22",
    "tcp 10.0.0.1:80",
    "udp 1.1.1.1:53",
    "tcp 2001:db8::1:80",
    "fwm1",
    "fwm2",
  ]);
});
