// ldirectord.cf → DirectorConfig. The file is lines of `key = value`: unindented lines are global
// options, `virtual=` opens a section and the indented lines after it belong to that section.
// `#` starts a comment outside quotes. Defaults are ldirectord's: scheduler wrr, checktype
// negotiate, checkinterval 10 s, checktimeout 5 s, negotiatetimeout 30 s, failurecount 1,
// quiescent yes, protocol tcp (udp for port 53, fwm for a firewall mark), service from the port.
// Host and service names are not resolved: addresses must be numeric, ports numeric or a few
// well-known service names.

import { ipFamily, MAX_PORT } from "../../core/addr.ts";
import { DEFAULT_TUN, type DestSpec, destSpec, type FwdMethod } from "../../core/dest.ts";
import type { Protocol } from "../../core/sched/types.ts";
import {
  MAX_FWMARK,
  MAX_PERSISTENCE_TIMEOUT,
  type ServiceKey,
  type ServiceOptions,
  serviceKeyId,
  serviceOptions,
} from "../../core/service.ts";
import type { CheckerSpec } from "../../health/checker-spec.ts";
import type { DesiredService } from "../desired.ts";
import { Diagnostics, type SourcePos } from "../diagnostics.ts";
import type { DirectorConfig, NotifyScript, RealServerHealth, ServiceHealth } from "../director-config.ts";
import { parseBool, parseIp, parseNetmask, parseTimerMs, parseUint } from "../values.ts";
import { emptyVrrpConfig } from "../vrrp-spec.ts";
import { type LdirectordCheckSettings, ldirectordChecker } from "./checks.ts";

const SERVICE_PORTS: Record<string, number> = {
  ftp: 21,
  smtp: 25,
  domain: 53,
  dns: 53,
  http: 80,
  www: 80,
  pop3: 110,
  pop: 110,
  nntp: 119,
  imap: 143,
  imap2: 143,
  ldap: 389,
  https: 443,
  submission: 587,
  imaps: 993,
  pop3s: 995,
  pops: 995,
  oracle: 1521,
  radius: 1812,
  "http-alt": 8080,
  squid: 3128,
  mysql: 3306,
  sip: 5060,
  postgresql: 5432,
  pgsql: 5432,
};

/** ldirectord's default `service` for a virtual port. */
const DEFAULT_SERVICE: Record<number, string> = {
  21: "ftp",
  25: "smtp",
  53: "dns",
  80: "http",
  110: "pop",
  119: "nntp",
  143: "imap",
  389: "ldap",
  443: "https",
  587: "submission",
  993: "imaps",
  995: "pops",
  1521: "oracle",
  1812: "radius",
  3128: "http_proxy",
  3306: "mysql",
  5432: "pgsql",
  5060: "sip",
};

const SERVICES = new Set([
  "dns",
  "ftp",
  "http",
  "https",
  "http_proxy",
  "imap",
  "ldaps",
  "imaps",
  "ldap",
  "mysql",
  "nntp",
  "none",
  "oracle",
  "pgsql",
  "pop",
  "pops",
  "radius",
  "simpletcp",
  "sip",
  "smtp",
  "submission",
]);

const GLOBAL_ONLY = new Set([
  "autoreload",
  "callback",
  "logfile",
  "execute",
  "supervised",
  "fork",
  "maintenancedir",
  "emailalertfrom",
  "readdquiescent",
  "fallback6",
]);
/** Options valid both globally and in a virtual section. */
const SHARED = new Set([
  "checktimeout",
  "negotiatetimeout",
  "connecttimeout",
  "checkinterval",
  "checkcount",
  "failurecount",
  "fallback",
  "fallbackcommand",
  "emailalert",
  "emailalertfreq",
  "emailalertstatus",
  "smtp",
  "quiescent",
  "cleanstop",
]);
const VIRTUAL_ONLY = new Set([
  "real",
  "real6",
  "service",
  "scheduler",
  "persistent",
  "netmask",
  "protocol",
  "checktype",
  "checkport",
  "checkcommand",
  "request",
  "receive",
  "httpmethod",
  "virtualhost",
  "login",
  "passwd",
  "database",
  "secret",
  "monitorfile",
  "ops",
]);

interface Line {
  key: string;
  value: string;
  /** Position of the key and of the value's first character. */
  keyPos: SourcePos;
  valuePos: SourcePos;
}

interface Section {
  line: Line;
  options: Map<string, Line>;
  reals: Line[];
}

/** Drops a `#` comment that is outside double quotes. */
function stripComment(text: string): string {
  let q = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') q = !q;
    else if (c === "#" && !q) return text.slice(0, i);
  }
  return text;
}

function unquote(v: string): string {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

/** Splits a real= value into words, keeping "quoted strings" (with their quotes dropped) whole. */
function splitWords(text: string): { text: string; quoted: boolean; offset: number }[] {
  const out: { text: string; quoted: boolean; offset: number }[] = [];
  const re = /"([^"]*)"|([^\s,"]+)/g;
  for (const m of text.matchAll(re)) {
    out.push({ text: m[1] ?? m[2] ?? "", quoted: m[1] !== undefined, offset: m.index ?? 0 });
  }
  return out;
}

function at(p: SourcePos, offset: number): SourcePos {
  return { ...p, column: p.column + offset };
}

/** "ip:port", "[v6]:port", "ip" → address and optional port (number or service name). */
function splitHostPort(text: string): { host: string; port?: string } {
  if (text.startsWith("[")) {
    const end = text.indexOf("]");
    if (end === -1) return { host: text };
    const rest = text.slice(end + 1);
    return rest.startsWith(":") ? { host: text.slice(1, end), port: rest.slice(1) } : { host: text.slice(1, end) };
  }
  const colon = text.lastIndexOf(":");
  if (colon === -1 || text.indexOf(":") !== colon) return { host: text };
  return { host: text.slice(0, colon), port: text.slice(colon + 1) };
}

export function buildLdirectord(file: string, text: string): { config: DirectorConfig; diagnostics: Diagnostics } {
  const diags = new Diagnostics();
  const { globals, sections } = readLines(file, text, diags);
  const val = valueReaders(diags);
  const ctx: SectionContext = { diags, val, globals, defaults: readGlobalDefaults(globals, val) };
  const services: DesiredService[] = [];
  const health: ServiceHealth[] = [];
  const seen = new Set<string>();
  for (const sec of sections) {
    const built = buildSection(sec, ctx);
    if (!built) continue;
    const id = serviceKeyId(built.service.key);
    if (seen.has(id)) {
      diags.error(sec.line.keyPos, `Virtual service ${id} is defined twice`);
      continue;
    }
    seen.add(id);
    services.push(built.service);
    health.push(built.health);
  }
  const globalsOut: Record<string, string[]> = {};
  for (const [k, l] of globals) globalsOut[k] = [unquote(l.value)];
  const config: DirectorConfig = {
    format: "ldirectord",
    file,
    files: [file],
    desired: { services },
    health,
    vrrp: emptyVrrpConfig(),
    globals: globalsOut,
    warnings: diags.warnings,
  };
  return { config, diagnostics: diags };
}

/** The file's lines: global `key = value` lines, and `virtual=` sections with their indented lines. */
function readLines(
  file: string,
  text: string,
  diags: Diagnostics,
): { globals: Map<string, Line>; sections: Section[] } {
  const globals = new Map<string, Line>();
  const sections: Section[] = [];
  let current: Section | undefined;

  const lines = text.split("\n");
  for (let ln = 0; ln < lines.length; ln++) {
    const raw = stripComment((lines[ln] as string).replace(/\r$/, ""));
    if (raw.trim() === "") continue;
    const indent = /^[ \t]*/.exec(raw)?.[0].length ?? 0;
    const pos = (col: number): SourcePos => ({ file, line: ln + 1, column: col + 1 });
    const m = /^([A-Za-z0-9_]+)[ \t]*=[ \t]*(.*?)[ \t]*$/.exec(raw.slice(indent));
    if (!m) {
      diags.error(pos(indent), `Expected "key = value", found "${raw.trim()}"`);
      continue;
    }
    const key = (m[1] as string).toLowerCase();
    const value = m[2] as string;
    const valueCol =
      indent +
      raw.slice(indent).indexOf("=") +
      1 +
      (/^[ \t]*/.exec(raw.slice(indent + raw.slice(indent).indexOf("=") + 1))?.[0].length ?? 0);
    const line: Line = { key, value, keyPos: pos(indent), valuePos: pos(valueCol) };
    if (key === "virtual" || key === "virtual6") {
      if (indent > 0) diags.warning(line.keyPos, `"${key}" should not be indented`);
      current = { line, options: new Map(), reals: [] };
      sections.push(current);
      continue;
    }
    if (key === "connecttimeout")
      diags.warning(
        line.keyPos,
        "connecttimeout is deprecated in favour of negotiatetimeout - read as negotiatetimeout",
      );
    if (indent === 0) {
      current = undefined;
      if (VIRTUAL_ONLY.has(key)) {
        diags.error(line.keyPos, `"${key}" must be inside a virtual section (indent it under a virtual= line)`);
        continue;
      }
      if (!GLOBAL_ONLY.has(key) && !SHARED.has(key)) {
        diags.warning(line.keyPos, `Unknown option "${key}" - ignored`);
        continue;
      }
      if (value === "") diags.error(line.valuePos, `Missing value for "${key}"`);
      globals.set(key, line);
      continue;
    }
    if (!current) {
      diags.error(line.keyPos, `Indented "${key}" without a virtual= line before it`);
      continue;
    }
    if (key === "real" || key === "real6") {
      current.reals.push(line);
      continue;
    }
    if (GLOBAL_ONLY.has(key)) {
      diags.warning(line.keyPos, `"${key}" is a global option and is ignored in a virtual section`);
      continue;
    }
    if (!VIRTUAL_ONLY.has(key) && !SHARED.has(key)) {
      diags.warning(line.keyPos, `Unknown option "${key}" in a virtual section - ignored`);
      continue;
    }
    if (value === "") diags.error(line.valuePos, `Missing value for "${key}"`);
    current.options.set(key, line);
  }

  return { globals, sections };
}

/** Value readers that report a bad value at its position and fall back to the default. */
interface ValueReaders {
  seconds(l: Line | undefined, dflt: number): number;
  count(l: Line | undefined, dflt: number): number;
  yesNo(l: Line | undefined, dflt: boolean): boolean;
  /** A numeric port or a well-known service name. */
  port(t: string, p: SourcePos): number | undefined;
}

function valueReaders(diags: Diagnostics): ValueReaders {
  const seconds = (l: Line | undefined, dflt: number): number => {
    if (!l) return dflt;
    const v = parseTimerMs(unquote(l.value), 1);
    if (v === undefined) {
      diags.error(l.valuePos, `Invalid ${l.key} "${l.value}" (expected seconds > 0)`);
      return dflt;
    }
    return v;
  };
  const count = (l: Line | undefined, dflt: number): number => {
    if (!l) return dflt;
    const v = parseUint(unquote(l.value), 1, 2 ** 31 - 1);
    if (v === undefined) {
      diags.error(l.valuePos, `Invalid ${l.key} "${l.value}" (expected a positive integer)`);
      return dflt;
    }
    return v;
  };
  const yesNo = (l: Line | undefined, dflt: boolean): boolean => {
    if (!l) return dflt;
    const v = parseBool(unquote(l.value));
    if (v === undefined) {
      diags.error(l.valuePos, `Invalid ${l.key} "${l.value}" (expected yes or no)`);
      return dflt;
    }
    return v;
  };
  const parsePortText = (t: string, p: SourcePos): number | undefined => {
    const n = /^\d+$/.test(t) ? parseUint(t, 0, MAX_PORT) : SERVICE_PORTS[t.toLowerCase()];
    if (n === undefined) diags.error(p, `Invalid port "${t}" (expected 0..65535 or a known service name)`);
    return n;
  };
  return { seconds, count, yesNo, port: parsePortText };
}

/** The global options every section falls back to, with ldirectord's defaults. */
interface GlobalDefaults {
  checkInterval: number;
  checkTimeout: number | undefined;
  negotiate: number | undefined;
  fork: boolean;
  failure: number;
  quiescent: boolean;
}

function readGlobalDefaults(globals: Map<string, Line>, val: ValueReaders): GlobalDefaults {
  const { seconds, count, yesNo } = val;
  for (const l of globals.values()) {
    if (["autoreload", "supervised", "fork", "readdquiescent", "cleanstop", "quiescent"].includes(l.key))
      yesNo(l, false);
  }
  const gCheckInterval = seconds(globals.get("checkinterval"), 10_000);
  const globalMs = (l: Line | undefined): number | undefined => (l ? seconds(l, 0) : undefined);
  const gCheckTimeout = globalMs(globals.get("checktimeout"));
  const gNegotiate = globalMs(globals.get("negotiatetimeout") ?? globals.get("connecttimeout"));
  const gFork = yesNo(globals.get("fork"), false);
  const gFailure = count(globals.get("failurecount"), 1);
  const gQuiescent = yesNo(globals.get("quiescent"), true);

  return {
    checkInterval: gCheckInterval,
    checkTimeout: gCheckTimeout,
    negotiate: gNegotiate,
    fork: gFork,
    failure: gFailure,
    quiescent: gQuiescent,
  };
}

interface SectionContext {
  diags: Diagnostics;
  val: ValueReaders;
  globals: Map<string, Line>;
  defaults: GlobalDefaults;
}

/** ldirectord's forwarding words. */
function fwdOf(word: string): FwdMethod | undefined {
  if (word === "gate") return "droute";
  if (word === "masq") return "masq";
  if (word === "ipip") return "tunnel";
  if (word === "fnat") return "fullnat";
  return undefined;
}

/** A section's option lines, and their unquoted values. */
function sectionOptions(sec: Section): {
  opt: (k: string) => Line | undefined;
  optText: (k: string) => string | undefined;
} {
  const opt = (k: string) => sec.options.get(k);
  const optText = (k: string) => {
    const l = opt(k);
    return l ? unquote(l.value) : undefined;
  };
  return { opt, optText };
}

/** One `virtual=` section: its service (key, options, real servers) and its health settings. */
function buildSection(
  sec: Section,
  ctx: SectionContext,
): { service: DesiredService; health: ServiceHealth } | undefined {
  const virtual = readVirtual(sec, ctx);
  if (!virtual) return undefined;
  const options = readSchedulingOptions(sec, virtual, ctx);
  const checks = readCheckSettings(sec, virtual, ctx);
  const { dests, rsHealth } = readReals(sec, virtual, checks, ctx);
  const { key } = virtual;
  const v = sec.line;
  const { checkInterval, quiescent, virtualhost } = checks;
  const h: ServiceHealth = {
    serviceId: serviceKeyId(key),
    key,
    delayLoopMs: checkInterval,
    quorum: 1,
    hysteresis: 0,
    alpha: false,
    omega: false,
    inhibitOnFailure: quiescent,
    realServers: rsHealth,
    origin: v.keyPos,
  };
  if (virtualhost !== undefined) h.virtualhost = virtualhost;
  readFallback(sec, virtual, h, quiescent, ctx);
  return { service: { key, options, dests }, health: h };
}

/** What a section's `virtual=` names, and its protocol. */
interface Virtual {
  key: ServiceKey;
  vport: number;
  protocol: Protocol | "fwm";
  vtext: string;
  family: 4 | 6;
}

/** `virtual = ip:port | [v6]:port | fwmark`, with `protocol` (tcp, udp, sctp, fwm). */
function readVirtual(sec: Section, ctx: SectionContext): Virtual | undefined {
  const { diags, val } = ctx;
  const v = sec.line;
  const { opt } = sectionOptions(sec);
  // virtual = ip:port | [v6]:port | fwmark
  const vtext = unquote(v.value);
  let key: ServiceKey;
  let vport = 0;
  let protocol: Protocol | "fwm";
  const protoLine = opt("protocol");
  const protoText = protoLine ? unquote(protoLine.value).toLowerCase() : undefined;
  if (protoText !== undefined && !["tcp", "udp", "sctp", "fwm"].includes(protoText)) {
    diags.error(
      (protoLine as Line).valuePos,
      `Invalid protocol "${protoLine?.value}" (expected tcp, udp, sctp or fwm)`,
    );
    return undefined;
  }
  if (/^\d+$/.test(vtext)) {
    const mark = parseUint(vtext, 1, MAX_FWMARK);
    if (mark === undefined) {
      diags.error(v.valuePos, `Invalid firewall mark "${vtext}" (expected 1..4294967295)`);
      return undefined;
    }
    if (protoText !== undefined && protoText !== "fwm")
      diags.error(
        (protoLine as Line).valuePos,
        `protocol must be fwm for a firewall-mark virtual (got "${protoText}")`,
      );
    protocol = "fwm";
    const firstReal = sec.reals[0] ? splitHostPort(splitWords(sec.reals[0].value)[0]?.text ?? "").host : "";
    key = { kind: "fwmark", fwmark: mark, family: v.key === "virtual6" || firstReal.includes(":") ? 6 : 4 };
  } else {
    const hp = splitHostPort(vtext);
    const addr = parseIp(hp.host);
    if (addr === undefined) {
      diags.error(v.valuePos, `Invalid virtual address "${hp.host}" (host names are not resolved; use an IP address)`);
      return undefined;
    }
    if (hp.port === undefined) {
      diags.error(v.valuePos, `virtual "${vtext}" needs a port (address:port)`);
      return undefined;
    }
    const p = val.port(hp.port, at(v.valuePos, vtext.length - hp.port.length));
    if (p === undefined) return undefined;
    vport = p;
    if (protoText === "fwm") {
      diags.error((protoLine as Line).valuePos, `protocol fwm needs a firewall-mark virtual, not "${vtext}"`);
      return undefined;
    }
    protocol = (protoText as Protocol | undefined) ?? (vport === 53 ? "udp" : "tcp");
    key = { kind: "vip", protocol, addr, port: vport };
  }
  const family = key.kind === "fwmark" ? key.family : ipFamily(key.addr);

  return { key, vport, protocol, vtext, family };
}

/** scheduler, persistent, netmask and ops as core's ServiceOptions. */
function readSchedulingOptions(sec: Section, virtual: Virtual, ctx: SectionContext): ServiceOptions {
  const { diags } = ctx;
  const { yesNo } = ctx.val;
  const { key, vport, protocol, family } = virtual;
  const v = sec.line;
  const { opt, optText } = sectionOptions(sec);
  const scheduler = optText("scheduler") ?? "wrr";
  if (!/^[a-z0-9]+$/.test(scheduler))
    diags.error((opt("scheduler") as Line).valuePos, `Invalid scheduler "${scheduler}"`);
  let timeout = 0;
  const persistLine = opt("persistent");
  if (persistLine) {
    const t = parseUint(unquote(persistLine.value), 1, MAX_PERSISTENCE_TIMEOUT);
    if (t === undefined)
      diags.error(persistLine.valuePos, `Invalid persistent "${persistLine.value}" (expected seconds > 0)`);
    else timeout = t;
  }
  let netmask = family === 4 ? 32 : 128;
  const maskLine = opt("netmask");
  if (maskLine) {
    const m = parseNetmask(unquote(maskLine.value), family);
    if (m === undefined) diags.error(maskLine.valuePos, `Invalid netmask "${maskLine.value}"`);
    else if (timeout === 0) diags.warning(maskLine.keyPos, "netmask only applies to a persistent service - ignored");
    else netmask = m;
  }
  const ops = yesNo(opt("ops"), false);
  if (ops && protocol !== "udp" && protocol !== "fwm")
    diags.warning((opt("ops") as Line).keyPos, "ops (one-packet scheduling) only applies to UDP - ignored");
  if (key.kind === "vip" && vport === 0 && timeout === 0)
    diags.error(v.valuePos, `Port 0 is only valid for a persistent service (set persistent=)`);
  const options = serviceOptions(family, {
    scheduler,
    persistent: timeout > 0,
    timeout,
    netmask,
    ops: ops && (protocol === "udp" || protocol === "fwm"),
  });

  return options;
}

/** How a section's real servers are checked, and the checker spec for one of them. */
interface SectionChecks {
  checkInterval: number;
  quiescent: boolean;
  checkType: string;
  request: string | undefined;
  receive: string | undefined;
  virtualhost: string | undefined;
  checkerFor(
    rip: string,
    rport: number,
    req: string | undefined,
    recv: string | undefined,
    pos: SourcePos,
  ): CheckerSpec[];
}

/** checktype, service, timeouts, failurecount, quiescent, request/receive ..., with the globals as fallback. */
function readCheckSettings(sec: Section, virtual: Virtual, ctx: SectionContext): SectionChecks {
  const { diags } = ctx;
  const { seconds, count, yesNo } = ctx.val;
  const g = ctx.defaults;
  const gCheckInterval = g.checkInterval;
  const gCheckTimeout = g.checkTimeout;
  const gNegotiate = g.negotiate;
  const gFork = g.fork;
  const gFailure = g.failure;
  const gQuiescent = g.quiescent;
  const { key, vport, protocol } = virtual;
  const { opt, optText } = sectionOptions(sec);
  // ldirectord honours a per-virtual checkinterval only when it forks a checker per virtual.
  let checkInterval = gCheckInterval;
  const ciLine = opt("checkinterval");
  if (ciLine) {
    const v = seconds(ciLine, gCheckInterval);
    if (gFork) checkInterval = v;
    else
      diags.warning(
        ciLine.keyPos,
        "checkinterval in a virtual section is ignored unless fork = yes (as ldirectord does)",
      );
  }
  const optMs = (l: Line | undefined): number | undefined => (l ? seconds(l, 0) : undefined);
  // checktimeout and negotiatetimeout default to each other, the virtual's before the global's
  // (ldirectord's ld_setup); what stays unset gets 5 s and 30 s in ldirectordChecker.
  const vCheck = optMs(opt("checktimeout"));
  const vNegotiate = optMs(opt("negotiatetimeout"));
  const checkTimeout = vCheck ?? vNegotiate ?? gCheckTimeout ?? gNegotiate;
  const negotiateTimeout = vNegotiate ?? optMs(opt("connecttimeout")) ?? vCheck ?? gNegotiate ?? gCheckTimeout;
  const failureCount = count(opt("failurecount"), gFailure);
  const quiescent = yesNo(opt("quiescent"), gQuiescent);
  const warned = new Set<string>();
  const checkTypeLine = opt("checktype");
  let checkType = (optText("checktype") ?? "negotiate").toLowerCase();
  if (
    !["connect", "external", "external-perl", "negotiate", "off", "on", "ping"].includes(checkType) &&
    !/^[1-9]\d*$/.test(checkType)
  ) {
    diags.error(
      (checkTypeLine as Line).valuePos,
      `Invalid checktype "${checkType}" (expected connect, negotiate, ping, external, external-perl, on, off or a number)`,
    );
    checkType = "negotiate"; // keep checking the rest of the section
  }
  const serviceLine = opt("service");
  let service = (optText("service") ?? DEFAULT_SERVICE[vport] ?? "none").toLowerCase();
  if (serviceLine && !SERVICES.has(service)) {
    diags.error(serviceLine.valuePos, `Invalid service "${service}" (expected one of ${[...SERVICES].join(" ")})`);
    service = "none";
  }
  let checkPort: number | undefined;
  const cpLine = opt("checkport");
  if (cpLine) {
    const p = parseUint(unquote(cpLine.value), 1, MAX_PORT);
    if (p === undefined) diags.error(cpLine.valuePos, `Invalid checkport "${cpLine.value}" (expected 1..65535)`);
    else checkPort = p;
  }
  const request = optText("request");
  const receive = optText("receive");
  const virtualhost = optText("virtualhost");
  const httpMethod = optText("httpmethod");
  const checkCommand = optText("checkcommand");

  const vipText = key.kind === "fwmark" ? String(key.fwmark) : key.addr;
  const checkerFor = (
    rip: string,
    rport: number,
    req: string | undefined,
    recv: string | undefined,
    pos: SourcePos,
  ) => {
    if (recv !== undefined && recv !== "" && checkType !== "external" && checkType !== "external-perl") {
      try {
        new RegExp(recv);
      } catch {
        diags.error(pos, `Invalid receive "${recv}" (not a regular expression tvs can run)`);
      }
    }
    const settings: LdirectordCheckSettings = {
      checktype: checkType,
      service,
      protocol,
      virtualAddress: vipText,
      virtualPort: vport,
      realAddress: rip,
      realPort: rport,
      intervalMs: checkInterval,
      failurecount: failureCount,
    };
    if (req !== undefined) settings.request = req;
    if (recv !== undefined) settings.receive = recv;
    if (virtualhost !== undefined) settings.virtualhost = virtualhost;
    if (checkPort !== undefined) settings.checkport = checkPort;
    if (checkTimeout !== undefined) settings.checkTimeoutMs = checkTimeout;
    if (negotiateTimeout !== undefined) settings.negotiateTimeoutMs = negotiateTimeout;
    if (checkCommand !== undefined) settings.checkcommand = checkCommand;
    if (httpMethod !== undefined) settings.httpmethod = httpMethod;
    const { spec, warnings } = ldirectordChecker(settings);
    for (const w of warnings) {
      if (warned.has(w)) continue;
      warned.add(w);
      diags.warning(pos, w);
    }
    return [spec];
  };

  return { checkInterval, quiescent, checkType, request, receive, virtualhost, checkerFor };
}

/** The `real=` lines: destinations (ranges expanded) and their health settings. */
function readReals(
  sec: Section,
  virtual: Virtual,
  checks: SectionChecks,
  ctx: SectionContext,
): { dests: DestSpec[]; rsHealth: RealServerHealth[] } {
  const { diags, val } = ctx;
  const { key, vport, family, vtext } = virtual;
  const { checkerFor, request, receive, quiescent, checkType } = checks;
  const v = sec.line;
  const dests: DestSpec[] = [];
  const rsHealth: RealServerHealth[] = [];
  if (sec.reals.length === 0) diags.warning(v.keyPos, `virtual ${vtext} has no real servers`);
  for (const rl of sec.reals) {
    const words = splitWords(rl.value);
    const w0 = words[0];
    if (!w0) {
      diags.error(rl.valuePos, "Missing real server address");
      continue;
    }
    const hp = splitHostPort(w0.text);
    const [fromText, toText] = hp.host.split("->");
    const from = parseIp(fromText ?? "");
    if (from === undefined) {
      diags.error(
        rl.valuePos,
        `Invalid real server address "${fromText}" (host names are not resolved; use an IP address)`,
      );
      continue;
    }
    let addrs = [from];
    if (toText !== undefined) {
      const to = parseIp(toText);
      const a = from.split(".").map(Number);
      const b = to?.split(".").map(Number);
      if (
        to === undefined ||
        from.includes(":") ||
        !b ||
        a.slice(0, 3).join(".") !== b.slice(0, 3).join(".") ||
        (b[3] as number) < (a[3] as number)
      ) {
        diags.error(rl.valuePos, `Invalid real server range "${hp.host}" (expected A.B.C.D->A.B.C.E with E >= D)`);
        continue;
      }
      addrs = [];
      for (let i = a[3] as number; i <= (b[3] as number); i++) addrs.push(`${a[0]}.${a[1]}.${a[2]}.${i}`);
    }
    let rport: number | undefined;
    if (hp.port !== undefined) {
      rport = val.port(hp.port, at(rl.valuePos, w0.text.length - hp.port.length));
      if (rport === undefined) continue;
    }
    const fw = words[1];
    const fwd = fw ? fwdOf(fw.text.toLowerCase()) : undefined;
    if (!fw || fwd === undefined) {
      diags.error(
        fw ? at(rl.valuePos, fw.offset) : rl.valuePos,
        `Invalid forwarding method "${fw?.text ?? ""}" for real (expected gate, masq or ipip)`,
      );
      continue;
    }
    let weight = 1;
    let k = 2;
    const ww = words[2];
    if (ww && !ww.quoted) {
      const n = parseUint(ww.text, 0, 65535);
      if (n === undefined) {
        diags.error(at(rl.valuePos, ww.offset), `Invalid weight "${ww.text}" (expected 0..65535)`);
        continue;
      }
      weight = n;
      k = 3;
    }
    const req = words[k]?.quoted ? words[k]?.text : undefined;
    const recv = words[k + 1]?.quoted ? words[k + 1]?.text : undefined;
    const extra = words[k + (req !== undefined ? 1 : 0) + (recv !== undefined ? 1 : 0)];
    if (extra) diags.warning(at(rl.valuePos, extra.offset), `Extra value "${extra.text}" on real - ignored`);
    for (const addr of addrs) {
      const rf = ipFamily(addr);
      if (fwd !== "tunnel" && rf !== family) {
        diags.error(rl.valuePos, `real ${addr} is IPv${rf} but the virtual service is IPv${family}`);
        continue;
      }
      let port = rport ?? (key.kind === "fwmark" ? 0 : vport);
      if (key.kind === "vip" && fwd !== "masq" && fwd !== "fullnat" && port !== vport) {
        diags.warning(
          rl.valuePos,
          `Port ${port} of real ${addr} differs from the virtual port ${vport}, which ${fw.text} forwarding keeps - using ${vport}`,
        );
        port = vport;
      }
      if (dests.some((d) => d.addr === addr && d.port === port)) {
        diags.warning(rl.keyPos, `real ${addr}:${port} is listed twice - second ignored`);
        continue;
      }
      dests.push(destSpec(addr, port, { fwd, weight }));
      const h: RealServerHealth = {
        addr,
        port,
        weight,
        checkers: checkerFor(addr, port, req ?? request, recv ?? receive, rl.keyPos),
        inhibitOnFailure: quiescent,
        alpha: checkType === "off",
        origin: rl.keyPos,
      };
      rsHealth.push(h);
    }
  }

  return { dests, rsHealth };
}

/** `fallback` (the sorry server) and `fallbackcommand` (run on quorum loss and recovery). */
function readFallback(sec: Section, virtual: Virtual, h: ServiceHealth, quiescent: boolean, ctx: SectionContext): void {
  const { diags, val, globals } = ctx;
  const { key, vport } = virtual;
  const { opt, optText } = sectionOptions(sec);
  const fbLine = opt("fallback") ?? globals.get("fallback");
  if (fbLine) {
    const words = splitWords(fbLine.value);
    const hp = splitHostPort(words[0]?.text ?? "");
    const addr = parseIp(hp.host);
    const fwd = words[1] ? fwdOf(words[1].text.toLowerCase()) : "droute";
    const p = hp.port !== undefined ? val.port(hp.port, fbLine.valuePos) : key.kind === "fwmark" ? 0 : vport;
    if (addr === undefined) diags.error(fbLine.valuePos, `Invalid fallback address "${hp.host}"`);
    else if (fwd === undefined)
      diags.error(
        fbLine.valuePos,
        `Invalid fallback forwarding method "${words[1]?.text}" (expected gate, masq or ipip)`,
      );
    else if (p !== undefined) {
      const port = fwd === "masq" || key.kind === "fwmark" ? p : vport;
      h.sorryServer = { dest: destSpec(addr, port, { fwd, tun: { ...DEFAULT_TUN } }), inhibit: quiescent };
    }
  }
  const fbc =
    optText("fallbackcommand") ??
    (globals.get("fallbackcommand") ? unquote((globals.get("fallbackcommand") as Line).value) : undefined);
  if (fbc !== undefined) {
    const script: NotifyScript = { command: fbc };
    h.quorumDown = { command: `${script.command} start` };
    h.quorumUp = { command: `${script.command} stop` };
  }
}
