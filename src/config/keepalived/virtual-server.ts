// keepalived virtual_server blocks: reads the block (scheduler, forwarding, persistence, quorum,
// sorry server, real servers and their checkers) into a draft, then turns the draft into desired
// services and health settings, applying keepalived's defaults and corrections (no protocol →
// UDP, no lb_kind → NAT, no lb_algo → wlc, bare persistence_timeout → 360 s, real-server ports
// forced to the virtual port for DR/TUN, quorum capped at the total weight, hysteresis < quorum).
// Where keepalived silently corrects a value we do the same and say so in a warning.

import { ipFamily, MAX_PORT } from "../../core/addr.ts";
import { DEFAULT_TUN, type DestSpec, destSpec, type FwdMethod, type TunOptions } from "../../core/dest.ts";
import { allSchedFlagNames, schedFlagBit, schedFlagNames } from "../../core/sched/flags.ts";
import type { Protocol } from "../../core/sched/types.ts";
import {
  MAX_FWMARK,
  MAX_PERSISTENCE_TIMEOUT,
  type ServiceKey,
  type ServiceOptions,
  serviceKeyId,
  serviceOptions,
} from "../../core/service.ts";
import { type CheckerSpec, DEFAULT_DELAY_LOOP_MS } from "../../health/checker-spec.ts";
import type { DesiredService } from "../desired.ts";
import type { Diagnostics, SourcePos } from "../diagnostics.ts";
import type { NotifyScript, RealServerHealth, ServiceHealth } from "../director-config.ts";
import { parseIp, parseNetmask, parseUint } from "../values.ts";
import {
  CHECKER_KEYWORDS,
  type CommonOverrides,
  type PendingFileRef,
  readChecker,
  readCommonOption,
  readPortWord,
} from "./checkers.ts";
import type { Token } from "./lexer.ts";
import type { StmtReader } from "./reader.ts";
import type { Stmt } from "./tree.ts";

/** keepalived's IPVS_SVC_PERSISTENT_TIMEOUT: a bare persistence_timeout means 6 minutes. */
export const KEEPALIVED_PERSISTENCE_TIMEOUT = 360;
const MAX_WEIGHT = 2147483647;
/** Schedulers keepalived accepts for lb_algo / lvs_sched. */
export const KEEPALIVED_SCHEDULERS = [
  "rr",
  "wrr",
  "lc",
  "wlc",
  "lblc",
  "sh",
  "mh",
  "dh",
  "fo",
  "ovf",
  "lblcr",
  "sed",
  "nq",
  "twos",
];
/** The scheduler-flag keywords: flag-1..3 and every name a scheduler declares (core/sched/flags.ts). */
const SCHED_FLAG_WORDS = new Set(allSchedFlagNames());

interface Forwarding {
  fwd: FwdMethod;
  tun: TunOptions;
}

interface RsDraft {
  addr: string;
  port: number | undefined;
  pos: SourcePos;
  weight?: number;
  fwd?: Forwarding;
  uThreshold: number;
  lThreshold: number;
  inhibit?: boolean;
  alpha?: boolean;
  virtualhost?: string;
  notifyUp?: NotifyScript;
  notifyDown?: NotifyScript;
  common: CommonOverrides;
  checkerStmts: Stmt[];
}

export type VsTarget =
  | { kind: "vip"; addr: string; port: number }
  | { kind: "fwmark"; fwmark: number }
  | { kind: "group"; name: string; pos: SourcePos };

export interface VsDraft {
  pos: SourcePos;
  label: string;
  target: VsTarget;
  family?: 4 | 6;
  protocol?: Protocol;
  protocolPos?: SourcePos;
  scheduler?: string;
  flags: { word: string; pos: SourcePos }[];
  ops: boolean;
  opsPos?: SourcePos;
  fwd?: Forwarding;
  persistenceTimeout?: number;
  granularity?: Token;
  pe: string;
  quorum: number;
  hysteresis: number;
  quorumUp?: NotifyScript;
  quorumDown?: NotifyScript;
  alpha: boolean;
  omega: boolean;
  inhibit: boolean;
  virtualhost?: string;
  weight: number;
  common: CommonOverrides;
  sorry?: { addr: string; port: number | undefined; fwd?: Forwarding; inhibit: boolean; pos: SourcePos };
  realServers: RsDraft[];
}

/** `lb_kind NAT|DR|TUN|FNAT [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`. */
function readForwarding(r: StmtReader, s: Stmt): Forwarding | undefined {
  const t = r.arg(s, 1, "a forwarding method (NAT, DR, TUN or FNAT)");
  if (!t) return undefined;
  const m = t.text.toUpperCase();
  const fwd: FwdMethod | undefined =
    m === "NAT" ? "masq" : m === "DR" ? "droute" : m === "TUN" ? "tunnel" : m === "FNAT" ? "fullnat" : undefined;
  if (!fwd) {
    r.diags.error(t.pos, `Invalid ${r.kw(s)} "${t.text}" (expected NAT, DR, TUN or FNAT)`);
    return undefined;
  }
  const tun: TunOptions = { ...DEFAULT_TUN };
  const words = s.words;
  for (let i = 2; i < words.length; i++) {
    const w = words[i] as Token;
    if (fwd !== "tunnel") {
      r.diags.error(w.pos, `Tunnel option "${w.text}" given for ${m} forwarding`);
      return undefined;
    }
    if (w.text === "type") {
      const v = words[++i];
      if (!v || !["ipip", "gue", "gre"].includes(v.text)) {
        r.diags.error(v?.pos ?? w.pos, `Invalid tunnel type "${v?.text ?? ""}" (expected ipip, gue or gre)`);
        return undefined;
      }
      tun.type = v.text as TunOptions["type"];
    } else if (w.text === "port") {
      const v = words[++i];
      const p = v ? parseUint(v.text, 1, MAX_PORT) : undefined;
      if (p === undefined) {
        r.diags.error(v?.pos ?? w.pos, `Invalid tunnel port "${v?.text ?? ""}" (expected 1..65535)`);
        return undefined;
      }
      tun.port = p;
    } else if (w.text === "nocsum" || w.text === "csum" || w.text === "remcsum") {
      tun.nocsum = w.text === "nocsum";
      tun.csum = w.text === "csum";
      tun.remcsum = w.text === "remcsum";
    } else {
      r.diags.error(w.pos, `Invalid tunnel option "${w.text}" (expected type, port, nocsum, csum or remcsum)`);
      return undefined;
    }
  }
  if ((tun.type === "gue") !== (tun.port !== 0)) {
    r.diags.error(t.pos, "A gue tunnel needs a port, and only a gue tunnel takes one");
    return undefined;
  }
  if (tun.type === "ipip" && (tun.csum || tun.remcsum)) {
    r.diags.error(t.pos, "ipip tunnels take no checksum option");
    return undefined;
  }
  if (tun.type === "gre" && tun.remcsum) {
    r.diags.error(t.pos, "gre tunnels do not support remcsum");
    return undefined;
  }
  return { fwd, tun };
}

function readScript(r: StmtReader, s: Stmt): NotifyScript | undefined {
  const cmd = r.arg(s, 1, "a script");
  if (!cmd) return undefined;
  const out: NotifyScript = { command: cmd.text };
  const user = s.words[2];
  if (user) {
    const [u, g] = user.text.split(":");
    if (u) out.user = u;
    const group = g || s.words[3]?.text.replace(/^:/, "");
    if (group) out.group = group;
  }
  return out;
}

/** `ADDR [PORT]` words starting at index 1 of a statement. */
function readAddrPort(r: StmtReader, s: Stmt, what: string): { addr: string; port: number | undefined } | undefined {
  const a = r.arg(s, 1, `an IP address for ${what}`);
  if (!a) return undefined;
  const addr = parseIp(a.text);
  if (addr === undefined) {
    r.diags.error(a.pos, `Invalid ${what} IP address "${a.text}"`);
    return undefined;
  }
  const p = s.words[2];
  let port: number | undefined;
  if (p) {
    port = readPortWord(r, p.text, p.pos);
    if (port === undefined) return undefined;
    if (port === 0) port = undefined;
  }
  r.noExtra(s, 2);
  return { addr, port };
}

function readRealServer(r: StmtReader, s: Stmt): RsDraft | undefined {
  const ap = readAddrPort(r, s, "real_server");
  const stmts = r.block(s) ?? [];
  if (!ap) return undefined;
  const rs: RsDraft = {
    addr: ap.addr,
    port: ap.port,
    pos: r.pos(s),
    uThreshold: 0,
    lThreshold: 0,
    common: {},
    checkerStmts: [],
  };
  for (const c of stmts) {
    const k = r.kw(c);
    if (CHECKER_KEYWORDS.has(k)) {
      rs.checkerStmts.push(c);
      continue;
    }
    if (readCommonOption(r, c, rs.common, "rs")) {
      if (k === "alpha" && rs.common.alpha !== undefined) rs.alpha = rs.common.alpha;
      r.noBlock(c);
      continue;
    }
    switch (k) {
      case "weight": {
        const v = r.uint(c, 0, MAX_WEIGHT);
        if (v !== undefined) rs.weight = v;
        break;
      }
      case "lvs_method":
      case "lb_kind": {
        const f = readForwarding(r, c);
        if (f) rs.fwd = f;
        break;
      }
      case "uthreshold":
        rs.uThreshold = r.uint(c, 0, 2 ** 32 - 1) ?? rs.uThreshold;
        break;
      case "lthreshold":
        rs.lThreshold = r.uint(c, 0, 2 ** 32 - 1) ?? rs.lThreshold;
        break;
      case "inhibit_on_failure": {
        const v = r.flag(c);
        if (v !== undefined) rs.inhibit = v;
        break;
      }
      case "notify_up":
      case "notify_down": {
        const v = readScript(r, c);
        if (v && k === "notify_up") rs.notifyUp = v;
        else if (v) rs.notifyDown = v;
        break;
      }
      case "virtualhost": {
        const v = r.str(c, "a host name");
        if (v !== undefined) rs.virtualhost = v;
        break;
      }
      case "smtp_alert":
        r.flag(c);
        break;
      case "snmp_name":
        r.str(c);
        break;
      case "real_server":
        r.diags.error(r.pos(c), 'real_server inside a real_server (missing "}"?)');
        continue;
      default:
        r.unknown(c, "real_server");
    }
    r.noBlock(c);
  }
  return rs;
}

/** Reads `virtual_server ADDR [PORT] | fwmark N | group NAME { ... }` into a draft. */
export function readVirtualServer(r: StmtReader, s: Stmt): VsDraft | undefined {
  const first = r.arg(s, 1, "an address, fwmark N or group NAME");
  const stmts = r.block(s);
  if (!first || !stmts) return undefined;
  const target = readVsTarget(r, s, first);
  if (!target) return undefined;
  const vs = newVsDraft(r, s, target);
  for (const c of stmts) readVsStatement(r, c, vs);
  return vs;
}

/** What `virtual_server` names: `ADDR PORT`, `fwmark N` or `group NAME`. */
function readVsTarget(r: StmtReader, s: Stmt, first: Token): VsTarget | undefined {
  if (first.text !== "fwmark" && first.text !== "group") {
    const ap = readAddrPort(r, s, "virtual_server");
    return ap && { kind: "vip", addr: ap.addr, port: ap.port ?? 0 };
  }
  const v = r.arg(s, 2, first.text === "fwmark" ? "a firewall mark" : "a group name");
  if (!v) return undefined;
  r.noExtra(s, 2);
  if (first.text === "group") return { kind: "group", name: v.text, pos: v.pos };
  const mark = parseUint(v.text, 1, MAX_FWMARK);
  if (mark === undefined) {
    r.diags.error(v.pos, `Invalid virtual_server fwmark "${v.text}" (expected 1..4294967295)`);
    return undefined;
  }
  return { kind: "fwmark", fwmark: mark };
}

/** A draft with keepalived's defaults, before any statement of the block is read. */
function newVsDraft(r: StmtReader, s: Stmt, target: VsTarget): VsDraft {
  return {
    pos: r.pos(s),
    label: s.words
      .slice(1, 3)
      .map((w) => w.text)
      .join(" "),
    target,
    flags: [],
    ops: false,
    pe: "",
    quorum: 1,
    hysteresis: 0,
    alpha: false,
    omega: false,
    inhibit: false,
    weight: 1,
    common: {},
    realServers: [],
  };
}

/** One statement of a virtual_server block, to the reader of its kind. */
function readVsStatement(r: StmtReader, c: Stmt, vs: VsDraft): void {
  const k = r.kw(c);
  if (k === "real_server") {
    const rs = readRealServer(r, c);
    if (rs) vs.realServers.push(rs);
    return;
  }
  if (CHECKER_KEYWORDS.has(k)) {
    r.diags.error(r.pos(c), `${k} must be inside a real_server block`);
    return;
  }
  if (readCommonOption(r, c, vs.common, "vs")) {
    if (k === "alpha") vs.alpha = true;
    r.noBlock(c);
    return;
  }
  const known = readVsScheduling(r, c, k, vs) || readVsHealth(r, c, k, vs) || readVsSorry(r, c, k, vs);
  if (!known) readVsOther(r, c, k, vs);
  r.noBlock(c);
}

/** How the service schedules and forwards: lb_algo, lb_kind, ops, protocol, persistence_*, ip_family. */
function readVsScheduling(r: StmtReader, c: Stmt, k: string, vs: VsDraft): boolean {
  switch (k) {
    case "lb_algo":
    case "lvs_sched": {
      const t = r.value(c, "a scheduler name");
      if (!t) return true;
      if (KEEPALIVED_SCHEDULERS.includes(t.text)) vs.scheduler = t.text;
      else r.diags.error(t.pos, `Invalid ${k} "${t.text}" (expected one of ${KEEPALIVED_SCHEDULERS.join(" ")})`);
      return true;
    }
    case "lb_kind":
    case "lvs_method": {
      const f = readForwarding(r, c);
      if (f) vs.fwd = f;
      return true;
    }
    case "ops":
      r.bare(c);
      vs.ops = true;
      vs.opsPos = r.pos(c);
      return true;
    case "hashed":
      r.bare(c);
      return true;
    case "protocol": {
      const t = r.value(c, "TCP, UDP or SCTP");
      if (!t) return true;
      const p = t.text.toLowerCase();
      if (p === "tcp" || p === "udp" || p === "sctp") {
        vs.protocol = p;
        vs.protocolPos = r.pos(c);
      } else r.diags.error(t.pos, `Invalid protocol "${t.text}" (expected TCP, UDP or SCTP)`);
      return true;
    }
    case "persistence_timeout": {
      if (c.words.length === 1) vs.persistenceTimeout = KEEPALIVED_PERSISTENCE_TIMEOUT;
      else {
        const v = r.uint(c, 0, MAX_PERSISTENCE_TIMEOUT, "seconds");
        if (v !== undefined) vs.persistenceTimeout = v;
      }
      return true;
    }
    case "persistence_granularity": {
      const t = r.value(c, "a netmask");
      if (t) vs.granularity = t;
      return true;
    }
    case "persistence_engine": {
      const t = r.value(c, "a persistence engine name");
      if (t && t.text !== "sip") r.diags.error(t.pos, `Invalid persistence_engine "${t.text}" (only sip exists)`);
      else if (t) vs.pe = t.text;
      return true;
    }
    case "ip_family": {
      const t = r.value(c, "inet or inet6");
      if (t?.text === "inet") vs.family = 4;
      else if (t?.text === "inet6") vs.family = 6;
      else if (t) r.diags.error(t.pos, `Invalid ip_family "${t.text}" (expected inet or inet6)`);
      return true;
    }
    default:
      return false;
  }
}

/** How health results act on the service: quorum, hysteresis, quorum_up/down, omega, inhibit, weight. */
function readVsHealth(r: StmtReader, c: Stmt, k: string, vs: VsDraft): boolean {
  switch (k) {
    case "quorum":
      vs.quorum = r.uint(c, 1, 2 ** 32 - 1) ?? vs.quorum;
      return true;
    case "hysteresis":
      vs.hysteresis = r.uint(c, 0, 2 ** 32 - 1) ?? vs.hysteresis;
      return true;
    case "quorum_up":
    case "quorum_down": {
      const v = readScript(r, c);
      if (v && k === "quorum_up") vs.quorumUp = v;
      else if (v) vs.quorumDown = v;
      return true;
    }
    case "omega":
      r.bare(c);
      vs.omega = true;
      return true;
    case "inhibit_on_failure":
      r.bare(c);
      vs.inhibit = true;
      return true;
    case "virtualhost": {
      const v = r.str(c, "a host name");
      if (v !== undefined) vs.virtualhost = v;
      return true;
    }
    case "weight":
      vs.weight = r.uint(c, 1, MAX_WEIGHT) ?? vs.weight;
      return true;
    default:
      return false;
  }
}

/** The sorry server: sorry_server, sorry_server_inhibit, sorry_server_lvs_method. */
function readVsSorry(r: StmtReader, c: Stmt, k: string, vs: VsDraft): boolean {
  switch (k) {
    case "sorry_server": {
      const ap = readAddrPort(r, c, "sorry_server");
      if (ap) vs.sorry = { ...ap, inhibit: false, pos: r.pos(c) };
      return true;
    }
    case "sorry_server_inhibit":
      r.bare(c);
      if (vs.sorry) vs.sorry.inhibit = true;
      else r.diags.error(r.pos(c), "sorry_server_inhibit before or without sorry_server");
      return true;
    case "sorry_server_lvs_method": {
      const f = readForwarding(r, c);
      if (!vs.sorry) r.diags.error(r.pos(c), "sorry_server_lvs_method before or without sorry_server");
      else if (f) vs.sorry.fwd = f;
      return true;
    }
    default:
      return false;
  }
}

/** Scheduler flag words, keywords read and left alone, and everything unknown. */
function readVsOther(r: StmtReader, c: Stmt, k: string, vs: VsDraft): void {
  switch (k) {
    case "ha_suspend":
      r.bare(c);
      r.unsupported(c, "virtual_server");
      break;
    case "smtp_alert":
      r.flag(c);
      break;
    case "snmp_name":
      r.str(c);
      break;
    default:
      if (SCHED_FLAG_WORDS.has(k)) {
        r.bare(c);
        vs.flags.push({ word: k, pos: r.pos(c) });
      } else r.unknown(c, "virtual_server");
  }
}

/** One entry of a virtual_server_group, after range expansion. */
export type GroupEntry =
  | { kind: "vip"; addr: string; port: number }
  | { kind: "fwmark"; fwmark: number; family?: 4 | 6 };

export interface BuiltService {
  service: DesiredService;
  health: ServiceHealth;
}

/**
 * Turns a draft into one desired service per key (a plain virtual_server has one key; a group has
 * one per address and fwmark entry), with health settings. Checkers are read once per real server.
 */
export function buildVirtualServer(
  r: StmtReader,
  vs: VsDraft,
  groups: ReadonlyMap<string, GroupEntry[]>,
  fileRefs: PendingFileRef[],
): BuiltService[] {
  const d = r.diags;
  if (vs.realServers.length === 0) {
    d.warning(vs.pos, `virtual_server ${vs.label} has no real servers - ignored`);
    return [];
  }
  const entries = targetEntries(vs, groups, d);
  if (!entries) return [];
  const basics = serviceBasics(vs, entries, d);
  const schedFlags = schedulerFlags(vs, basics.scheduler, d);
  const shape = keysAndOptions(vs, entries, basics, schedFlags, d);
  if (!shape) return [];
  const realServers = acceptedRealServers(vs, basics.vsFwd, shape.family, d);
  const quorum = quorumSettings(vs, realServers, d);
  const checkersOf = checkersByServer(r, vs, realServers, fileRefs);
  const destFor = destPlacer(d);
  return shape.keys.map(({ key, port: vport }) => {
    const ctx: KeyContext = { vs, key, vport, vsFwd: basics.vsFwd, destFor };
    const { dests, rsHealth } = keyDests(ctx, realServers, checkersOf);
    const health = keyHealth(ctx, quorum, rsHealth);
    // A group may mix families when every real server is tunnelled; each key keeps its own.
    const keyFam = key.kind === "fwmark" ? key.family : ipFamily(key.addr);
    const keyOptions = { ...shape.options, schedFlags: [...shape.options.schedFlags] };
    if (keyFam !== shape.family && !vs.granularity) keyOptions.netmask = keyFam === 4 ? 32 : 128;
    return { service: { key, options: keyOptions, dests }, health };
  });
}

/** The draft's target as group entries: the group's (expanded) entries, or its one address or fwmark. */
function targetEntries(
  vs: VsDraft,
  groups: ReadonlyMap<string, GroupEntry[]>,
  d: Diagnostics,
): GroupEntry[] | undefined {
  if (vs.target.kind === "group") {
    const g = groups.get(vs.target.name);
    if (!g) d.error(vs.target.pos, `Unknown virtual_server_group "${vs.target.name}"`);
    return g;
  }
  if (vs.target.kind === "fwmark") return [{ kind: "fwmark", fwmark: vs.target.fwmark }];
  return [{ kind: "vip", addr: vs.target.addr, port: vs.target.port }];
}

interface ServiceBasics {
  isFwmarkOnly: boolean;
  protocol: Protocol | undefined;
  ops: boolean;
  scheduler: string;
  /** The virtual_server's lb_kind, or NAT when a real server needs one and none is given. */
  vsFwd: Forwarding | undefined;
}

/** protocol, ops, lb_algo and lb_kind with keepalived's defaults and warnings. */
function serviceBasics(vs: VsDraft, entries: readonly GroupEntry[], d: Diagnostics): ServiceBasics {
  const isFwmarkOnly = entries.every((e) => e.kind === "fwmark");
  let protocol = vs.protocol;
  if (!isFwmarkOnly && protocol === undefined) {
    d.warning(vs.pos, `virtual_server ${vs.label} has no protocol - defaulting to UDP as keepalived does`);
    protocol = "udp";
  }
  if (isFwmarkOnly && vs.protocol !== undefined && vs.protocolPos)
    d.warning(vs.protocolPos, `protocol is ignored for a fwmark virtual_server`);
  if (vs.ops && protocol !== "udp" && !isFwmarkOnly) {
    d.warning(vs.opsPos ?? vs.pos, `ops (one-packet scheduling) needs protocol UDP - ignored`);
  }
  const ops = vs.ops && (protocol === "udp" || isFwmarkOnly);
  let scheduler = vs.scheduler;
  if (scheduler === undefined) {
    d.warning(vs.pos, `virtual_server ${vs.label} has no lb_algo - using wlc`);
    scheduler = "wlc";
  }
  let vsFwd = vs.fwd;
  const needsDefaultFwd = vs.realServers.some((rs) => !rs.fwd) || (vs.sorry !== undefined && !vs.sorry.fwd);
  if (!vsFwd && needsDefaultFwd) {
    d.warning(vs.pos, `virtual_server ${vs.label} has no lb_kind - using NAT as keepalived does`);
    vsFwd = { fwd: "masq", tun: { ...DEFAULT_TUN } };
  }
  return { isFwmarkOnly, protocol, ops, scheduler, vsFwd };
}

/**
 * Scheduler flags: keepalived spells a scheduler's own names (sh-port, valid only with sh) and
 * flag-1..3, which are the kernel's bits 1, 2, 4. Named as ipvsadm lists them, in bit order.
 */
function schedulerFlags(vs: VsDraft, scheduler: string, d: Diagnostics): string[] {
  let bits = 0;
  for (const f of vs.flags) {
    const w = f.word;
    const known = schedFlagBit(w);
    if (!known) continue;
    if (known.owner !== undefined && known.owner !== scheduler) {
      d.warning(f.pos, `${w} only applies to the ${known.owner} scheduler - ignored`);
      continue;
    }
    if (schedFlagNames(scheduler, known.bit).length === 0) {
      d.warning(f.pos, `${w} has no meaning for the ${scheduler} scheduler - ignored`);
      continue;
    }
    bits |= known.bit;
  }
  return schedFlagNames(scheduler, bits);
}

/** The service keys (one per entry), the family, and the options with persistence. */
function keysAndOptions(
  vs: VsDraft,
  entries: readonly GroupEntry[],
  basics: ServiceBasics,
  schedFlags: string[],
  d: Diagnostics,
): { keys: { key: ServiceKey; port: number }[]; family: 4 | 6; options: ServiceOptions } | undefined {
  const { protocol, vsFwd } = basics;
  let timeout = vs.persistenceTimeout ?? 0;
  const firstVip = entries.find((e) => e.kind === "vip");
  const fwmFamily = entries.find((e) => e.kind === "fwmark" && e.family !== undefined);
  const nonTun = vs.realServers.find((rs) => (rs.fwd ?? vsFwd)?.fwd !== "tunnel");
  const family: 4 | 6 =
    vs.family ??
    (firstVip?.kind === "vip" ? ipFamily(firstVip.addr) : undefined) ??
    (fwmFamily?.kind === "fwmark" ? fwmFamily.family : undefined) ??
    (nonTun ? ipFamily(nonTun.addr) : 4);
  const keys: { key: ServiceKey; port: number }[] = entries.map((e) =>
    e.kind === "fwmark"
      ? { key: { kind: "fwmark", fwmark: e.fwmark, family: e.family ?? family }, port: 0 }
      : { key: { kind: "vip", protocol: protocol ?? "tcp", addr: e.addr, port: e.port }, port: e.port },
  );
  const allTunnelled = vs.realServers.every((rs) => (rs.fwd ?? vsFwd)?.fwd === "tunnel");
  const otherFamily = keys.find((k) => (k.key.kind === "fwmark" ? k.key.family : ipFamily(k.key.addr)) !== family);
  if (otherFamily && !allTunnelled) {
    d.error(
      vs.pos,
      `virtual_server ${vs.label} mixes IPv4 and IPv6 (${serviceKeyId(otherFamily.key)}); only tunnelled real servers allow that`,
    );
    return undefined;
  }
  let netmask = family === 4 ? 32 : 128;
  if (vs.granularity) {
    const g = parseNetmask(vs.granularity.text, family);
    if (g === undefined)
      d.error(
        vs.granularity.pos,
        `Invalid persistence_granularity "${vs.granularity.text}" (expected ${family === 4 ? "a contiguous netmask like 255.255.255.0" : "a prefix length 1..128"})`,
      );
    else netmask = g;
    if (timeout === 0) timeout = KEEPALIVED_PERSISTENCE_TIMEOUT;
  }
  const zeroPort = keys.some((k) => k.key.kind === "vip" && k.port === 0);
  if (zeroPort && timeout === 0) {
    d.warning(
      vs.pos,
      `virtual_server ${vs.label}: port 0 is only valid for a persistent service - making it persistent`,
    );
    timeout = KEEPALIVED_PERSISTENCE_TIMEOUT;
  }
  const options = serviceOptions(family, {
    scheduler: basics.scheduler,
    schedFlags,
    persistent: timeout > 0,
    timeout,
    netmask,
    ops: basics.ops,
    pe: vs.pe,
  });
  return { keys, family, options };
}

/** Real servers without duplicates and of the service's family (unless tunnelled). */
function acceptedRealServers(vs: VsDraft, vsFwd: Forwarding | undefined, family: 4 | 6, d: Diagnostics): RsDraft[] {
  const realServers: RsDraft[] = [];
  for (const rs of vs.realServers) {
    if (realServers.some((o) => o.addr === rs.addr && o.port === rs.port)) {
      d.warning(
        rs.pos,
        `real_server ${rs.addr} ${rs.port ?? ""} is listed twice in virtual_server ${vs.label} - second ignored`,
      );
      continue;
    }
    const fwd = rs.fwd ?? vsFwd;
    const rsFamily = ipFamily(rs.addr);
    if (fwd?.fwd !== "tunnel" && rsFamily !== family) {
      d.error(rs.pos, `real_server ${rs.addr} is IPv${rsFamily} but virtual_server ${vs.label} is IPv${family}`);
      continue;
    }
    realServers.push(rs);
  }
  return realServers;
}

/** quorum (at most the total weight) and hysteresis (below the quorum). */
function quorumSettings(
  vs: VsDraft,
  realServers: readonly RsDraft[],
  d: Diagnostics,
): { quorum: number; hysteresis: number } {
  const weightSum = realServers.reduce((sum, rs) => sum + (rs.weight ?? vs.weight), 0);
  let quorum = vs.quorum;
  let hysteresis = vs.hysteresis;
  if (quorum > weightSum) {
    d.warning(
      vs.pos,
      `quorum ${quorum} exceeds the total weight ${weightSum} of the real servers - using ${weightSum}`,
    );
    quorum = weightSum;
  }
  if (hysteresis >= quorum && (hysteresis !== 0 || quorum !== 0)) {
    const h = Math.max(0, quorum - 1);
    d.warning(vs.pos, `hysteresis ${hysteresis} must be below quorum ${quorum} - using ${h}`);
    hysteresis = h;
  }
  return { quorum, hysteresis };
}

/** Checkers once per real server (the same spec objects serve every expanded key). */
function checkersByServer(
  r: StmtReader,
  vs: VsDraft,
  realServers: readonly RsDraft[],
  fileRefs: PendingFileRef[],
): Map<RsDraft, CheckerSpec[]> {
  const vsCommon: CommonOverrides = { ...vs.common, omega: vs.omega };
  const checkersOf = new Map<RsDraft, CheckerSpec[]>();
  for (const rs of realServers) {
    const list: CheckerSpec[] = [];
    for (const c of rs.checkerStmts) {
      const spec = readChecker(r, c, vsCommon, rs.common, fileRefs, rs.virtualhost ?? vs.virtualhost);
      if (spec) list.push(spec);
    }
    checkersOf.set(rs, list);
  }
  return checkersOf;
}

/** Places a real (or sorry) server under one key: the port its forwarding method keeps. */
type DestFor = (
  addr: string,
  rsPort: number | undefined,
  f: Forwarding,
  key: ServiceKey,
  vport: number,
  pos: SourcePos,
  warnOnce: RsDraft | undefined,
  over: Partial<DestSpec>,
) => DestSpec;

/** A DestFor that warns about an ignored or replaced port once per real server (not once per key). */
function destPlacer(d: Diagnostics): DestFor {
  const portWarned = new Set<RsDraft>();
  return (addr, rsPort, f, key, vport, pos, warnOnce, over) => {
    let port = rsPort ?? 0;
    if (key.kind === "fwmark") {
      if (f.fwd !== "masq" && port !== 0) {
        if (!warnOnce || !portWarned.has(warnOnce))
          d.warning(pos, `Port ${port} of ${addr} is ignored for a fwmark service with ${f.fwd} forwarding`);
        if (warnOnce) portWarned.add(warnOnce);
        port = 0;
      }
    } else if (f.fwd === "masq" || f.fwd === "fullnat") {
      if (rsPort === undefined) port = vport;
    } else if (rsPort === undefined) port = vport;
    else if (rsPort !== vport) {
      if (!warnOnce || !portWarned.has(warnOnce))
        d.warning(
          pos,
          `Port ${rsPort} of ${addr} differs from the virtual port ${vport}, which ${f.fwd} forwarding keeps - using ${vport}`,
        );
      if (warnOnce) portWarned.add(warnOnce);
      port = vport;
    }
    return destSpec(addr, port, { fwd: f.fwd, tun: { ...f.tun }, ...over });
  };
}

/** What building one key's service needs. */
interface KeyContext {
  vs: VsDraft;
  key: ServiceKey;
  vport: number;
  vsFwd: Forwarding | undefined;
  destFor: DestFor;
}

/** One key's destinations and their health settings. */
function keyDests(
  ctx: KeyContext,
  realServers: readonly RsDraft[],
  checkersOf: ReadonlyMap<RsDraft, CheckerSpec[]>,
): { dests: DestSpec[]; rsHealth: RealServerHealth[] } {
  const { vs, key, vport, vsFwd, destFor } = ctx;
  const dests: DestSpec[] = [];
  const rsHealth: RealServerHealth[] = [];
  for (const rs of realServers) {
    const f = (rs.fwd ?? vsFwd) as Forwarding;
    const weight = rs.weight ?? vs.weight;
    const dest = destFor(rs.addr, rs.port, f, key, vport, rs.pos, rs, {
      weight,
      uThreshold: rs.uThreshold,
      lThreshold: rs.lThreshold,
    });
    dests.push(dest);
    const h: RealServerHealth = {
      addr: dest.addr,
      port: dest.port,
      weight,
      checkers: checkersOf.get(rs) ?? [],
      inhibitOnFailure: rs.inhibit ?? vs.inhibit,
      alpha: rs.alpha ?? vs.alpha,
      origin: rs.pos,
    };
    if (rs.notifyUp) h.notifyUp = rs.notifyUp;
    if (rs.notifyDown) h.notifyDown = rs.notifyDown;
    rsHealth.push(h);
  }
  return { dests, rsHealth };
}

/** One key's health settings: quorum, scripts, the sorry server. */
function keyHealth(
  ctx: KeyContext,
  q: { quorum: number; hysteresis: number },
  rsHealth: RealServerHealth[],
): ServiceHealth {
  const { vs, key, vport, vsFwd, destFor } = ctx;
  const health: ServiceHealth = {
    serviceId: serviceKeyId(key),
    key,
    delayLoopMs: vs.common.delayLoopMs ?? DEFAULT_DELAY_LOOP_MS,
    quorum: q.quorum,
    hysteresis: q.hysteresis,
    alpha: vs.alpha,
    omega: vs.omega,
    inhibitOnFailure: vs.inhibit,
    realServers: rsHealth,
    origin: vs.pos,
  };
  if (vs.quorumUp) health.quorumUp = vs.quorumUp;
  if (vs.quorumDown) health.quorumDown = vs.quorumDown;
  if (vs.virtualhost !== undefined) health.virtualhost = vs.virtualhost;
  if (vs.target.kind === "group") health.group = vs.target.name;
  if (vs.sorry) {
    const f = (vs.sorry.fwd ?? vsFwd) as Forwarding;
    health.sorryServer = {
      dest: destFor(vs.sorry.addr, vs.sorry.port, f, key, vport, vs.sorry.pos, undefined, { weight: 1 }),
      inhibit: vs.sorry.inhibit,
    };
  }
  return health;
}
