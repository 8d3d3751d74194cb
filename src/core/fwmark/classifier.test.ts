import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ipWords, parseIpv4 } from "../addr.ts";
import { seededRandom } from "../sched/harness.ts";
import { FwmarkClassifier } from "./classifier.ts";
import { guardRules, marksWithoutRules, ownedRuleHosts } from "./coverage.ts";
import { type FwmarkRule, FwmarkRuleError, formatFwmarkRule, parseFwmarkRule } from "./rule.ts";
import { formatFwmarkRulesError, parseFwmarkRulesText } from "./rules-text.ts";

const rule = (t: string, origin = "test") => parseFwmarkRule(t, origin);
const classifier = (...ts: string[]) => new FwmarkClassifier(ts.map((t) => rule(t)));
const v4 = (a: string) => parseIpv4(a)!;
const v6buf = (src: string, dst: string) => {
  const b = new Uint8Array(32);
  const put = (a: string, off: number) =>
    ipWords(a).forEach((w, k) => {
      b[off + k * 4] = w >>> 24;
      b[off + k * 4 + 1] = (w >>> 16) & 255;
      b[off + k * 4 + 2] = (w >>> 8) & 255;
      b[off + k * 4 + 3] = w & 255;
    });
  put(src, 0);
  put(dst, 16);
  return b;
};

describe("fwmark rules: parsing", () => {
  const good: [string, string][] = [
    ["tcp 10.0.0.1/32 80,443 mark 1", "tcp 10.0.0.1 80,443 mark 1"],
    ["tcp 10.0.0.1 443,80 mark 1", "tcp 10.0.0.1 80,443 mark 1"],
    ["udp 10.0.0.0/24 53 mark 0x10", "udp 10.0.0.0/24 53 mark 16"],
    ["any 10.0.0.0/8 mark 7", "any 10.0.0.0/8 mark 7"],
    ["all 0.0.0.0/0 * mark 7", "any 0.0.0.0/0 mark 7"],
    ["sctp 2001:DB8::/32 8000-8100,8050:8200 mark 3", "sctp 2001:db8::/32 8000-8200 mark 3"],
    ["tcp 10.0.0.1 80 from 192.168.0.0/16 mark 4294967295", "tcp 10.0.0.1 80 from 192.168.0.0/16 mark 4294967295"],
    ["tcp 10.0.0.1 from 192.168.1.7 mark 2", "tcp 10.0.0.1 from 192.168.1.7 mark 2"],
    ["  TCP   10.0.0.1   80   mark   1  ", "tcp 10.0.0.1 80 mark 1"],
    ["tcp 10.0.0.1 0-65535 mark 1", "tcp 10.0.0.1 mark 1"],
    ["tcp 10.0.0.1 80-81,82 mark 1", "tcp 10.0.0.1 80-82 mark 1"],
  ];
  for (const [text, canon] of good)
    it(`reads "${text.trim()}"`, () => {
      const r = rule(text);
      assert.equal(formatFwmarkRule(r), canon);
      // The canonical text reads back to the same rule.
      assert.deepEqual(rule(canon), r);
    });

  const bad: [string, number, RegExp][] = [
    ["icmp 10.0.0.1 mark 1", 1, /Unknown protocol "icmp"/],
    ["tcp 10.0.0.300 80 mark 1", 5, /Invalid destination "10.0.0.300"/],
    ["tcp 10.0.0.1/33 80 mark 1", 14, /Invalid prefix length "33".*0\.\.32/],
    ["tcp fd00::/129 mark 1", 12, /0\.\.128 for IPv6/],
    ["tcp 10.0.0.1/24 80 mark 1", 5, /bits set past \/24 \(did you mean 10\.0\.0\.0\/24\?\)/],
    ["tcp 10.0.0.1 80,70000 mark 1", 17, /Port "70000" is out of range/],
    ["tcp 10.0.0.1 443-80 mark 1", 14, /Port range "443-80" is reversed/],
    ["tcp 10.0.0.1 80,,443 mark 1", 17, /Invalid port ""/],
    ["tcp 10.0.0.1 http mark 1", 14, /Invalid port "http"/],
    ["tcp 10.0.0.1 80 mark 0", 22, /Invalid mark "0"/],
    ["tcp 10.0.0.1 80 mark 4294967296", 22, /Invalid mark/],
    ["tcp 10.0.0.1 80 mark", 21, /Missing mark value/],
    ["tcp 10.0.0.1 80", 16, /Missing "mark N"/],
    ["tcp", 4, /Missing destination/],
    ["tcp 10.0.0.1 80 mark 1 extra", 24, /Unexpected "extra" after the mark/],
    ["tcp 10.0.0.1 80 from fd00::1 mark 1", 22, /Source "fd00::1" is IPv6 but the destination is IPv4/],
    ["tcp 10.0.0.1 80 set 1", 17, /Unexpected "set" \(expected from SOURCE or mark N\)|Unexpected "set"/],
  ];
  for (const [text, col, re] of bad)
    it(`refuses "${text}" at column ${col}`, () => {
      assert.throws(
        () => rule(text),
        (e: unknown) => e instanceof FwmarkRuleError && e.col === col && re.test(e.message),
      );
    });

  it("reads a file, naming every bad line as file:line:col", () => {
    const text = [
      "# web: http and https share one mark",
      "tcp 10.0.0.1 80,443 mark 1   # trailing comment",
      "",
      "udp 10.0.0.1 53 mark 0",
      "tcp 10.0.0.1 80 mark 1",
      "bogus",
    ].join("\n");
    const r = parseFwmarkRulesText(text, "/etc/tvs/fwmark.rules");
    assert.ok("errors" in r);
    assert.deepEqual(r.errors.map(formatFwmarkRulesError), [
      '/etc/tvs/fwmark.rules:4:22: Invalid mark "0" (expected 1..4294967295, decimal or 0x hex)',
      '/etc/tvs/fwmark.rules:6:1: Unknown protocol "bogus" (expected tcp, udp, sctp or any)',
    ]);
    const ok = parseFwmarkRulesText("tcp 10.0.0.1 80 mark 1\r\n# only\r\nudp fd00::1 mark 2\r\n", "f");
    assert.ok("rules" in ok);
    assert.deepEqual(
      ok.rules.map((x) => [formatFwmarkRule(x), x.origin]),
      [
        ["tcp 10.0.0.1 80 mark 1", "f:1"],
        ["udp fd00::1 mark 2", "f:3"],
      ],
    );
  });
});

describe("fwmark rules files that are not rules files", () => {
  it("reading stops after 20 errors (a log or binary given by mistake makes 21 messages, not millions)", () => {
    const r = parseFwmarkRulesText("garbage line\n".repeat(200_000), "/var/log/syslog");
    assert.ok("errors" in r);
    assert.equal(r.errors.length, 21);
    assert.equal(
      formatFwmarkRulesError(r.errors[0]!),
      '/var/log/syslog:1:1: Unknown protocol "garbage" (expected tcp, udp, sctp or any)',
    );
    assert.equal(formatFwmarkRulesError(r.errors[20]!), "/var/log/syslog:21:1: Stopped reading after 20 errors");
  });

  it("reading stops at the first rule past the limit of 4096", () => {
    const lines: string[] = [];
    for (let i = 0; i < 10_000; i++) lines.push(`tcp 10.${i >> 8}.${i & 255}.1 80 mark ${i + 1}`);
    const r = parseFwmarkRulesText(lines.join("\n"), "big.rules");
    assert.ok("errors" in r);
    assert.deepEqual(r.errors.map(formatFwmarkRulesError), ["big.rules:4097:1: Too many rules (more than 4096)"]);
    const exact = parseFwmarkRulesText(lines.slice(0, 4096).join("\n"), "big.rules");
    assert.ok("rules" in exact);
    assert.equal(exact.rules.length, 4096);
  });
});

describe("fwmark classifier", () => {
  it("the first matching rule wins, as in an iptables chain", () => {
    const c = classifier(
      "tcp 10.0.0.1 443 mark 2",
      "tcp 10.0.0.0/24 80,443 mark 1",
      "any 10.0.0.0/16 mark 3",
      "tcp 10.0.0.1 443 mark 9", // shadowed by the first rule: never answers
    );
    assert.equal(c.classify4("tcp", v4("1.2.3.4"), v4("10.0.0.1"), 443), 2);
    assert.equal(c.classify4("tcp", v4("1.2.3.4"), v4("10.0.0.1"), 80), 1);
    assert.equal(c.classify4("tcp", v4("1.2.3.4"), v4("10.0.0.77"), 443), 1);
    assert.equal(c.classify4("tcp", v4("1.2.3.4"), v4("10.0.1.1"), 443), 3);
    assert.equal(c.classify4("udp", v4("1.2.3.4"), v4("10.0.0.1"), 443), 3);
    assert.equal(c.classify4("sctp", v4("1.2.3.4"), v4("10.0.200.1"), 9), 3);
    assert.equal(c.classify4("tcp", v4("1.2.3.4"), v4("10.1.0.1"), 443), 0);
    assert.equal(c.classify4("tcp", v4("1.2.3.4"), v4("10.0.0.1"), 8080), 3);
  });

  it("an earlier, wider rule shadows a later, narrower one", () => {
    const c = classifier("tcp 10.0.0.0/8 mark 1", "tcp 10.0.0.1 80 mark 2");
    assert.equal(c.classify4("tcp", v4("1.1.1.1"), v4("10.0.0.1"), 80), 1);
  });

  it("port ranges: both ends are inside, one past either end is not", () => {
    const c = classifier("udp 10.0.0.1 1000-1999,3000 mark 5", "udp 10.0.0.1 0-65535 mark 6");
    const at = (p: number) => c.classify4("udp", 0, v4("10.0.0.1"), p);
    assert.deepEqual([999, 1000, 1500, 1999, 2000, 2999, 3000, 3001, 0, 65535].map(at), [6, 5, 5, 5, 6, 6, 5, 6, 6, 6]);
  });

  it("a source prefix narrows a rule; without a match the next rule is tried", () => {
    const c = classifier("tcp 10.0.0.1 80 from 192.168.0.0/16 mark 1", "tcp 10.0.0.1 80 mark 2");
    assert.equal(c.classify4("tcp", v4("192.168.44.5"), v4("10.0.0.1"), 80), 1);
    assert.equal(c.classify4("tcp", v4("192.169.0.1"), v4("10.0.0.1"), 80), 2);
  });

  it("IPv6: prefixes of any length, source prefixes, no cross-family match", () => {
    const c = classifier(
      "tcp 2001:db8:0:1::/64 443 from fd00::/8 mark 11",
      "tcp 2001:db8::/32 80,443 mark 12",
      "tcp 2001:db8::5 mark 13",
      "tcp 0.0.0.0/0 mark 14",
      "udp ::/0 53 mark 15",
    );
    const at = (p: "tcp" | "udp", s: string, d: string, port: number) => {
      const b = v6buf(s, d);
      return c.classify6(p, b, 0, 16, port);
    };
    assert.equal(at("tcp", "fd12::1", "2001:db8:0:1::99", 443), 11);
    assert.equal(at("tcp", "2002::1", "2001:db8:0:1::99", 443), 12);
    assert.equal(at("tcp", "2002::1", "2001:db8:ffff::1", 80), 12);
    assert.equal(at("tcp", "2002::1", "2001:db8::5", 22), 13);
    assert.equal(at("tcp", "2002::1", "2001:db9::5", 22), 0); // the IPv4 0/0 rule is not IPv6
    assert.equal(at("udp", "2002::1", "abcd::1", 53), 15);
    assert.equal(at("udp", "2002::1", "abcd::1", 54), 0);
    assert.equal(c.classify4("udp", 1, 2, 53), 0);
    assert.equal(c.classify4("tcp", 1, 2, 53), 14);
    assert.equal(c.hasFamily(6), true);
    assert.equal(classifier("tcp 10.0.0.1 mark 1").hasFamily(6), false);
  });

  it("host rules found by address keep their place in the chain among prefix rules", () => {
    const c = classifier(
      "tcp 10.0.0.0/24 443 mark 1",
      "tcp 10.0.0.7 443 mark 2",
      "tcp 10.0.0.8 443 from 192.168.0.0/16 mark 3",
      "tcp 10.0.0.8 443 mark 4",
      "tcp 0.0.0.0/0 443 mark 5",
      "tcp 10.0.1.9 443 mark 6", // after the catch-all: never answers
    );
    assert.equal(c.classify4("tcp", v4("1.1.1.1"), v4("10.0.0.7"), 443), 1, "the /24 written first wins");
    assert.equal(c.classify4("tcp", v4("192.168.1.1"), v4("10.0.1.8"), 443), 5);
    assert.equal(c.classify4("tcp", v4("1.1.1.1"), v4("10.0.1.9"), 443), 5);
    const d = classifier(
      "tcp 10.0.0.8 443 from 192.168.0.0/16 mark 3",
      "tcp 10.0.0.8 443 mark 4",
      "tcp 10.0.0.0/24 443 mark 1",
    );
    assert.equal(d.classify4("tcp", v4("192.168.1.1"), v4("10.0.0.8"), 443), 3);
    assert.equal(d.classify4("tcp", v4("172.16.0.1"), v4("10.0.0.8"), 443), 4, "next host rule of the address");
    assert.equal(d.classify4("tcp", v4("172.16.0.1"), v4("10.0.0.9"), 443), 1);
  });

  it("IPv6 host rules whose addresses fold to the same key stay apart", () => {
    // Words [20010db8, 1, 2, 0] and [20010db8, 2, 1, 0]: the same XOR.
    const a = "2001:db8:0:1:0:2::";
    const b = "2001:db8:0:2:0:1::";
    const c = classifier(`tcp ${a} 443 mark 1`, `tcp ${b} 443 mark 2`);
    assert.equal(c.classify6("tcp", v6buf("fd00::1", b), 0, 16, 443), 2);
    assert.equal(c.classify6("tcp", v6buf("fd00::1", a), 0, 16, 443), 1);
    assert.equal(c.classify6("tcp", v6buf("fd00::1", "2001:db8::3:0:0:0"), 0, 16, 443), 0);
  });

  it("cuts the port space into merged intervals, each listing only the rules covering it", () => {
    const c = classifier(
      "tcp 10.0.0.1 80,443 mark 1",
      "tcp 10.0.0.2 443 mark 2",
      "tcp 10.0.0.3 81-442 mark 3",
      "udp 10.0.0.4 mark 4",
    );
    assert.deepEqual(c.intervals(4, "tcp"), [
      { start: 0, rules: [] },
      { start: 80, rules: [0] },
      { start: 81, rules: [2] },
      { start: 443, rules: [0, 1] },
      { start: 444, rules: [] },
    ]);
    assert.deepEqual(c.intervals(4, "udp"), [{ start: 0, rules: [3] }]);
    assert.deepEqual(c.intervals(6, "tcp"), []);
  });

  it("agrees with a plain first-match scan on random rules and packets", () => {
    const next = seededRandom(17);
    const rnd = () => next() / 2 ** 32;
    const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
    const protos = ["tcp", "udp", "sctp", "any"] as const;
    const nets = [
      "10.0.0.0/8",
      "10.1.0.0/16",
      "10.1.2.0/24",
      "10.1.2.3",
      "0.0.0.0/0",
      "10.1.2.128/25",
      "10.1.2.200",
      "10.1.9.9",
    ];
    const rules: FwmarkRule[] = [];
    for (let i = 0; i < 60; i++) {
      const lo = Math.floor(rnd() * 200);
      const ports = rnd() < 0.2 ? "" : rnd() < 0.5 ? ` ${lo}` : ` ${lo}-${lo + Math.floor(rnd() * 50)},${lo + 100}`;
      const src = rnd() < 0.3 ? ` from ${pick(["192.168.0.0/16", "192.168.1.0/24", "0.0.0.0/0"])}` : "";
      rules.push(rule(`${pick(protos)} ${pick(nets)}${ports}${src} mark ${i + 1}`));
    }
    const c = new FwmarkClassifier(rules);
    const inNet = (a: number, p: { addr: string; len: number }) => {
      const mask = p.len === 0 ? 0 : (0xffffffff << (32 - p.len)) >>> 0;
      return (a & mask) >>> 0 === v4(p.addr);
    };
    for (let n = 0; n < 5000; n++) {
      const proto = pick(["tcp", "udp", "sctp"] as const);
      const d = v4(pick(["10.1.2.3", "10.1.2.200", "10.1.9.9", "10.200.0.1", "11.0.0.1"]));
      const s = v4(pick(["192.168.1.1", "192.168.2.1", "172.16.0.1"]));
      const port = Math.floor(rnd() * 320);
      const want =
        rules.find(
          (r) =>
            (r.protocol === "any" || r.protocol === proto) &&
            inNet(d, r.dst) &&
            (!r.src || inNet(s, r.src)) &&
            (r.ports.length === 0 || r.ports.some(([lo, hi]) => port >= lo && port <= hi)),
        )?.mark ?? 0;
      assert.equal(c.classify4(proto, s, d, port), want, `${proto} ${d} ${port}`);
    }
  });
});

describe("fwmark rules and services", () => {
  const rules = [
    rule("tcp 10.0.0.1 80,443 mark 1"),
    rule("tcp 10.0.0.0/24 22 mark 5"),
    rule("udp fd00::10 53 mark 1"),
    rule("tcp 10.0.0.2 mark 2"),
  ];
  const keys = [
    { kind: "fwmark", fwmark: 1, family: 4 } as const,
    { kind: "fwmark", fwmark: 2, family: 6 } as const,
    { kind: "fwmark", fwmark: 3, family: 4 } as const,
    { kind: "vip", protocol: "tcp", addr: "10.0.0.9", port: 80 } as const,
  ];
  const set = new Set(["1/4", "2/6", "3/4"]);

  it("names the fwmark services no rule feeds (mark and family)", () => {
    assert.deepEqual(marksWithoutRules(keys, rules), [
      { fwmark: 2, family: 6 },
      { fwmark: 3, family: 4 },
    ]);
  });

  it("owns the single addresses of rules whose mark has a service of that family", () => {
    assert.deepEqual(ownedRuleHosts(rules, set), ["10.0.0.1"]);
    assert.deepEqual(ownedRuleHosts(rules, new Set(["1/4", "1/6", "2/4", "5/4"])), [
      "10.0.0.1",
      "fd00::10",
      "10.0.0.2",
    ]);
  });

  it("the guard mirrors rules up to the last one the plane takes", () => {
    const g = guardRules(rules, new Set(["5/4"]));
    assert.deepEqual(
      g.map((x) => [x.rule.mark, x.taken]),
      [
        [1, false],
        [5, true],
      ],
    );
    assert.deepEqual(guardRules(rules, new Set()), []);
  });
});
