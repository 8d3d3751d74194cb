import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  canonicalIp,
  compareIp,
  foldIp,
  formatEndpoint,
  ipFamily,
  ipWords,
  maskIp,
  netmaskToPrefix,
  parseIpv4,
  prefixToNetmask,
  wordsToIp,
} from "./addr.ts";
import { seededRandom } from "./sched/harness.ts";

describe("addresses", () => {
  const canonical: [string, string | undefined][] = [
    ["10.0.0.1", "10.0.0.1"],
    ["255.255.255.255", "255.255.255.255"],
    ["0.0.0.0", "0.0.0.0"],
    ["010.0.0.1", undefined], // leading zeros: inet_pton refuses them
    ["256.0.0.1", undefined],
    ["1.2.3", undefined],
    ["1.2.3.4.5", undefined],
    ["", undefined],
    // IPv6 as glibc's inet_ntop prints it (ipvsadm's output)
    ["2001:DB8::0:1", "2001:db8::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["::1:0:0:0:0", "0:0:0:1::"],
    ["::ffff:1.2.3.4", "::ffff:1.2.3.4"],
    ["::ffff:0102:0304", "::ffff:1.2.3.4"],
    ["::1.2.3.4", "::1.2.3.4"],
    ["::1:2", "::0.1.0.2"],
    ["::ffff:0:0", "::ffff:0.0.0.0"],
    ["0:0:0:0:0:1:0:0", "::1:0:0"],
    ["1:2:3:4:5:6:7.8.9.10", "1:2:3:4:5:6:708:90a"],
    ["1::2::3", undefined],
    [":1", undefined],
    ["1:2:3:4:5:6:7:8:9", undefined],
    ["12345::1", undefined],
    ["::ffff:1.2.3", undefined],
    ["g::1", undefined],
  ];
  for (const [input, want] of canonical) {
    it(`canonical "${input}" → ${want ?? "invalid"}`, () => assert.equal(canonicalIp(input), want));
  }

  const gcc = spawnSync("gcc", ["--version"]).status === 0;
  it(
    "formats 3000 random IPv6 addresses exactly as glibc's inet_ntop",
    { skip: gcc ? false : "gcc not installed" },
    () => {
      const rand = seededRandom(2026);
      const inputs: string[] = [];
      for (let i = 0; i < 3000; i++) {
        // Sparse groups so zero runs of every length and position occur.
        const g = Array.from({ length: 8 }, () =>
          rand() % 3 === 0 ? (rand() % 4 === 0 ? 0xffff : rand() & 0xffff) : 0,
        );
        inputs.push(g.map((x) => x.toString(16)).join(":"));
      }
      const dir = mkdtempSync(join(tmpdir(), "tvs-ntop-"));
      try {
        const src = join(dir, "ntop.c");
        writeFileSync(
          src,
          `#include <arpa/inet.h>
#include <stdio.h>
int main(int c, char **v) {
  unsigned char b[16]; char o[64];
  for (int i = 1; i < c; i++) {
    if (inet_pton(AF_INET6, v[i], b) != 1) return 1;
    inet_ntop(AF_INET6, b, o, sizeof o);
    puts(o);
  }
  return 0;
}
`,
        );
        execFileSync("gcc", ["-o", join(dir, "ntop"), src]);
        const out = execFileSync(join(dir, "ntop"), inputs, { encoding: "utf8" }).trim().split("\n");
        for (const [i, a] of inputs.entries()) assert.equal(canonicalIp(a), out[i], a);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );

  it("words, fold and family", () => {
    assert.deepEqual(ipWords("10.0.0.1"), [0x0a000001]);
    assert.deepEqual(ipWords("2001:db8::1"), [0x20010db8, 0, 0, 1]);
    assert.equal(wordsToIp([0x20010db8, 0, 0, 1]), "2001:db8::1");
    assert.equal(wordsToIp([0xc0a80001]), "192.168.0.1");
    assert.equal(foldIp("192.168.56.1"), 0xc0a83801);
    assert.equal(foldIp("2001:db8::1"), (0x20010db8 ^ 1) >>> 0);
    assert.equal(foldIp("ffff:ffff::"), 0xffffffff);
    assert.equal(ipFamily("::1"), 6);
    assert.equal(ipFamily("1.2.3.4"), 4);
    assert.throws(() => ipWords("nope"), /Invalid IP address "nope"/);
  });

  it("masks for persistence granularity", () => {
    assert.equal(maskIp("192.168.56.77", 24), "192.168.56.0");
    assert.equal(maskIp("192.168.56.77", 32), "192.168.56.77");
    assert.equal(maskIp("192.168.56.77", 0), "0.0.0.0");
    assert.equal(maskIp("192.168.56.77", 17), "192.168.0.0");
    assert.equal(maskIp("2001:db8:1:2:3:4:5:6", 64), "2001:db8:1:2::");
    assert.equal(maskIp("2001:db8:1:2:3:4:5:6", 128), "2001:db8:1:2:3:4:5:6");
    assert.equal(maskIp("2001:db8:ffff::1", 36), "2001:db8:f000::");
  });

  it("netmask ↔ prefix", () => {
    for (const [mask, p] of [
      ["255.255.255.0", 24],
      ["255.255.255.255", 32],
      ["0.0.0.0", 0],
      ["255.128.0.0", 9],
    ] as const) {
      assert.equal(netmaskToPrefix(mask), p);
      assert.equal(prefixToNetmask(p), mask);
    }
    assert.equal(netmaskToPrefix("255.0.255.0"), undefined);
    assert.equal(netmaskToPrefix("nope"), undefined);
  });

  it("ordering for listings and endpoints", () => {
    const sorted = ["10.0.0.2", "::1", "10.0.0.10", "2001:db8::1", "9.255.255.255"].sort(compareIp);
    assert.deepEqual(sorted, ["9.255.255.255", "10.0.0.2", "10.0.0.10", "::1", "2001:db8::1"]);
    assert.equal(formatEndpoint("10.0.0.1", 80), "10.0.0.1:80");
    assert.equal(formatEndpoint("2001:db8::1", 80), "[2001:db8::1]:80");
    assert.equal(parseIpv4("1.2.3.4"), 0x01020304);
  });
});
