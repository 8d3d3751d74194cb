// The firewall-mark classifier: the rules of rule.ts compiled into a lookup the packet plane runs
// on the first packet of a flow (what `iptables -t mangle ... -j MARK` does for the kernel's ip_vs).
//
// How a lookup finds the first matching rule without trying every rule.
//
// The rules are an ordered list and the first one that matches wins, as in an iptables chain; the
// answer is that rule's mark, or 0 when none matches. A rule tests four fields: the protocol, the
// destination port (a set of ranges), the destination prefix and an optional source prefix.
//
// 1. Family and protocol split the rules into six independent lists (IPv4 and IPv6 × tcp, udp,
//    sctp). A rule for `any` protocol goes into all three lists of its family. Each list keeps the
//    rules in their original order, so "first in the list" is still "first in the file".
//
// 2. Inside one list the destination port cuts the search down. Every port range of every rule in
//    the list has two ends; together those ends cut 0..65535 into at most 2R+1 elementary
//    intervals, and inside one interval every port is covered by exactly the same rules (no range
//    begins or ends inside it). For each interval we precompute the rules covering it, in rule
//    order (a rule without ports covers every interval). A lookup binary-searches the interval
//    starts for the packet's port (about log2(2R) steps) and is left with only the rules that can
//    match that port. Adjacent intervals with the same candidate list are merged when building,
//    so a table whose rules all name a few ports stays a handful of intervals.
//
// 3. Rules whose destination is one address (a /32 or /128: the common `tcp VIP 80,443 mark 1`)
//    are indexed once more, by that address: each interval keeps a hash map from the address
//    (IPv4: the address itself; IPv6: the XOR of its four 32-bit words) to its host rules in
//    rule order, and a list of the other rules (prefixes). A lookup fetches the packet's
//    destination's host rules from the map and walks the two ordered lists together, always
//    taking the lower rule number next, so the order of the whole chain is kept: a /24 rule
//    written before a host rule still wins over it.
//
// 4. Each candidate is tested against the addresses: a prefix test is one AND and one compare
//    per 32-bit word ((addr & mask) === net; one word for IPv4, four for IPv6; an IPv6 host rule
//    found through the XOR is checked in full, so two addresses with the same XOR never mix),
//    the source prefix only when the rule has one. The first candidate that passes is the answer.
//
// A lookup therefore costs a binary search, one map lookup, and the rules that share both the
// port and the destination address, plus the prefix rules covering the port: with hundreds of
// VIPs each with rules on 80 and 443, a packet to one VIP's 443 tries only that VIP's rule.
// Building costs O(R log R + I·R) for I intervals (the candidate lists), done once per rules
// change; MAX_FWMARK_RULES bounds it. Interval starts, list offsets and rule slots are typed
// arrays, and a lookup allocates nothing.

import type { Family } from "../addr.ts";
import type { Protocol } from "../sched/types.ts";
import { type FwmarkRule, hostAddress, prefixWords } from "./rule.ts";

const PROTOS: readonly Protocol[] = ["tcp", "udp", "sctp"];

/** One (family, protocol) list compiled: intervals → candidate rule slots. */
interface PortIndex {
  /** First port of each interval, ascending; starts[0] === 0. */
  starts: Int32Array;
  /** Candidates of interval k are slots[offsets[k] .. offsets[k + 1]). */
  offsets: Int32Array;
  /** Rule numbers (index into the compiled rules) of the prefix rules, in rule order within an interval. */
  slots: Int32Array;
  /** Per interval: the host rules by destination address key (addrKey), each list in rule order. */
  hosts: (Map<number, Int32Array> | undefined)[];
}

/** No more candidates in a list (greater than any rule number). */
const END = 0x7fffffff;

export class FwmarkClassifier {
  /** The rules, in order (plain data, as given). */
  readonly rules: readonly FwmarkRule[];
  // Per rule: the mark; destination and source networks and masks, 4 words each (IPv4 uses word 0);
  // hasSrc 0/1.
  readonly #mark: Uint32Array;
  readonly #dnet: Uint32Array;
  readonly #dmask: Uint32Array;
  readonly #snet: Uint32Array;
  readonly #smask: Uint32Array;
  readonly #hasSrc: Uint8Array;
  /** index [family 4 → 0, 6 → 1][protocol] */
  readonly #index: (PortIndex | undefined)[];

  constructor(rules: readonly FwmarkRule[]) {
    this.rules = rules;
    const n = rules.length;
    this.#mark = new Uint32Array(n);
    this.#dnet = new Uint32Array(n * 4);
    this.#dmask = new Uint32Array(n * 4);
    this.#snet = new Uint32Array(n * 4);
    this.#smask = new Uint32Array(n * 4);
    this.#hasSrc = new Uint8Array(n);
    rules.forEach((r, i) => {
      this.#mark[i] = r.mark;
      const d = prefixWords(r.dst);
      d.net.forEach((w, k) => {
        this.#dnet[i * 4 + k] = w;
        this.#dmask[i * 4 + k] = d.mask[k]!;
      });
      if (r.src) {
        this.#hasSrc[i] = 1;
        const s = prefixWords(r.src);
        s.net.forEach((w, k) => {
          this.#snet[i * 4 + k] = w;
          this.#smask[i * 4 + k] = s.mask[k]!;
        });
      }
    });
    this.#index = [];
    for (const family of [4, 6] as const)
      for (const proto of PROTOS) {
        const members: number[] = [];
        rules.forEach((r, i) => {
          if (r.dst.family === family && (r.protocol === proto || r.protocol === "any")) members.push(i);
        });
        this.#index.push(members.length > 0 ? buildPortIndex(rules, members) : undefined);
      }
  }

  get size(): number {
    return this.rules.length;
  }

  /** Whether any rule is for this family (the plane skips classification otherwise). */
  hasFamily(family: Family): boolean {
    const base = family === 4 ? 0 : 3;
    return (
      this.#index[base] !== undefined || this.#index[base + 1] !== undefined || this.#index[base + 2] !== undefined
    );
  }

  /** The mark of the first rule matching an IPv4 packet (addresses as unsigned 32-bit numbers), or 0. */
  classify4(protocol: Protocol, saddr: number, daddr: number, dport: number): number {
    const idx = this.#index[protoIndex(protocol)];
    if (idx === undefined) return 0;
    const k = findInterval(idx.starts, dport);
    const slots = idx.slots;
    const host = idx.hosts[k]?.get(daddr >>> 0);
    const hl = host === undefined ? 0 : host.length;
    let h = 0;
    let j = idx.offsets[k]!;
    const end = idx.offsets[k + 1]!;
    for (;;) {
      // The next rule in chain order from either list.
      const a = h < hl ? host![h]! : END;
      const b = j < end ? slots[j]! : END;
      if (a === END && b === END) return 0;
      let r: number;
      if (a < b) {
        r = a;
        h++;
      } else {
        r = b;
        j++;
      }
      const w = r * 4;
      if ((daddr & this.#dmask[w]!) >>> 0 !== this.#dnet[w]) continue;
      if (this.#hasSrc[r] === 1 && (saddr & this.#smask[w]!) >>> 0 !== this.#snet[w]) continue;
      return this.#mark[r]!;
    }
  }

  /**
   * The mark of the first rule matching an IPv6 packet, or 0. The addresses are read from `buf`:
   * 16 bytes at `soff` (source) and at `doff` (destination), as they sit in the IPv6 header.
   */
  classify6(protocol: Protocol, buf: Uint8Array, soff: number, doff: number, dport: number): number {
    const idx = this.#index[3 + protoIndex(protocol)];
    if (idx === undefined) return 0;
    const k = findInterval(idx.starts, dport);
    const slots = idx.slots;
    const map = idx.hosts[k];
    const host =
      map === undefined
        ? undefined
        : map.get((word(buf, doff) ^ word(buf, doff + 4) ^ word(buf, doff + 8) ^ word(buf, doff + 12)) >>> 0);
    const hl = host === undefined ? 0 : host.length;
    let h = 0;
    let j = idx.offsets[k]!;
    const end = idx.offsets[k + 1]!;
    next: for (;;) {
      const a = h < hl ? host![h]! : END;
      const b = j < end ? slots[j]! : END;
      if (a === END && b === END) return 0;
      let r: number;
      if (a < b) {
        r = a;
        h++;
      } else {
        r = b;
        j++;
      }
      const w = r * 4;
      for (let q = 0; q < 4; q++) {
        const m = this.#dmask[w + q]!;
        if (m === 0) break;
        if ((word(buf, doff + q * 4) & m) >>> 0 !== this.#dnet[w + q]) continue next;
      }
      if (this.#hasSrc[r] === 1)
        for (let q = 0; q < 4; q++) {
          const m = this.#smask[w + q]!;
          if (m === 0) break;
          if ((word(buf, soff + q * 4) & m) >>> 0 !== this.#snet[w + q]) continue next;
        }
      return this.#mark[r]!;
    }
  }

  /** Intervals of the (family, protocol) index (tests read how rules were cut). */
  intervals(family: Family, protocol: Protocol): { start: number; rules: number[] }[] {
    const idx = this.#index[(family === 4 ? 0 : 3) + protoIndex(protocol)];
    if (idx === undefined) return [];
    const out: { start: number; rules: number[] }[] = [];
    for (let k = 0; k < idx.starts.length; k++) {
      const rules = [...idx.slots.subarray(idx.offsets[k]!, idx.offsets[k + 1]!)];
      for (const list of idx.hosts[k]?.values() ?? []) rules.push(...list);
      out.push({ start: idx.starts[k]!, rules: rules.sort((a, b) => a - b) });
    }
    return out;
  }
}

function protoIndex(p: Protocol): number {
  return p === "tcp" ? 0 : p === "udp" ? 1 : 2;
}

function word(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** The interval holding `port`: the last start ≤ port (starts[0] is 0). */
function findInterval(starts: Int32Array, port: number): number {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (starts[mid]! <= port) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function covers(r: FwmarkRule, port: number): boolean {
  if (r.ports.length === 0) return true;
  for (const [lo, hi] of r.ports) if (port >= lo && port <= hi) return true;
  return false;
}

/** The key a host rule's destination is filed under: IPv4 the address, IPv6 the XOR of its words. */
function addrKey(rule: FwmarkRule): number {
  let k = 0;
  for (const w of prefixWords(rule.dst).net) k ^= w;
  return k >>> 0;
}

/**
 * Cut 0..65535 at every range end of the members' rules and list each interval's candidates: the
 * prefix rules in a list, the host rules in a map by destination address.
 */
function buildPortIndex(rules: readonly FwmarkRule[], members: readonly number[]): PortIndex {
  const cuts = new Set<number>([0]);
  for (const i of members)
    for (const [lo, hi] of rules[i]!.ports) {
      cuts.add(lo);
      if (hi < 65535) cuts.add(hi + 1);
    }
  const starts = [...cuts].sort((a, b) => a - b);
  const outStarts: number[] = [];
  const offsets: number[] = [0];
  const slots: number[] = [];
  const hosts: (Map<number, Int32Array> | undefined)[] = [];
  let prev: number[] | undefined;
  for (const s of starts) {
    // Inside an interval every port is covered by the same rules: its first port decides.
    const list = members.filter((i) => covers(rules[i]!, s));
    if (prev !== undefined && sameList(prev, list)) continue;
    outStarts.push(s);
    const byAddr = new Map<number, number[]>();
    for (const i of list) {
      const r = rules[i]!;
      if (hostAddress(r.dst) === undefined) slots.push(i);
      else {
        const key = addrKey(r);
        const l = byAddr.get(key);
        if (l) l.push(i);
        else byAddr.set(key, [i]);
      }
    }
    offsets.push(slots.length);
    hosts.push(byAddr.size > 0 ? new Map([...byAddr].map(([k, l]) => [k, Int32Array.from(l)])) : undefined);
    prev = list;
  }
  return {
    starts: Int32Array.from(outStarts),
    offsets: Int32Array.from(offsets),
    slots: Int32Array.from(slots),
    hosts,
  };
}

function sameList(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
