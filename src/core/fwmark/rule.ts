// A firewall-mark rule: tvs's own stand-in for `iptables -t mangle -A PREROUTING ... -j MARK`.
// The packet plane reads frames before netfilter runs, so a mark set by iptables never reaches it;
// tvs classifies the frame itself, with rules of this shape (first match wins):
//
//   PROTO DST[/LEN] [PORTS] [from SRC[/LEN]] mark MARK
//
//   PROTO   tcp | udp | sctp | any (any: tcp, udp and sctp, the protocols IPVS schedules)
//   DST     the destination address or prefix (IPv4 or IPv6); a bare address is /32 or /128
//   PORTS   destination ports: a comma list of ports and ranges (80,443,8000-8100; 8000:8100 as
//           iptables' multiport writes it is accepted too); absent or * means every port
//   SRC     an optional source prefix of the same family
//   MARK    1..4294967295, decimal or 0x hex (0 means "no mark" and cannot be set)
//
// e.g. `tcp 10.0.0.1 80,443 mark 1` is `iptables -t mangle -A PREROUTING -p tcp -d 10.0.0.1
// -m multiport --dports 80,443 -j MARK --set-mark 1`. A prefix with bits set past its length
// (10.0.0.1/24) is refused rather than silently masked: it is nearly always a typo.
// parseFwmarkRule throws FwmarkRuleError carrying the 1-based column of the offending word.

import { canonicalIp, type Family, ipWords, maskIp, parseIpv4 } from "../addr.ts";
import type { Protocol } from "../sched/types.ts";
import { MAX_FWMARK } from "../service.ts";

export type FwmarkProtocol = Protocol | "any";

export interface FwmarkPrefix {
  readonly family: Family;
  /** Canonical text of the network address. */
  readonly addr: string;
  readonly len: number;
}

export interface FwmarkRule {
  readonly protocol: FwmarkProtocol;
  readonly dst: FwmarkPrefix;
  readonly src?: FwmarkPrefix;
  /** Inclusive destination port ranges, sorted and merged; empty means every port. */
  readonly ports: readonly (readonly [number, number])[];
  readonly mark: number;
  /** Where the rule came from ("--fwmark-rule 2", "/etc/tvs/fwmark.rules:3"). */
  readonly origin: string;
}

/** A rule that cannot be read, with the 1-based column of the word at fault. */
export class FwmarkRuleError extends Error {
  readonly col: number;
  constructor(col: number, message: string) {
    super(message);
    this.name = "FwmarkRuleError";
    this.col = col;
  }
}

const PROTOCOLS: Record<string, FwmarkProtocol> = { tcp: "tcp", udp: "udp", sctp: "sctp", any: "any", all: "any" };

interface Word {
  text: string;
  col: number;
}

function words(line: string): Word[] {
  const out: Word[] = [];
  const re = /\S+/g;
  for (let m = re.exec(line); m !== null; m = re.exec(line)) out.push({ text: m[0], col: m.index + 1 });
  return out;
}

/** Parse one rule (no comment, one line). Throws FwmarkRuleError. */
export function parseFwmarkRule(text: string, origin: string): FwmarkRule {
  const w = words(text);
  let i = 0;
  const end = text.trimEnd().length + 1;
  const next = (what: string): Word => {
    const t = w[i++];
    if (t === undefined) throw new FwmarkRuleError(end, `Missing ${what}`);
    return t;
  };
  const p = next("protocol (tcp, udp, sctp or any)");
  const protocol = PROTOCOLS[p.text.toLowerCase()];
  if (protocol === undefined)
    throw new FwmarkRuleError(p.col, `Unknown protocol "${p.text}" (expected tcp, udp, sctp or any)`);
  const d = next("destination (ADDRESS[/PREFIX])");
  const dst = parsePrefix(d, "destination");
  let ports: [number, number][] = [];
  let src: FwmarkPrefix | undefined;
  let t = next('"mark N"');
  if (t.text !== "from" && t.text !== "mark") {
    ports = parsePorts(t);
    t = next('"mark N"');
  }
  if (t.text === "from") {
    const s = next("source (ADDRESS[/PREFIX]) after from");
    src = parsePrefix(s, "source");
    if (src.family !== dst.family)
      throw new FwmarkRuleError(
        s.col,
        `Source "${s.text}" is IPv${src.family} but the destination is IPv${dst.family}`,
      );
    t = next('"mark N"');
  }
  if (t.text !== "mark")
    throw new FwmarkRuleError(t.col, `Unexpected "${t.text}" (expected ${src ? "" : "ports, from SOURCE or "}mark N)`);
  const m = next("mark value after mark");
  const mark = parseMark(m);
  const extra = w[i];
  if (extra !== undefined) throw new FwmarkRuleError(extra.col, `Unexpected "${extra.text}" after the mark`);
  return { protocol, dst, ...(src ? { src } : {}), ports, mark, origin };
}

function parsePrefix(w: Word, what: string): FwmarkPrefix {
  const slash = w.text.indexOf("/");
  const addrText = slash === -1 ? w.text : w.text.slice(0, slash);
  const addr = canonicalIp(addrText);
  if (addr === undefined)
    throw new FwmarkRuleError(w.col, `Invalid ${what} "${w.text}" (expected an IPv4 or IPv6 ADDRESS[/PREFIX])`);
  const family: Family = parseIpv4(addrText) !== undefined ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let len = max;
  if (slash !== -1) {
    const lenText = w.text.slice(slash + 1);
    if (!/^\d{1,3}$/.test(lenText) || Number(lenText) > max)
      throw new FwmarkRuleError(
        w.col + slash + 1,
        `Invalid prefix length "${lenText}" in ${what} "${w.text}" (expected 0..${max} for IPv${family})`,
      );
    len = Number(lenText);
  }
  const net = maskIp(addr, len);
  if (net !== addr)
    throw new FwmarkRuleError(
      w.col,
      `The ${what} "${w.text}" has address bits set past /${len} (did you mean ${net}/${len}?)`,
    );
  return { family, addr: net, len };
}

function parsePorts(w: Word): [number, number][] {
  if (w.text === "*") return [];
  const out: [number, number][] = [];
  let col = w.col;
  for (const part of w.text.split(",")) {
    const m = /^(\d{1,5})(?:[-:](\d{1,5}))?$/.exec(part);
    if (!m)
      throw new FwmarkRuleError(
        col,
        `Invalid port "${part}" (expected destination ports like 80,443,8000-8100, or mark N)`,
      );
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo > 65535 || hi > 65535) throw new FwmarkRuleError(col, `Port "${part}" is out of range (0..65535)`);
    if (hi < lo) throw new FwmarkRuleError(col, `Port range "${part}" is reversed (write ${hi}-${lo})`);
    out.push([lo, hi]);
    col += part.length + 1;
  }
  return mergeRanges(out);
}

/** Sort and merge overlapping or touching ranges. */
function mergeRanges(rs: [number, number][]): [number, number][] {
  rs.sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const r of rs) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  // Every port written out is every port: the same as none.
  if (out.length === 1 && out[0]![0] === 0 && out[0]![1] === 65535) return [];
  return out;
}

function parseMark(w: Word): number {
  const t = w.text;
  const n = /^0x[0-9a-f]{1,8}$/i.test(t) ? Number.parseInt(t.slice(2), 16) : /^\d{1,10}$/.test(t) ? Number(t) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > MAX_FWMARK)
    throw new FwmarkRuleError(w.col, `Invalid mark "${t}" (expected 1..${MAX_FWMARK}, decimal or 0x hex)`);
  return n;
}

/** A prefix as text: "10.0.0.0/24", "10.0.0.1" for a single address. */
export function formatPrefix(p: FwmarkPrefix): string {
  return p.len === (p.family === 4 ? 32 : 128) ? p.addr : `${p.addr}/${p.len}`;
}

/** The ports as written in a rule ("80,443,8000-8100"), "*" for every port. */
export function formatPorts(ports: FwmarkRule["ports"]): string {
  if (ports.length === 0) return "*";
  return ports.map(([lo, hi]) => (lo === hi ? `${lo}` : `${lo}-${hi}`)).join(",");
}

/** A rule in its canonical text (parseFwmarkRule reads it back to the same rule). */
export function formatFwmarkRule(r: FwmarkRule): string {
  const ports = r.ports.length > 0 ? ` ${formatPorts(r.ports)}` : "";
  const src = r.src ? ` from ${formatPrefix(r.src)}` : "";
  return `${r.protocol} ${formatPrefix(r.dst)}${ports}${src} mark ${r.mark}`;
}

/** The single address a host prefix (/32, /128) names, else undefined. */
export function hostAddress(p: FwmarkPrefix): string | undefined {
  return p.len === (p.family === 4 ? 32 : 128) ? p.addr : undefined;
}

/** The prefix's network as 32-bit words (one for IPv4, four for IPv6) and the matching masks. */
export function prefixWords(p: FwmarkPrefix): { net: number[]; mask: number[] } {
  const net = ipWords(p.addr);
  const mask = net.map((_, k) => {
    const bits = Math.max(0, Math.min(32, p.len - 32 * k));
    return bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  });
  return { net, mask };
}
