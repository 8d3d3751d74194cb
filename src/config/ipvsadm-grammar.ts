// The ipvsadm 1.31 command-line grammar: argv → one parsed command, with ipvsadm's own checks in
// ipvsadm's order and its exact error messages and exit codes. Shared by tvsadm (cli, which may
// import config) and the -S rules reader (config/ipvsadm-rules.ts, for tvsadm -R and tvsd --rules),
// so both accept exactly the same lines.
//
// How ipvsadm reads argv (popt): options and non-options may interleave; non-options are kept as
// leftovers (--set reads its three timeouts from them, anything else is "unexpected argument");
// short options cluster (-Ln), a short option's argument may be glued (-t1.2.3.4:80) or the next
// word; long options take "--opt value" or "--opt=value"; -p/--persistent takes an optional value
// only when the next word does not start with '-'. The FIRST option must be a command; a command
// later in argv is an "invalid option". After parsing, ipvsadm checks the command × option matrix
// (commands_v_options), then per-command rules (port 0 needs -p, -o only for UDP, address families,
// tunnel options by tunnel type), then list option conflicts.
//
// Name resolution (host names, /etc/services names) is injected as a NameResolver, so config stays
// free of I/O and tests are deterministic.

import { canonicalIp, formatIpv4, formatIpv6Groups, MAX_PORT, parseIpv4, parseIpv6Groups } from "../core/addr.ts";
import type { DestSpec, FwdMethod, TunType } from "../core/dest.ts";
import type { SingleRequest, SyncDaemonSpec, Timeouts } from "../core/request.ts";
import { schedFlagBit, schedFlagNames } from "../core/sched/flags.ts";
import type { Protocol } from "../core/sched/types.ts";
import { MAX_FWMARK, MAX_PERSISTENCE_TIMEOUT, type ServiceKey, type ServiceOptions } from "../core/service.ts";

/** Host and service names, as ipvsadm resolves them with gethostbyname and getservbyname. */
export interface NameResolver {
  /** IPv4 address of a host name (gethostbyname), or undefined. */
  hostToIpv4(name: string): Promise<string | undefined>;
  /** Port of a service name for a protocol (getservbyname), or undefined. */
  serviceToPort(name: string, protocol: Protocol): number | undefined;
}

/** A resolver that knows no names: only numeric addresses and ports parse. */
export const NUMERIC_ONLY: NameResolver = {
  hostToIpv4: async () => undefined,
  serviceToPort: () => undefined,
};

/** An ipvsadm argument error: the message ipvsadm prints on stderr and its exit status. */
export class IpvsadmArgError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode: number) {
    super(message);
    this.name = "IpvsadmArgError";
    this.exitCode = exitCode;
  }
}

/** Command names as ipvsadm's error messages spell them (cmdnames[]), in table order. */
export const COMMAND_NAMES = [
  "add-service",
  "edit-service",
  "delete-service",
  "flush",
  "list",
  "add-server",
  "delete-server",
  "edit-server",
  "set",
  "start-daemon",
  "stop-daemon",
  "restore",
  "save",
  "zero",
] as const;
export type IpvsadmCommand = (typeof COMMAND_NAMES)[number];

/** Option names as ipvsadm's error messages spell them (optnames[]), in table order. */
export const OPTION_NAMES = [
  "numeric",
  "connection",
  "service-address",
  "scheduler",
  "persistent",
  "netmask",
  "real-server",
  "forwarding-method",
  "weight",
  "u-threshold",
  "l-threshold",
  "mcast-interface",
  "timeout",
  "daemon",
  "stats",
  "rate",
  "thresholds",
  "persistent-conn",
  "nosort",
  "syncid",
  "exact",
  "ops",
  "pe",
  "sched-flags",
  "mcast-group",
  "mcast-port",
  "mcast-ttl",
  "sync-maxlen",
  "tun-info",
  "tun-type",
  "tun-port",
  "tun-nocsum",
  "tun-csum",
  "tun-remcsum",
] as const;
export type IpvsadmOption = (typeof OPTION_NAMES)[number];

/**
 * Which options each command takes (ipvsadm's commands_v_options): one string per command, one
 * character per option in OPTION_NAMES order. '+' compulsory, 'x' illegal, '1' at most one of the
 * '1's, ' ' optional.
 */
const MATRIX: Record<IpvsadmCommand, string> = {
  //                 n c s s p M r f w x y m t d s r t p s s e o p b g p t s t t t n c r
  "add-service": "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
  "edit-service": "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
  "delete-service": "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  flush: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  list: " 11xxxxxxxxx11       xxxxxxx xxxxx",
  "add-server": "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
  "delete-server": "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
  "edit-server": "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
  set: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  "start-daemon": "xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
  "stop-daemon": "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
  restore: "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  save: " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
  zero: "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
};

const TUN_TYPES: readonly TunType[] = ["ipip", "gue", "gre"];
/** tunnel_types_v_options: per tunnel type, the rule for tun-port, tun-nocsum, tun-csum, tun-remcsum. */
const TUN_MATRIX: Record<TunType, string> = { ipip: "xxxx", gue: "+111", gre: "x11x" };
const TUN_OPTS: readonly IpvsadmOption[] = ["tun-port", "tun-nocsum", "tun-csum", "tun-remcsum"];

/** ipvsadm's MAX_TIMEOUT: 31 days (core's MAX_PERSISTENCE_TIMEOUT). */
export const MAX_TIMEOUT = MAX_PERSISTENCE_TIMEOUT;
/** libipvs's IPVS_SVC_PERSISTENT_TIMEOUT: what -p without a value means. */
export const IPVSADM_PERSISTENT_TIMEOUT = 360;
export const DEFAULT_SCHEDULER = "wlc";
export const DEFAULT_MCAST_IFN = "eth0";

/** The list/save output switches (ipvsadm's FMT_* flags). */
export interface ListFormat {
  numeric: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
}

export interface ParsedCommand {
  command: IpvsadmCommand | "help" | "version";
  options: ReadonlySet<IpvsadmOption>;
  format: ListFormat;
  /** The virtual service (-t/-u/--sctp-service/-f), when given. */
  key: ServiceKey | undefined;
  serviceOptions: ServiceOptions;
  /** The real server (-r and its options), when given. */
  dest: DestSpec | undefined;
  timeouts: Timeouts;
  daemon: SyncDaemonSpec;
}

// ---------------------------------------------------------------------------------------------
// popt-style tokenizer

type ArgKind = "none" | "required" | "optional";
interface OptDef {
  long: string;
  short?: string;
  arg: ArgKind;
  tag: string;
}

const TABLE: readonly OptDef[] = [
  { long: "add-service", short: "A", arg: "none", tag: "A" },
  { long: "edit-service", short: "E", arg: "none", tag: "E" },
  { long: "delete-service", short: "D", arg: "none", tag: "D" },
  { long: "clear", short: "C", arg: "none", tag: "C" },
  { long: "list", short: "L", arg: "none", tag: "L" },
  { long: "list", short: "l", arg: "none", tag: "L" },
  { long: "zero", short: "Z", arg: "none", tag: "Z" },
  { long: "add-server", short: "a", arg: "none", tag: "a" },
  { long: "edit-server", short: "e", arg: "none", tag: "e" },
  { long: "delete-server", short: "d", arg: "none", tag: "d" },
  { long: "set", arg: "none", tag: "set" },
  { long: "help", short: "h", arg: "none", tag: "h" },
  { long: "version", short: "v", arg: "none", tag: "v" },
  { long: "restore", short: "R", arg: "none", tag: "R" },
  { long: "save", short: "S", arg: "none", tag: "S" },
  { long: "start-daemon", arg: "required", tag: "start-daemon" },
  { long: "stop-daemon", arg: "required", tag: "stop-daemon" },
  { long: "tcp-service", short: "t", arg: "required", tag: "t" },
  { long: "udp-service", short: "u", arg: "required", tag: "u" },
  { long: "sctp-service", arg: "required", tag: "sctp" },
  { long: "fwmark-service", short: "f", arg: "required", tag: "f" },
  { long: "scheduler", short: "s", arg: "required", tag: "s" },
  { long: "persistent", short: "p", arg: "optional", tag: "p" },
  { long: "netmask", short: "M", arg: "required", tag: "M" },
  { long: "real-server", short: "r", arg: "required", tag: "r" },
  { long: "masquerading", short: "m", arg: "none", tag: "m" },
  { long: "ipip", short: "i", arg: "none", tag: "i" },
  { long: "gatewaying", short: "g", arg: "none", tag: "g" },
  // Extension: FULLNAT forwarding (not in ipvsadm; tvs's data planes support it).
  { long: "fullnat", arg: "none", tag: "fullnat" },
  { long: "weight", short: "w", arg: "required", tag: "w" },
  { long: "u-threshold", short: "x", arg: "required", tag: "x" },
  { long: "l-threshold", short: "y", arg: "required", tag: "y" },
  { long: "numeric", short: "n", arg: "none", tag: "n" },
  { long: "connection", short: "c", arg: "none", tag: "c" },
  { long: "mcast-interface", arg: "required", tag: "mcast-interface" },
  { long: "syncid", arg: "required", tag: "syncid" },
  { long: "timeout", arg: "none", tag: "timeout" },
  { long: "daemon", arg: "none", tag: "daemon" },
  { long: "stats", arg: "none", tag: "stats" },
  { long: "rate", arg: "none", tag: "rate" },
  { long: "thresholds", arg: "none", tag: "thresholds" },
  { long: "persistent-conn", arg: "none", tag: "persistent-conn" },
  { long: "nosort", arg: "none", tag: "nosort" },
  { long: "sort", arg: "none", tag: "sort" },
  { long: "exact", short: "X", arg: "none", tag: "exact" },
  { long: "ipv6", short: "6", arg: "none", tag: "6" },
  { long: "ops", short: "o", arg: "none", tag: "o" },
  { long: "pe", arg: "required", tag: "pe" },
  { long: "sched-flags", short: "b", arg: "required", tag: "b" },
  { long: "mcast-group", arg: "required", tag: "mcast-group" },
  { long: "mcast-port", arg: "required", tag: "mcast-port" },
  { long: "mcast-ttl", arg: "required", tag: "mcast-ttl" },
  { long: "sync-maxlen", arg: "required", tag: "sync-maxlen" },
  { long: "tun-info", arg: "none", tag: "tun-info" },
  { long: "tun-type", arg: "required", tag: "tun-type" },
  { long: "tun-port", arg: "required", tag: "tun-port" },
  { long: "tun-nocsum", arg: "none", tag: "tun-nocsum" },
  { long: "tun-csum", arg: "none", tag: "tun-csum" },
  { long: "tun-remcsum", arg: "none", tag: "tun-remcsum" },
];

type Token =
  | { kind: "opt"; tag: string; arg: string | undefined }
  | { kind: "error"; reason: string }
  | { kind: "end" };

/** Walks argv the way popt does; `bad` is what poptBadOption would name (the last argv word used). */
class OptionWalker {
  readonly #argv: readonly string[];
  #next = 0;
  #cluster = "";
  #rest = false;
  readonly leftovers: string[] = [];
  bad = "";

  constructor(argv: readonly string[]) {
    this.#argv = argv;
  }

  #take(): string {
    const w = this.#argv[this.#next++] as string;
    this.bad = w;
    return w;
  }

  next(): Token {
    if (this.#cluster === "") {
      for (;;) {
        if (this.#next >= this.#argv.length) return { kind: "end" };
        const w = this.#take();
        if (this.#rest || w === "-" || !w.startsWith("-")) {
          this.leftovers.push(w);
          continue;
        }
        if (w === "--") {
          this.#rest = true;
          continue;
        }
        if (w.startsWith("--")) return this.#long(w);
        this.#cluster = w.slice(1);
        break;
      }
    }
    const c = this.#cluster[0] as string;
    // As popt: what follows the option letter, less one leading '=', is the rest of the cluster.
    this.#cluster = this.#cluster.slice(1);
    if (this.#cluster.startsWith("=")) this.#cluster = this.#cluster.slice(1);
    const def = TABLE.find((d) => d.short === c);
    if (!def) {
      this.#cluster = "";
      return { kind: "error", reason: "unknown option" };
    }
    if (def.arg === "none") return { kind: "opt", tag: def.tag, arg: undefined };
    if (this.#cluster !== "") {
      const glued = this.#cluster;
      this.#cluster = "";
      return { kind: "opt", tag: def.tag, arg: glued };
    }
    return this.#argFromNext(def);
  }

  #long(w: string): Token {
    const eq = w.indexOf("=");
    const name = eq === -1 ? w.slice(2) : w.slice(2, eq);
    const def = TABLE.find((d) => d.long === name);
    if (!def) return { kind: "error", reason: "unknown option" };
    if (eq !== -1) {
      // popt ignores "=value" on an option that takes none.
      return { kind: "opt", tag: def.tag, arg: def.arg === "none" ? undefined : w.slice(eq + 1) };
    }
    if (def.arg === "none") return { kind: "opt", tag: def.tag, arg: undefined };
    return this.#argFromNext(def);
  }

  #argFromNext(def: OptDef): Token {
    if (def.arg === "optional") {
      const nxt = this.#argv[this.#next];
      if (this.#rest || nxt === undefined || nxt.startsWith("-")) return { kind: "opt", tag: def.tag, arg: undefined };
      return { kind: "opt", tag: def.tag, arg: this.#take() };
    }
    if (this.#next >= this.#argv.length) return { kind: "error", reason: "missing argument" };
    return { kind: "opt", tag: def.tag, arg: this.#take() };
  }

  /** After the last option: everything not consumed is a leftover too. */
  drain(): void {
    while (this.#next < this.#argv.length) this.leftovers.push(this.#argv[this.#next++] as string);
  }
}

// ---------------------------------------------------------------------------------------------
// C library look-alikes

/** strtol(s, 10) that must consume the whole string, within [min, max]; -1 otherwise. */
export function stringToNumber(s: string, min: number, max: number): number {
  if (!/^[ \t\n\v\f\r]*[+-]?\d+$/.test(s)) return -1;
  const n = Number(s.trim());
  if (!Number.isSafeInteger(n) || n < min || n > max) return -1;
  return n;
}

function strtoulPart(s: string): number | undefined {
  if (/^0[xX][0-9a-fA-F]+$/.test(s)) return Number.parseInt(s.slice(2), 16);
  if (/^0[0-7]*$/.test(s)) return s === "0" ? 0 : Number.parseInt(s, 8);
  if (/^[1-9]\d*$/.test(s)) return Number(s);
  return undefined;
}

/** glibc inet_aton: a, a.b, a.b.c or a.b.c.d, each part decimal, octal (0..) or hex (0x..). */
export function inetAton(text: string): string | undefined {
  const parts = text.split(".");
  if (parts.length < 1 || parts.length > 4) return undefined;
  const nums: number[] = [];
  for (const p of parts) {
    const n = strtoulPart(p);
    if (n === undefined) return undefined;
    nums.push(n);
  }
  let v = 0;
  const last = nums[nums.length - 1] as number;
  for (let i = 0; i < nums.length - 1; i++) {
    if ((nums[i] as number) > 255) return undefined;
    v = v * 256 + (nums[i] as number);
  }
  const restBytes = 4 - (nums.length - 1);
  if (last >= 2 ** (8 * restBytes)) return undefined;
  v = v * 2 ** (8 * restBytes) + last;
  return formatIpv4(v >>> 0);
}

/** inet_pton(AF_INET6): canonical text, or undefined. */
function inet6(text: string): string | undefined {
  if (!text.includes(":")) return undefined;
  const g = parseIpv6Groups(text);
  return g ? formatIpv6Groups(g) : undefined;
}

function maskToPrefix(mask: string): number | undefined {
  const v = parseIpv4(mask);
  if (v === undefined) return undefined;
  let n = 0;
  while (n < 32 && v & (0x80000000 >>> n)) n++;
  const rebuilt = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return rebuilt === v ? n : undefined;
}

// ---------------------------------------------------------------------------------------------
// The parser

interface SvcState {
  af: 0 | 4 | 6;
  protocol: Protocol | undefined;
  addr: string;
  port: number;
  fwmark: number;
  /** IPv4: prefix length from -M (default 32); IPv6: prefix length. */
  netmask: number;
  persistent: boolean;
  timeout: number;
  ops: boolean;
  sched: string;
  pe: string;
}

interface AddrPort {
  af: 4 | 6;
  addr: string;
  port: number | undefined;
}

/** A -M mask that is not a run of ones (tvs keeps prefix lengths only). */
const NONCONTIGUOUS = -1;

const fail = (msg: string): never => {
  throw new IpvsadmArgError(msg, 2);
};

async function parseService(
  buf: string,
  protocol: Protocol | undefined,
  resolver: NameResolver,
): Promise<AddrPort | undefined> {
  if (/^\d*$/.test(buf)) return undefined;
  let text = buf;
  let portText: string | undefined;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close === -1) return undefined;
    if (text[close + 1] !== ":") return undefined;
    portText = text.slice(close + 2);
    text = text.slice(1, close);
  }
  let af: 4 | 6;
  let addr: string;
  const v6 = inet6(text);
  if (v6 !== undefined) {
    af = 6;
    addr = v6;
  } else {
    // As ipvsadm: the port is whatever follows the last ':' of what is left (so "[1.2.3.4]:80" loses it).
    const colon = text.lastIndexOf(":");
    portText = colon === -1 ? undefined : text.slice(colon + 1);
    if (colon !== -1) text = text.slice(0, colon);
    const v4 = inetAton(text) ?? (await resolver.hostToIpv4(text));
    if (v4 === undefined) return undefined;
    af = 4;
    addr = v4;
  }
  if (portText === undefined) return { af, addr, port: undefined };
  let port = stringToNumber(portText, 0, MAX_PORT);
  if (port === -1) port = (protocol ? resolver.serviceToPort(portText, protocol) : undefined) ?? -1;
  if (port === -1) return undefined;
  return { af, addr, port };
}

function parseTimeout(buf: string | undefined, min: number, max: number): number {
  if (buf === undefined) return IPVSADM_PERSISTENT_TIMEOUT;
  const n = stringToNumber(buf, min, max);
  if (n === -1) fail(`invalid timeout value \`${buf}' specified`);
  return n;
}

function parseFwmark(buf: string): number {
  const ok = /^[ \t\n\v\f\r]*[+-]?\d+$/.test(buf);
  const n = ok ? Number(buf.trim()) : Number.NaN;
  if (!ok || !Number.isSafeInteger(n) || n <= 0 || n > MAX_FWMARK) fail(`invalid fwmark value \`${buf}' specified`);
  return n;
}

/**
 * Scheduler flags (-b) as names canonical for the scheduler, in ipvsadm's bit order. A name a
 * scheduler declares (core/sched/flags.ts: sh-port on sh) is refused with another scheduler.
 */
function parseSchedFlags(sched: string, arg: string): string[] {
  let bits = 0;
  for (const flag of arg.split(",").filter((f) => f !== "")) {
    const known = schedFlagBit(flag);
    if (!known) return fail(`invalid scheduler flag \`${flag}'`);
    if (known.owner !== undefined && sched !== known.owner) fail(`incompatible scheduler flag \`${flag}'`);
    bits |= known.bit;
  }
  return schedFlagNames(sched, bits);
}

const TAG_COMMAND: Record<string, IpvsadmCommand | "help" | "version"> = {
  A: "add-service",
  E: "edit-service",
  D: "delete-service",
  C: "flush",
  L: "list",
  Z: "zero",
  a: "add-server",
  e: "edit-server",
  d: "delete-server",
  set: "set",
  R: "restore",
  S: "save",
  "start-daemon": "start-daemon",
  "stop-daemon": "stop-daemon",
  h: "help",
  v: "version",
};

export interface ParseArgvOptions {
  /** argv[0] as ipvsadm names itself in "Try `%s -h'..." */
  program?: string;
  resolver?: NameResolver;
}

/** The "Try ... for more information." line (exit 255) ipvsadm prints when it finds no command. */
export function tryHelp(program: string): string {
  return `Try \`${program} -h' or '${program} --help' for more information.`;
}

/** Everything the options of one command line set, filled in as the options are read. */
interface ArgvState {
  options: Set<IpvsadmOption>;
  format: ListFormat;
  svc: SvcState;
  dest: { af: 4 | 6; addr: string; port: number } | undefined;
  server: { fwd: FwdMethod; weight: number; uThreshold: number; lThreshold: number; tunType: TunType; tunPort: number };
  schedFlagsArg: string;
  daemon: SyncDaemonSpec;
  timeouts: Timeouts;
}

type OptToken = { tag: string; arg: string | undefined };

function initialArgvState(): ArgvState {
  return {
    options: new Set<IpvsadmOption>(),
    format: {
      numeric: false,
      stats: false,
      rate: false,
      thresholds: false,
      persistentConn: false,
      nosort: false,
      exact: false,
      tunInfo: false,
    },
    svc: {
      af: 0,
      protocol: undefined,
      addr: "",
      port: 0,
      fwmark: 0,
      netmask: 32,
      persistent: false,
      timeout: 0,
      ops: false,
      sched: "",
      pe: "",
    },
    dest: undefined,
    server: { fwd: "droute", weight: 1, uThreshold: 0, lThreshold: 0, tunType: "ipip", tunPort: 0 },
    schedFlagsArg: "",
    daemon: { state: "master", mcastIfn: "", syncId: 0, syncMaxLen: 0, mcastGroup: "", mcastPort: 0, mcastTtl: 0 },
    timeouts: { tcp: 0, tcpfin: 0, udp: 0 },
  };
}

/** Record option `o` once; ipvsadm refuses it twice. */
function setOption(st: ArgvState, o: IpvsadmOption): void {
  if (st.options.has(o)) fail(`multiple '${o}' options specified`);
  st.options.add(o);
}

/** Parse one ipvsadm command line (without argv[0]); throws IpvsadmArgError. */
export async function parseIpvsadmArgv(argv: readonly string[], opts: ParseArgvOptions = {}): Promise<ParsedCommand> {
  const program = opts.program ?? "ipvsadm";
  const resolver = opts.resolver ?? NUMERIC_ONLY;
  const walker = new OptionWalker(argv);
  const st = initialArgvState();
  const command = readCommand(walker, st, program);
  if (command === "help" || command === "version") {
    const { options, format, timeouts, daemon } = st;
    return {
      command,
      options,
      format,
      key: undefined,
      serviceOptions: defaultsFor(4),
      dest: undefined,
      timeouts,
      daemon,
    };
  }
  await readOptions(walker, st, resolver);
  readTimeoutArguments(command, walker, st);
  const schedFlags =
    st.schedFlagsArg === "" ? [] : parseSchedFlags(st.svc.sched || DEFAULT_SCHEDULER, st.schedFlagsArg);
  checkCommandOptions(command, st);
  return parsedCommand(command, st, schedFlags);
}

/** The first option is the command (-A, -L, --start-daemon master, ...); anything else is exit 255. */
function readCommand(walker: OptionWalker, st: ArgvState, program: string): IpvsadmCommand | "help" | "version" {
  const first = walker.next();
  if (first.kind !== "opt") throw new IpvsadmArgError(tryHelp(program), 255);
  const command = TAG_COMMAND[first.tag];
  if (command === undefined) throw new IpvsadmArgError(tryHelp(program), 255);
  if (command === "start-daemon" || command === "stop-daemon") {
    if (first.arg === "master" || first.arg === "backup") st.daemon.state = first.arg;
    else if (command === "start-daemon") fail("illegal start-daemon parameter specified");
    else fail("illegal start_daemon specified");
  }
  return command;
}

/** Every option after the command, in order, each to the reader of its group. */
async function readOptions(walker: OptionWalker, st: ArgvState, resolver: NameResolver): Promise<void> {
  for (;;) {
    const tok = walker.next();
    if (tok.kind === "end") break;
    if (tok.kind === "error") throw new IpvsadmArgError(`${walker.bad}: ${tok.reason}`, 255);
    const handled =
      (await readServiceOption(tok, st, resolver)) ||
      (await readServerOption(tok, st, resolver)) ||
      readDaemonOption(tok, st) ||
      readListOption(tok, st);
    if (!handled) fail(`invalid option \`${walker.bad}'`);
  }
  walker.drain();
}

/** The virtual service and its settings: -t/-u/--sctp-service/-f, -s, -p, -M, -6, -o, --pe, -b. */
async function readServiceOption(tok: OptToken, st: ArgvState, resolver: NameResolver): Promise<boolean> {
  const svc = st.svc;
  const arg = tok.arg as string;
  switch (tok.tag) {
    case "t":
    case "u":
    case "sctp": {
      setOption(st, "service-address");
      svc.protocol = tok.tag === "t" ? "tcp" : tok.tag === "u" ? "udp" : "sctp";
      const r = await parseService(arg, svc.protocol, resolver);
      if (!r) fail("illegal virtual server address[:port] specified");
      else {
        svc.af = r.af;
        svc.addr = r.addr;
        if (r.af === 6) svc.netmask = 128;
        if (r.port !== undefined) svc.port = r.port;
      }
      return true;
    }
    case "f":
      setOption(st, "service-address");
      svc.af = 4;
      svc.protocol = "tcp";
      svc.fwmark = parseFwmark(arg);
      return true;
    case "s":
      setOption(st, "scheduler");
      svc.sched = arg.slice(0, 15);
      return true;
    case "p":
      setOption(st, "persistent");
      svc.persistent = true;
      svc.timeout = parseTimeout(tok.arg, 1, MAX_TIMEOUT);
      return true;
    case "M":
      setOption(st, "netmask");
      svc.netmask = await parseNetmaskOption(arg, svc.af, resolver);
      return true;
    case "6":
      if (svc.fwmark) {
        svc.af = 6;
        svc.netmask = 128;
      } else fail("-6 used before -f\n");
      return true;
    case "o":
      setOption(st, "ops");
      svc.ops = true;
      return true;
    case "pe":
      setOption(st, "pe");
      svc.pe = arg.slice(0, 16);
      return true;
    case "b":
      setOption(st, "sched-flags");
      st.schedFlagsArg = arg.slice(0, 127);
      return true;
    default:
      return false;
  }
}

/** -M: a dotted (or resolvable) IPv4 mask as a prefix length, or an IPv6 prefix length. */
async function parseNetmaskOption(arg: string, af: SvcState["af"], resolver: NameResolver): Promise<number> {
  if (af === 6) {
    const n = Number.parseInt(arg, 10);
    if (!(n >= 1 && n <= 128)) fail("illegal ipv6 netmask specified");
    return n;
  }
  const m = inetAton(arg) ?? (await resolver.hostToIpv4(arg));
  if (m === undefined) return fail("illegal virtual server persistent mask specified");
  // A mask with holes parses in ipvsadm; core keeps prefix lengths, so it is refused later if the
  // service ends up IPv4 (an IPv6 service address resets the mask to 128 anyway).
  return maskToPrefix(m) ?? NONCONTIGUOUS;
}

/** The real server and how it is reached: -r, -g/-i/-m/--fullnat, -w, -x, -y, --tun-*. */
async function readServerOption(tok: OptToken, st: ArgvState, resolver: NameResolver): Promise<boolean> {
  const server = st.server;
  const arg = tok.arg as string;
  switch (tok.tag) {
    case "r": {
      setOption(st, "real-server");
      const r = await parseService(arg, st.svc.protocol, resolver);
      if (!r) fail("illegal real server address[:port] specified");
      else st.dest = { af: r.af, addr: r.addr, port: r.port ?? st.svc.port };
      return true;
    }
    case "i":
    case "g":
    case "m":
    case "fullnat":
      setOption(st, "forwarding-method");
      server.fwd = FWD_OF_TAG[tok.tag] as FwdMethod;
      return true;
    case "w":
      setOption(st, "weight");
      // Debian's ipvsadm 1.31 (what the kernel oracle runs) takes weights up to INT_MAX; upstream 65535.
      server.weight = stringToNumber(arg, 0, 0x7fffffff);
      if (server.weight === -1) fail("illegal weight specified");
      return true;
    case "x":
      setOption(st, "u-threshold");
      server.uThreshold = stringToNumber(arg, 0, 0x7fffffff);
      if (server.uThreshold === -1) fail("illegal u_threshold specified");
      return true;
    case "y":
      setOption(st, "l-threshold");
      server.lThreshold = stringToNumber(arg, 0, 0x7fffffff);
      if (server.lThreshold === -1) fail("illegal l_threshold specified");
      return true;
    case "tun-type": {
      setOption(st, "tun-type");
      const t = TUN_TYPES.find((x) => x === arg);
      if (t === undefined) fail("illegal tunnel type specified");
      else server.tunType = t;
      return true;
    }
    case "tun-port":
      setOption(st, "tun-port");
      server.tunPort = stringToNumber(arg, 1, MAX_PORT);
      if (server.tunPort === -1) fail("illegal tunnel port specified");
      return true;
    case "tun-nocsum":
    case "tun-csum":
    case "tun-remcsum":
      setOption(st, tok.tag);
      return true;
    default:
      return false;
  }
}

/** The forwarding method each switch selects. */
const FWD_OF_TAG: Readonly<Record<string, FwdMethod>> = { i: "tunnel", g: "droute", m: "masq", fullnat: "fullnat" };

/** The sync daemon's settings: --mcast-interface, --syncid, --mcast-group/-port/-ttl, --sync-maxlen. */
function readDaemonOption(tok: OptToken, st: ArgvState): boolean {
  const daemon = st.daemon;
  const arg = tok.arg as string;
  switch (tok.tag) {
    case "mcast-interface":
      setOption(st, "mcast-interface");
      daemon.mcastIfn = arg.slice(0, 15);
      return true;
    case "syncid":
      setOption(st, "syncid");
      daemon.syncId = stringToNumber(arg, 0, 255);
      if (daemon.syncId === -1) fail("illegal syncid specified");
      return true;
    case "mcast-group":
      setOption(st, "mcast-group");
      daemon.mcastGroup = parseMcastGroup(arg);
      return true;
    case "mcast-port":
      setOption(st, "mcast-port");
      daemon.mcastPort = stringToNumber(arg, 1, MAX_PORT);
      if (daemon.mcastPort === -1) fail("illegal mcast-port specified");
      return true;
    case "mcast-ttl":
      setOption(st, "mcast-ttl");
      daemon.mcastTtl = stringToNumber(arg, 1, 255);
      if (daemon.mcastTtl === -1) fail("illegal mcast-ttl specified");
      return true;
    case "sync-maxlen":
      setOption(st, "sync-maxlen");
      daemon.syncMaxLen = stringToNumber(arg, 1, 65535 - 20 - 8);
      if (daemon.syncMaxLen === -1) fail("illegal sync-maxlen specified");
      return true;
    default:
      return false;
  }
}

/** --mcast-group: an IPv4 (224/4) or IPv6 (ff00::/8) multicast address. */
function parseMcastGroup(arg: string): string {
  if (arg.includes(":")) {
    const g = inet6(arg);
    if (g === undefined || !g.startsWith("ff")) return fail(`invalid IPv6 mcast-group \`${arg}'`);
    return g;
  }
  const v = parseIpv4(arg);
  if (v === undefined || v >>> 28 !== 0xe) return fail(`invalid IPv4 mcast-group \`${arg}'`);
  return formatIpv4(v);
}

/** What a listing shows and how: -c, -n, --timeout, --daemon, --stats, --rate, ..., --tun-info. */
function readListOption(tok: OptToken, st: ArgvState): boolean {
  const format = st.format;
  switch (tok.tag) {
    case "c":
      setOption(st, "connection");
      return true;
    case "timeout":
    case "daemon":
      setOption(st, tok.tag);
      return true;
    case "sort":
      return true;
    default: {
      const flag = LIST_FLAGS[tok.tag];
      if (flag === undefined) return false;
      setOption(st, flag.option);
      format[flag.field] = true;
      return true;
    }
  }
}

/** The listing switches that set one field of the ListFormat. */
const LIST_FLAGS: Readonly<Record<string, { option: IpvsadmOption; field: keyof ListFormat }>> = {
  n: { option: "numeric", field: "numeric" },
  stats: { option: "stats", field: "stats" },
  rate: { option: "rate", field: "rate" },
  thresholds: { option: "thresholds", field: "thresholds" },
  "persistent-conn": { option: "persistent-conn", field: "persistentConn" },
  nosort: { option: "nosort", field: "nosort" },
  exact: { option: "exact", field: "exact" },
  "tun-info": { option: "tun-info", field: "tunInfo" },
};

/** --set takes its three timeouts as plain arguments; any other leftover argument is an error. */
function readTimeoutArguments(command: IpvsadmCommand, walker: OptionWalker, st: ArgvState): void {
  const leftovers = walker.leftovers;
  if (command === "set") {
    if (leftovers.length < 3) fail("--set option requires 3 timeout values");
    st.timeouts.tcp = parseTimeout(leftovers.shift(), 0, MAX_TIMEOUT);
    st.timeouts.tcpfin = parseTimeout(leftovers.shift(), 0, MAX_TIMEOUT);
    st.timeouts.udp = parseTimeout(leftovers.shift(), 0, MAX_TIMEOUT);
  }
  if (leftovers.length > 0) fail(`unexpected argument ${leftovers[0]}`);
}

/** ipvsadm's checks once every option is in: the option matrix, then each command's own rules. */
function checkCommandOptions(command: IpvsadmCommand, st: ArgvState): void {
  const { options, svc, daemon, dest, server } = st;
  genericOptCheck(command, options);
  if (command === "add-service" || command === "edit-service") {
    if (!svc.fwmark && !svc.port && !svc.persistent) fail("Zero port specified for non-persistent service");
    if (svc.ops && !svc.fwmark && svc.protocol !== "udp")
      fail("One-Packet Scheduling is only for UDP virtual services");
    if (svc.sched === "") svc.sched = DEFAULT_SCHEDULER;
  }
  if (command === "start-daemon" && daemon.mcastIfn === "") daemon.mcastIfn = DEFAULT_MCAST_IFN;
  if ((command === "add-server" || command === "edit-server") && dest) {
    if (!svc.fwmark && (server.fwd === "tunnel" || server.fwd === "droute")) dest.port = svc.port;
    if (dest.af !== svc.af && server.fwd !== "tunnel")
      fail("Different address family is allowed only for tunneling servers");
    const anyTun = TUN_OPTS.some((o) => options.has(o)) || options.has("tun-type");
    if (anyTun && server.fwd !== "tunnel") fail("Tunnel options conflict with forward method");
    tunnelOptCheck(server.tunType, options);
  }
  if (command === "list") {
    const has = (...o: IpvsadmOption[]) => o.some((x) => options.has(x));
    if (
      (has("connection", "timeout", "daemon") && has("stats", "rate", "thresholds")) ||
      (has("timeout", "daemon") && has("persistent-conn"))
    )
      fail("options conflicts in the list command");
  }
  if (svc.netmask === NONCONTIGUOUS) fail("illegal virtual server persistent mask specified");
}

/** The parsed command: the service key, its options and the real server as core's types. */
function parsedCommand(command: IpvsadmCommand, st: ArgvState, schedFlags: string[]): ParsedCommand {
  const { options, format, svc, dest, server, timeouts, daemon } = st;
  const family = svc.af === 6 ? 6 : 4;
  let key: ServiceKey | undefined;
  if (options.has("service-address")) {
    key = svc.fwmark
      ? { kind: "fwmark", fwmark: svc.fwmark, family }
      : { kind: "vip", protocol: svc.protocol ?? "tcp", addr: svc.addr, port: svc.port };
  }
  const serviceOptions: ServiceOptions = {
    scheduler: svc.sched || DEFAULT_SCHEDULER,
    schedFlags,
    persistent: svc.persistent,
    timeout: svc.timeout,
    netmask: family === 6 ? (svc.af === 6 ? svc.netmask : 128) : svc.netmask,
    ops: svc.ops,
    pe: svc.pe,
  };
  const destSpec: DestSpec | undefined = dest && {
    addr: dest.addr,
    port: dest.port,
    fwd: server.fwd,
    weight: server.weight,
    uThreshold: server.uThreshold,
    lThreshold: server.lThreshold,
    tun: {
      type: server.tunType,
      port: server.tunPort,
      nocsum: options.has("tun-nocsum"),
      csum: options.has("tun-csum"),
      remcsum: options.has("tun-remcsum"),
    },
  };
  return { command, options, format, key, serviceOptions, dest: destSpec, timeouts, daemon };
}

function defaultsFor(family: 4 | 6): ServiceOptions {
  return {
    scheduler: DEFAULT_SCHEDULER,
    schedFlags: [],
    persistent: false,
    timeout: 0,
    netmask: family === 6 ? 128 : 32,
    ops: false,
    pe: "",
  };
}

function genericOptCheck(command: IpvsadmCommand, options: ReadonlySet<IpvsadmOption>): void {
  const row = MATRIX[command];
  let last: IpvsadmOption | undefined;
  OPTION_NAMES.forEach((name, j) => {
    const rule = row[j];
    if (!options.has(name)) {
      if (rule === "+") fail(`You need to supply the '${name}' option for the '${command}' command`);
      return;
    }
    if (rule === "x") fail(`Illegal '${name}' option with the '${command}' command`);
    if (rule === "1") {
      if (last === undefined) last = name;
      else fail(`The option '${name}' conflicts with the '${last}' option in the '${command}' command`);
    }
  });
}

function tunnelOptCheck(type: TunType, options: ReadonlySet<IpvsadmOption>): void {
  const row = TUN_MATRIX[type];
  let last: IpvsadmOption | undefined;
  TUN_OPTS.forEach((name, j) => {
    const rule = row[j];
    if (!options.has(name)) {
      if (rule === "+") fail(`You need to supply the '${name}' option for the '${type}' tunnel type`);
      return;
    }
    if (rule === "x") fail(`Illegal '${name}' option with the '${type}' tunnel type`);
    if (rule === "1") {
      if (last === undefined) last = name;
      else fail(`The option '${name}' conflicts with the '${last}' option in the '${type}' tunnel type`);
    }
  });
}

/** The mutating request a parsed command stands for; undefined for list/save/restore/help/version. */
export function toRequest(p: ParsedCommand): SingleRequest | undefined {
  const key = p.key;
  switch (p.command) {
    case "add-service":
      return key && { op: "add-service", key, options: p.serviceOptions };
    case "edit-service":
      return key && { op: "edit-service", key, options: p.serviceOptions };
    case "delete-service":
      return key && { op: "del-service", key };
    case "flush":
      return { op: "flush" };
    case "add-server":
      return key && p.dest && { op: "add-dest", key, dest: p.dest };
    case "edit-server":
      return key && p.dest && { op: "edit-dest", key, dest: p.dest };
    case "delete-server":
      return key && p.dest && { op: "del-dest", key, addr: p.dest.addr, port: p.dest.port };
    case "zero":
      return key ? { op: "zero", key } : { op: "zero" };
    case "set":
      return { op: "set-timeout", timeouts: { ...p.timeouts } };
    case "start-daemon":
      return { op: "start-daemon", daemon: { ...p.daemon } };
    case "stop-daemon":
      return { op: "stop-daemon", state: p.daemon.state };
    default:
      return undefined;
  }
}

/** Canonical address text (for callers comparing parsed addresses). */
export function canonicalAddress(text: string): string | undefined {
  return canonicalIp(text);
}
