// Firewall-mark classification: the compiled classifier (src/core/fwmark/classifier.ts: port
// intervals, then the prefixes of the rules covering the port) side by side with a plain
// first-match scan of the same rules in one run (what walking an iptables chain does: every rule's
// protocol, ports and prefixes in turn until one matches). Both answer the same packets; the
// answers are compared first, so a figure never comes from a wrong classifier.
//
//   node --import tsx bench/fwmark.ts [lookups]
//
// Rule sets: a site's rules (10), a hosting director (100: one VIP per rule, a few ports each),
// and 1000 rules of the same shape. Packets: half to ports some rule names, half elsewhere, over
// the rules' VIPs and others. Bounded: `lookups` per set and method (default 300000, at most 2M).

import { performance } from "node:perf_hooks";
import { parseIpv4 } from "../src/core/addr.ts";
import { FwmarkClassifier } from "../src/core/fwmark/classifier.ts";
import { type FwmarkRule, parseFwmarkRule } from "../src/core/fwmark/rule.ts";
import type { Protocol } from "../src/core/sched/types.ts";

const LOOKUPS = Math.min(2_000_000, Math.max(10_000, Number(process.argv[2] ?? 300_000)));

function ruleSet(n: number): FwmarkRule[] {
  const out: FwmarkRule[] = [];
  for (let i = 0; i < n; i++) {
    const vip = `10.${(i >> 8) & 255}.${i & 255}.1`;
    const proto = i % 5 === 4 ? "udp" : "tcp";
    const ports = i % 3 === 0 ? "80,443" : i % 3 === 1 ? `${8000 + (i % 100)}-${8010 + (i % 100)}` : "25,587";
    out.push(parseFwmarkRule(`${proto} ${vip} ${ports} mark ${i + 1}`, "bench"));
  }
  out.push(parseFwmarkRule("any 10.0.0.0/8 53 mark 999999", "bench"));
  return out;
}

/** The reference: every rule in order, each field tested as written. */
function scan(rules: readonly FwmarkRule[], masks: { net: number; mask: number }[]) {
  return (proto: Protocol, _saddr: number, daddr: number, dport: number): number => {
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!;
      if (r.protocol !== "any" && r.protocol !== proto) continue;
      if ((daddr & masks[i]!.mask) >>> 0 !== masks[i]!.net) continue;
      if (r.ports.length > 0) {
        let hit = false;
        for (const [lo, hi] of r.ports)
          if (dport >= lo && dport <= hi) {
            hit = true;
            break;
          }
        if (!hit) continue;
      }
      return r.mark;
    }
    return 0;
  };
}

function packets(n: number, rules: number) {
  const proto: Protocol[] = [];
  const daddr = new Uint32Array(n);
  const dport = new Uint16Array(n);
  let x = 12345;
  const rnd = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
  const ports = [80, 443, 25, 587, 8005, 53, 22, 3306, 9000];
  for (let i = 0; i < n; i++) {
    const k = Math.floor(rnd() * rules * 1.2);
    daddr[i] = parseIpv4(`10.${(k >> 8) & 255}.${k & 255}.1`)!;
    dport[i] = ports[Math.floor(rnd() * ports.length)]!;
    proto.push(rnd() < 0.8 ? "tcp" : "udp");
  }
  return { proto, daddr, dport };
}

function time(f: (p: Protocol, s: number, d: number, port: number) => number, pk: ReturnType<typeof packets>) {
  let sum = 0;
  const t0 = performance.now();
  for (let i = 0; i < LOOKUPS; i++) sum += f(pk.proto[i]!, 0, pk.daddr[i]!, pk.dport[i]!);
  const ms = performance.now() - t0;
  return { nsPer: (ms * 1e6) / LOOKUPS, sum };
}

console.log(`fwmark classification, ${LOOKUPS} lookups per rule set and method (ns per lookup, lower is better)`);
console.log(
  `${"rules".padStart(6)}  ${"classifier".padStart(10)}  ${"scan".padStart(10)}  ${"scan/classifier".padStart(15)}`,
);
for (const n of [10, 100, 1000]) {
  const rules = ruleSet(n);
  const masks = rules.map((r) => {
    const len = r.dst.len;
    return { net: parseIpv4(r.dst.addr)!, mask: len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0 };
  });
  const c = new FwmarkClassifier(rules);
  const classify = (p: Protocol, s: number, d: number, port: number) => c.classify4(p, s, d, port);
  const ref = scan(rules, masks);
  const pk = packets(LOOKUPS, n);
  for (let i = 0; i < 20000; i++) {
    const a = classify(pk.proto[i]!, 0, pk.daddr[i]!, pk.dport[i]!);
    const b = ref(pk.proto[i]!, 0, pk.daddr[i]!, pk.dport[i]!);
    if (a !== b) throw new Error(`classifier and scan disagree on packet ${i}: ${a} vs ${b}`);
  }
  // Interleaved, twice each, the better of two: other work on the machine falls on both alike.
  const cl = Math.min(time(classify, pk).nsPer, time(classify, pk).nsPer);
  const sc = Math.min(time(ref, pk).nsPer, time(ref, pk).nsPer);
  console.log(
    `${String(rules.length).padStart(6)}  ${cl.toFixed(1).padStart(10)}  ${sc.toFixed(1).padStart(10)}  ${(sc / cl).toFixed(1).padStart(14)}x`,
  );
}
