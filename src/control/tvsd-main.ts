// `tvsd`: the director daemon's command line. Parses argv, prepares the control socket (refusing
// one a live daemon holds, replacing a stale one), builds the Daemon with the chosen data plane and
// desired-state source (--rules, --config or --demo), serves the control API, and handles signals:
// SIGHUP reloads by reconciling, SIGTERM/SIGINT drain (stop accepting, let open connections finish
// up to --drain-timeout) and exit 0. An uncaught exception or unhandled rejection is fatal
// (fail-fast.ts). Returns the exit status; bin/tvsd.ts sets it.

import cluster from "node:cluster";
import { dirname, join } from "node:path";
import { type AnnounceSpec, type BgpPeer, DEFAULT_ANNOUNCE } from "../announce/spec.ts";
import type { DesiredState } from "../config/desired.ts";
import { formatDiagnostic } from "../config/diagnostics.ts";
import type { DirectorConfig } from "../config/director-config.ts";
import { parseIpvsadmRules, rulesToDesiredState } from "../config/ipvsadm-rules.ts";
import { loadConfigText } from "../config/load.ts";
import { readConfigFile } from "../config/read-config-file.ts";
import { canonicalIp } from "../core/addr.ts";
import { parseSysctlAssignment, type Sysctls } from "../core/conn/sysctl.ts";
import type { Logger, LogLevel } from "../core/log.ts";
import type { SyncDaemonSpec } from "../core/request.ts";
import {
  DEFAULT_CONNECT_TIMEOUT_MS,
  defaultProxyOptions,
  type ProxyPlaneOptions,
  parseFwmarkAddr,
  parseProxyProtocolRule,
} from "../dataplane/proxy/options.ts";
import { ProxyPlane } from "../dataplane/proxy/plane.ts";
import { udpReusePortAvailable } from "../dataplane/proxy/reuse-port.ts";
import { formatHttpAddress } from "../observe/http-address.ts";
import { packageVersion } from "../platform/package-version.ts";
import type { VipDriver, VrrpHost } from "../vrrp/io.ts";
import type { Snapshot } from "./api/protocol.ts";
import { defaultSocketPath } from "./api/socket-path.ts";
import { Daemon, type DesiredSource } from "./daemon.ts";
import type { DataPlane, DataPlaneDeps } from "./dataplane.ts";
import { DEMO, type DemoServers, demoDesiredState, demoHint, startDemoServers } from "./demo.ts";
import { EXIT_SOFTWARE, installFailFast } from "./fail-fast.ts";
import { type FwmarkRuleSource, loadFwmarkRules, parseFwmarkRuleOption } from "./fwmark-rules.ts";
import { createLogger, isLogLevel } from "./log.ts";
import { resolveHttp, startHttp } from "./observe-http.ts";
import { PersistingControl } from "./persisting-control.ts";
import { type ControlHandlers, ControlServer, prepareSocketPath } from "./server.ts";
import { StateFile } from "./state-file.ts";
import { checkSysctlForPlane } from "./sysctl-plane.ts";
import { KernelVips, NativeVrrpHost, PlaneVips } from "./vrrp-host.ts";
import { serveWorker, WorkerPool } from "./workers.ts";

/** How long SIGTERM lets open connections finish. */
const DEFAULT_DRAIN_MS = 10_000;

export const USAGE = `Usage: tvsd [options]

  --socket PATH            control socket (default: $TVS_SOCKET, /run/tvs/control.sock for root,
                           else $XDG_RUNTIME_DIR/tvs/control.sock or /tmp/tvs-UID/control.sock)
  --rules FILE             load ipvsadm rules (ipvsadm -S format) at start; SIGHUP reloads them
  --config FILE            load keepalived.conf or ldirectord.cf services at start; SIGHUP reloads
  --state-file PATH        keep the live table in PATH (ipvsadm -S format), written atomically on
                           every change and on stop; restored at start when there is no --rules,
                           --config or --demo
  --demo                   VIP 127.0.0.1:8080 (rr) over two built-in real servers on :8081 and :8082
  --dataplane proxy|packet socket data plane (default, no privilege) or raw frames (needs --interface)
  --interface IF           interface for the packet data plane
  --local-addrs A[,B...]   FULLNAT local address pool (packet data plane); addresses the host
                           kernel does not own, answered in ARP by tvsd
  --http ADDR:PORT|none    read-only metrics (/metrics), dashboard (/) and events (/events)
                           (default 127.0.0.1:7420; PORT alone means loopback; none turns it off)
  --drain-timeout MS       how long SIGTERM lets open connections finish (default ${DEFAULT_DRAIN_MS})
  --conn-limit N           connection table limit (default 1048576)
  --expire-nodest-conn     sysctl expire_nodest_conn=1: drop connections of removed destinations
  --expire-quiescent-template  sysctl expire_quiescent_template=1
  --sloppy-tcp             sysctl sloppy_tcp=1 (packet data plane): a TCP packet with no entry is
                           scheduled even without SYN, so a flow ECMP moves here carries on (use mh)
  --sloppy-sctp            sysctl sloppy_sctp=1 (packet data plane): an SCTP packet with no entry is
                           scheduled whatever its first chunk (not ABORT), not only on INIT
  --sysctl NAME=VALUE      an IPVS sysctl by its kernel name (repeatable): amemthresh, am_droprate,
                           drop_entry, drop_packet, secure_tcp (0 off, 1 automatic, 3 on),
                           conn_reuse_mode, expire_nodest_conn, ..., and tvs's synproxy=1 (SYN
                           cookies for NAT/FULLNAT, packet plane) (docs/defences.md; tvs sysctl)
  --announce bird          announce the VIPs this director can serve over BGP through BIRD 2, run
                           as tvsd's child (docs/ecmp.md); needs --bgp-asn, --bgp-router-id, --bgp-peer
  --bgp-asn N              this director's AS number
  --bgp-router-id A        BGP router id (IPv4), one per director
  --bgp-peer ADDR=ASN[,port=P][,bfd]   a BGP peer (repeatable), e.g. 10.0.1.1=65000,bfd
  --bgp-hold-time S        BGP hold time in seconds, 3..65535 (default 3)
  --sync-daemon master|backup:IF[,syncid=N][,maxlen=N][,group=A][,port=N][,ttl=N]
                           start a connection sync daemon with tvsd (repeatable: a master and a
                           backup at once for a sync mesh), before any VIP is announced
  --bgp-backup-addr A[,B]  other directors' FULLNAT local addresses, announced with this AS
                           prepended (a sync mesh takes over their replies); --local-addrs are
                           announced as they are
  --bird-dir DIR           where the generated bird.conf, control socket and log go
                           (default: bird/ beside the control socket)
  --fwmark-addr MARK=PROTO:ADDR:PORT   addresses an fwmark service listens on (socket data plane)
  --fwmark-rule 'PROTO DST[/LEN] [PORTS] [from SRC[/LEN]] mark N'   a firewall-mark rule (packet
                           data plane; repeatable, first match wins), e.g. 'tcp 10.0.0.1 80,443 mark 1':
                           what iptables -t mangle ... -j MARK does for kernel IPVS (docs/fwmark.md)
  --fwmark-rules FILE      firewall-mark rules, one per line (# comments); SIGHUP reads it again
  --proxy-protocol tcp:VIP:PORT[->RIP:RPORT]=v1|v2   send PROXY protocol headers (socket data plane)
  --retry-connect          socket data plane: hand a refused or timed-out connection to another
                           destination before resetting the client
  --connect-timeout MS     real-server connect timeout on the socket data plane (default ${DEFAULT_CONNECT_TIMEOUT_MS})
  --tcp-relay native|handle|stream   socket data plane: what carries TCP connections (default the
                           fastest there is: native, the addon's pump, when the addon is built;
                           else handle, libuv handles; stream, net.Socket, is the last fallback)
  --fd-reserve N           socket data plane: file descriptors kept for the control socket and
                           health checks whatever the traffic does (default limit/8, 64..1024)
  --udp-flow-limit N       socket data plane: most UDP flows at once; when full the oldest
                           unanswered flow is evicted (default a quarter of the fd budget)
  --workers N              socket data plane: N processes (each schedules on its own: rr sequences
                           are per worker; a persistent service's clients are steered to one
                           worker each); packet data plane: N threads sharing the interface, each
                           owning its flows (default 1)
  --fanout cbpf|hash       how packet workers share the interface: cbpf (default) steers both
                           directions of a flow and a persistent client to one worker; hash is the
                           kernel's PACKET_FANOUT_HASH (DR/TUN without persistence only)
  --log-level debug|info|warn|error   (default info; also TVS_LOG_LEVEL)
  -h, --help
  --version
`;

export interface TvsdArgs {
  socket: string | undefined;
  rules: string | undefined;
  config: string | undefined;
  stateFile: string | undefined;
  demo: boolean;
  dataplane: "proxy" | "packet";
  iface: string | undefined;
  localAddrs: string[];
  /** --sync-daemon: sync daemons started with tvsd, before anything is announced. */
  syncDaemons: SyncDaemonSpec[];
  http: string | undefined;
  drainMs: number;
  connLimit: number | undefined;
  expireNodestConn: boolean;
  expireQuiescentTemplate: boolean;
  sloppyTcp: boolean;
  sloppySctp: boolean;
  /** --sysctl NAME=VALUE, in order (a later one wins). */
  sysctls: Partial<Sysctls>;
  announce: AnnounceArgs | undefined;
  proxy: ProxyPlaneOptions;
  /** --fwmark-rule and --fwmark-rules FILE, in command-line order. */
  fwmarkRules: FwmarkRuleSource[];
  logLevel: LogLevel;
  workers: number;
  fanout: "cbpf" | "hash";
  help: boolean;
  version: boolean;
}

export class UsageError extends Error {}

/** --announce and the --bgp-* options as given; checked complete at the end of parsing. */
export interface AnnounceArgs {
  daemon: "bird" | undefined;
  asn: number | undefined;
  routerId: string | undefined;
  peers: BgpPeer[];
  holdTimeS: number | undefined;
  birdDir: string | undefined;
  backupAddrs: string[];
}

/** --bgp-peer ADDR=ASN[,port=P][,bfd] */
export function parseBgpPeer(v: string): BgpPeer {
  const m = /^(.+?)=(\d+)((?:,[^,]+)*)$/.exec(v);
  const addr = m ? canonicalIp(m[1]!) : undefined;
  if (!m || addr === undefined)
    throw new UsageError(`Invalid --bgp-peer "${v}" (expected ADDR=ASN[,port=P][,bfd], e.g. 10.0.1.1=65000,bfd)`);
  const asn = intArg("--bgp-peer AS", m[2]!, 1, 4294967295);
  const peer: BgpPeer = { addr, asn };
  for (const opt of m[3]!.split(",").slice(1)) {
    if (opt === "bfd") peer.bfd = true;
    else if (opt.startsWith("port=")) peer.port = intArg("--bgp-peer port", opt.slice(5), 1, 65535);
    else throw new UsageError(`Invalid --bgp-peer option "${opt}" in "${v}" (expected port=P or bfd)`);
  }
  return peer;
}

function intArg(flag: string, v: string, min: number, max: number): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || n < min || n > max) throw new UsageError(`Invalid ${flag} "${v}" (expected ${min}..${max})`);
  return n;
}

/**
 * --sync-daemon STATE:IFACE[,syncid=N][,maxlen=N][,group=A][,port=N][,ttl=N], what
 * `ipvsadm --start-daemon STATE --mcast-interface IFACE ...` says; 0 and "" are the kernel's defaults.
 */
export function parseSyncDaemon(v: string): SyncDaemonSpec {
  const m = /^(master|backup):([^,]+)((?:,.*)?)$/.exec(v);
  if (!m)
    throw new UsageError(
      `Invalid --sync-daemon "${v}" (expected master|backup:IFACE[,syncid=N][,maxlen=N][,group=A][,port=N][,ttl=N])`,
    );
  const d: SyncDaemonSpec = {
    state: m[1] as "master" | "backup",
    mcastIfn: m[2]!,
    syncId: 0,
    syncMaxLen: 0,
    mcastGroup: "",
    mcastPort: 0,
    mcastTtl: 0,
  };
  for (const opt of (m[3] ?? "").split(",").slice(1)) {
    const [k, val = ""] = opt.split("=", 2) as [string, string?];
    if (k === "syncid") d.syncId = intArg("--sync-daemon syncid", val, 0, 255);
    else if (k === "maxlen") d.syncMaxLen = intArg("--sync-daemon maxlen", val, 1, 65507);
    else if (k === "port") d.mcastPort = intArg("--sync-daemon port", val, 1, 65535);
    else if (k === "ttl") d.mcastTtl = intArg("--sync-daemon ttl", val, 1, 255);
    else if (k === "group") {
      const ip = canonicalIp(val);
      if (ip === undefined) throw new UsageError(`Invalid --sync-daemon group "${val}" in "${v}"`);
      d.mcastGroup = ip;
    } else
      throw new UsageError(
        `Invalid --sync-daemon option "${opt}" in "${v}" (expected syncid, maxlen, group, port or ttl)`,
      );
  }
  return d;
}

export function parseTvsdArgs(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): TvsdArgs {
  const envLevel = env.TVS_LOG_LEVEL;
  const a: TvsdArgs = {
    socket: undefined,
    rules: undefined,
    config: undefined,
    stateFile: undefined,
    demo: false,
    dataplane: "proxy",
    iface: undefined,
    localAddrs: [],
    syncDaemons: [],
    http: undefined,
    drainMs: DEFAULT_DRAIN_MS,
    connLimit: undefined,
    expireNodestConn: false,
    expireQuiescentTemplate: false,
    sloppyTcp: false,
    sloppySctp: false,
    sysctls: {},
    announce: undefined,
    proxy: defaultProxyOptions(),
    fwmarkRules: [],
    logLevel: envLevel !== undefined && isLogLevel(envLevel) ? envLevel : "info",
    workers: 1,
    fanout: "cbpf",
    help: false,
    version: false,
  };
  const announce = (): AnnounceArgs => {
    a.announce ??= {
      daemon: undefined,
      asn: undefined,
      routerId: undefined,
      peers: [],
      holdTimeS: undefined,
      birdDir: undefined,
      backupAddrs: [],
    };
    return a.announce;
  };
  const given = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const value = (): string => {
      if (eq !== -1) return arg.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`Option ${flag} needs a value`);
      return v;
    };
    given.add(flag);
    switch (flag) {
      case "-h":
      case "--help":
        a.help = true;
        break;
      case "--version":
        a.version = true;
        break;
      case "--socket":
        a.socket = value();
        break;
      case "--state-file":
        a.stateFile = value();
        break;
      case "--rules":
        a.rules = value();
        break;
      case "--config":
        a.config = value();
        break;
      case "--demo":
        a.demo = true;
        break;
      case "--dataplane": {
        const v = value();
        if (v !== "proxy" && v !== "packet")
          throw new UsageError(`Invalid --dataplane "${v}" (expected proxy or packet)`);
        a.dataplane = v;
        break;
      }
      case "--interface":
        a.iface = value();
        break;
      case "--local-addrs": {
        const text = value();
        for (const part of text.split(",")) {
          const addr = canonicalIp(part.trim());
          if (addr === undefined) throw new UsageError(`Invalid --local-addrs address "${part}"`);
          a.localAddrs.push(addr);
        }
        break;
      }
      case "--http":
        a.http = value();
        try {
          resolveHttp(a.http);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        break;
      case "--drain-timeout":
        a.drainMs = intArg(flag, value(), 0, 3_600_000);
        break;
      case "--conn-limit":
        a.connLimit = intArg(flag, value(), 1, 1 << 26);
        break;
      case "--expire-nodest-conn":
        a.expireNodestConn = true;
        break;
      case "--expire-quiescent-template":
        a.expireQuiescentTemplate = true;
        break;
      case "--sloppy-tcp":
        a.sloppyTcp = true;
        break;
      case "--sysctl": {
        try {
          const s = parseSysctlAssignment(value(), "--sysctl");
          a.sysctls[s.name] = s.value;
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        break;
      }
      case "--sloppy-sctp":
        a.sloppySctp = true;
        break;
      case "--announce": {
        const v = value();
        if (v !== "bird") throw new UsageError(`Invalid --announce "${v}" (expected bird: tvs drives BIRD 2)`);
        announce().daemon = "bird";
        break;
      }
      case "--bgp-asn":
        announce().asn = intArg(flag, value(), 1, 4294967295);
        break;
      case "--bgp-router-id": {
        const v = value();
        const ip = canonicalIp(v);
        if (ip === undefined || ip.includes(":"))
          throw new UsageError(`Invalid --bgp-router-id "${v}" (expected an IPv4 address)`);
        announce().routerId = ip;
        break;
      }
      case "--bgp-peer":
        announce().peers.push(parseBgpPeer(value()));
        break;
      case "--bgp-hold-time":
        announce().holdTimeS = intArg(flag, value(), 3, 65535);
        break;
      case "--bird-dir":
        announce().birdDir = value();
        break;
      case "--sync-daemon": {
        const d = parseSyncDaemon(value());
        if (a.syncDaemons.some((x) => x.state === d.state))
          throw new UsageError(`--sync-daemon: a ${d.state} daemon is given twice (one master and one backup at most)`);
        a.syncDaemons.push(d);
        break;
      }
      case "--bgp-backup-addr": {
        const v = value();
        for (const part of v.split(",")) {
          const ip = canonicalIp(part);
          if (ip === undefined) throw new UsageError(`Invalid --bgp-backup-addr address "${part}" in "${v}"`);
          announce().backupAddrs.push(ip);
        }
        break;
      }
      case "--fwmark-addr": {
        try {
          const { mark, listen } = parseFwmarkAddr(value());
          const list = a.proxy.fwmarkAddrs.get(mark) ?? [];
          list.push(listen);
          a.proxy.fwmarkAddrs.set(mark, list);
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        break;
      }
      case "--fwmark-rule": {
        const n = a.fwmarkRules.filter((r) => r.kind === "rule").length + 1;
        try {
          a.fwmarkRules.push({ kind: "rule", rule: parseFwmarkRuleOption(value(), n) });
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        break;
      }
      case "--fwmark-rules":
        a.fwmarkRules.push({ kind: "file", path: value() });
        break;
      case "--proxy-protocol":
        try {
          a.proxy.proxyProtocol.push(parseProxyProtocolRule(value()));
        } catch (e) {
          throw new UsageError((e as Error).message);
        }
        break;
      case "--workers":
        a.workers = intArg(flag, value(), 1, 64);
        break;
      case "--fanout": {
        const v = value();
        if (v !== "cbpf" && v !== "hash") throw new UsageError(`Invalid --fanout "${v}" (expected cbpf or hash)`);
        a.fanout = v;
        break;
      }
      case "--retry-connect":
        a.proxy.retryConnect = true;
        break;
      case "--connect-timeout":
        a.proxy.connectTimeoutMs = intArg(flag, value(), 1, 600_000);
        break;
      case "--tcp-relay": {
        const v = value();
        if (v !== "native" && v !== "handle" && v !== "stream")
          throw new UsageError(`Invalid --tcp-relay "${v}" (expected native, handle or stream)`);
        a.proxy.relay = v;
        break;
      }
      case "--fd-reserve":
        a.proxy.fdReserve = intArg(flag, value(), 0, 1 << 20);
        break;
      case "--udp-flow-limit":
        a.proxy.udpFlowLimit = intArg(flag, value(), 1, 1 << 24);
        break;
      case "--log-level": {
        const v = value();
        if (!isLogLevel(v)) throw new UsageError(`Invalid --log-level "${v}" (expected debug, info, warn or error)`);
        a.logLevel = v;
        break;
      }
      default:
        throw new UsageError(`Unknown option "${arg}"`);
    }
  }
  const sources = [a.rules !== undefined, a.config !== undefined, a.demo].filter(Boolean).length;
  if (sources > 1) throw new UsageError("Use only one of --rules, --config and --demo");
  if (a.dataplane === "packet" && a.iface === undefined)
    throw new UsageError("The packet data plane needs --interface IF");
  if (a.demo && a.dataplane !== "proxy")
    throw new UsageError("--demo runs on the socket data plane (--dataplane proxy)");
  for (const [k, v] of Object.entries(a.sysctls))
    try {
      checkSysctlForPlane(k as keyof Sysctls, v, a.dataplane);
    } catch (e) {
      throw new UsageError(`--sysctl ${k}=${v}: ${(e as Error).message}`);
    }
  if (a.sloppySctp && a.dataplane !== "packet")
    throw new UsageError("--sloppy-sctp needs --dataplane packet (only the packet data plane carries SCTP)");
  if (a.fwmarkRules.length > 0 && a.dataplane !== "packet")
    throw new UsageError(
      "--fwmark-rule and --fwmark-rules need --dataplane packet (the socket data plane sees no frames to classify: give its fwmark services addresses with --fwmark-addr MARK=PROTO:ADDR:PORT)",
    );
  if (a.sloppyTcp && a.dataplane !== "packet")
    throw new UsageError(
      "--sloppy-tcp needs --dataplane packet (the socket data plane terminates TCP: a flow cannot be taken over mid-connection)",
    );
  if (a.announce) {
    const n = a.announce;
    if (n.daemon === undefined) throw new UsageError("--bgp-* and --bird-dir need --announce bird");
    if (n.asn === undefined) throw new UsageError("--announce bird needs --bgp-asn N");
    if (n.routerId === undefined) throw new UsageError("--announce bird needs --bgp-router-id A (an IPv4 address)");
    if (n.peers.length === 0) throw new UsageError("--announce bird needs at least one --bgp-peer ADDR=ASN");
    // One address in both lists would be two routes for one prefix in BIRD, the prepended backup
    // one competing with the director's own.
    const own = n.backupAddrs.find((b) => a.localAddrs.includes(b));
    if (own !== undefined)
      throw new UsageError(
        `--bgp-backup-addr ${own} is one of this director's --local-addrs (backup addresses are other directors' local addresses)`,
      );
  }
  // Options one plane would silently ignore are refused, naming the plane that takes them.
  const socketOnly = [
    "--fwmark-addr",
    "--proxy-protocol",
    "--retry-connect",
    "--connect-timeout",
    "--tcp-relay",
    "--fd-reserve",
    "--udp-flow-limit",
  ];
  const packetOnly = ["--fanout", "--interface"];
  const ignored = (a.dataplane === "packet" ? socketOnly : packetOnly).find((f) => given.has(f));
  if (ignored !== undefined)
    throw new UsageError(
      a.dataplane === "packet"
        ? `${ignored} is an option of the socket data plane (--dataplane proxy); the packet data plane has no use for it`
        : ignored === "--fanout"
          ? "--fanout is an option of the packet data plane's workers (--dataplane packet --workers N)"
          : "--interface is an option of the packet data plane (--dataplane packet --interface IF); the socket data plane listens on the VIPs' addresses",
    );
  return a;
}

/**
 * When a source is read: at start (an empty file starts an empty director, with a warning) or on a
 * reload (an empty file is refused: it is far more often a file caught half-written by
 * configuration management than a wish to remove every service; `tvsadm -C`, or a file holding
 * only a comment, says that on purpose).
 */
export type ReadMoment = "start" | "reload";

function refuseEmpty(kind: string, path: string, text: string, moment: ReadMoment, log?: Logger): void {
  if (text.trim() !== "") return;
  if (moment === "reload")
    throw new Error(
      `${kind} "${path}" is empty; the running services stay (to remove every service use tvsadm -C, or put a comment in the file)`,
    );
  log?.warn(`${kind} is empty; starting with no services`, { file: path });
}

/** Read an ipvsadm rules file into the desired state; errors carry file:line. */
export async function loadRulesFile(path: string, moment: ReadMoment = "start", log?: Logger): Promise<DesiredState> {
  const got = readConfigFile(path);
  if ("error" in got) throw new Error(`Cannot read rules file "${path}" (${got.error})`);
  refuseEmpty("Rules file", path, got.text, moment, log);
  const rules = await parseIpvsadmRules(got.text, { file: path });
  return rulesToDesiredState(rules, path);
}

/** Read keepalived.conf / ldirectord.cf into the desired state; errors carry file:line:column. */
export async function loadConfigFile(
  path: string,
  moment: ReadMoment = "start",
  log?: Logger,
): Promise<DirectorConfig> {
  const got = readConfigFile(path);
  if ("error" in got) throw new Error(`Cannot read configuration file "${path}" (${got.error})`);
  refuseEmpty("Configuration file", path, got.text, moment, log);
  const r = loadConfigText(path, got.text);
  if (!("config" in r)) {
    const errors = r.diagnostics.filter((d) => d.severity === "error");
    throw new Error(errors.map(formatDiagnostic).join("; ") || `Configuration "${path}" has errors`);
  }
  for (const w of r.diagnostics.filter((d) => d.severity === "warning"))
    process.stderr.write(`${formatDiagnostic(w)}\n`);
  return r.config;
}

async function makePacketPlane(deps: DataPlaneDeps, args: TvsdArgs): Promise<DataPlane> {
  // Loaded only when asked for: it brings the native addon (raw frames), which may be absent.
  const { createPacketPlane } = await import("../dataplane/packet/plane.ts");
  const plane: DataPlane = createPacketPlane(deps, {
    interface: args.iface as string,
    localAddrs: args.localAddrs,
    workers: args.workers,
    fanout: args.fanout,
    // A lost packet worker leaves the plane unable to forward correctly: stop, exit EX_SOFTWARE.
    onFatal: () => {
      process.exitCode = EXIT_SOFTWARE;
      process.kill(process.pid, "SIGTERM");
    },
  });
  return plane;
}

function describeSource(args: TvsdArgs, log?: Logger): { source?: DesiredSource; sourceName?: string } {
  // The first read is the start; every later one a reload (see ReadMoment).
  let moment: ReadMoment = "start";
  const next = (): ReadMoment => {
    const m = moment;
    moment = "reload";
    return m;
  };
  if (args.rules !== undefined) {
    const file = args.rules;
    return { source: () => loadRulesFile(file, next(), log), sourceName: `rules ${file}` };
  }
  if (args.config !== undefined) {
    const file = args.config;
    return { source: () => loadConfigFile(file, next(), log), sourceName: `config ${file}` };
  }
  if (args.demo) return { source: async () => demoDesiredState(DEMO), sourceName: "demo" };
  return {};
}

/** VRRP's view of this host: raw sockets through the native addon; VIPs per data plane. */
function vrrpSystem(plane: DataPlane, log: Logger): { host: VrrpHost; vips: VipDriver } {
  const vlog = log.child({ part: "vrrp" });
  let host: VrrpHost;
  try {
    host = new NativeVrrpHost(vlog);
  } catch (e) {
    throw new Error(`VRRP needs raw IP sockets from the native addon: ${(e as Error).message}`);
  }
  const vips = plane.name === "packet" ? new PlaneVips(() => plane, vlog) : new KernelVips(() => plane);
  return { host, vips };
}

/** The announcer's spec from --announce bird and the --bgp-* options, and where BIRD's files go. */
function announceOptions(args: TvsdArgs): {
  announce?: AnnounceSpec;
  announceRunDir: string;
  announceLocals?: string[];
} {
  const runDir = args.announce?.birdDir ?? join(dirname(defaultSocketPath({ explicit: args.socket })), "bird");
  const n = args.announce;
  const locals = args.localAddrs.length > 0 ? { announceLocals: [...args.localAddrs] } : {};
  if (n?.daemon === undefined || n.asn === undefined || n.routerId === undefined)
    return { announceRunDir: runDir, ...locals };
  return {
    announceRunDir: runDir,
    ...locals,
    announce: {
      daemon: "bird",
      asn: n.asn,
      routerId: n.routerId,
      peers: n.peers,
      holdTimeS: n.holdTimeS ?? DEFAULT_ANNOUNCE.holdTimeS,
      bfdIntervalMs: DEFAULT_ANNOUNCE.bfdIntervalMs,
      bfdMultiplier: DEFAULT_ANNOUNCE.bfdMultiplier,
      birdPath: DEFAULT_ANNOUNCE.birdPath,
      birdcPath: DEFAULT_ANNOUNCE.birdcPath,
      runDir,
      ...(args.localAddrs.length > 0 ? { localAddrs: [...args.localAddrs] } : {}),
      ...(n.backupAddrs.length > 0 ? { backupAddrs: [...n.backupAddrs] } : {}),
    },
  };
}

function makeDaemon(args: TvsdArgs, log: Logger, proxy: ProxyPlaneOptions, withVrrp = false): Daemon {
  const { source, sourceName } = describeSource(args, log);
  return new Daemon({
    ...(withVrrp ? { vrrp: (plane: DataPlane) => vrrpSystem(plane, log) } : {}),
    log,
    ...(source ? { source } : {}),
    ...(sourceName !== undefined ? { sourceName } : {}),
    ...(args.connLimit !== undefined ? { connLimit: args.connLimit } : {}),
    expireNodestConn: args.expireNodestConn,
    expireQuiescentTemplate: args.expireQuiescentTemplate,
    sloppyTcp: args.sloppyTcp,
    sloppySctp: args.sloppySctp,
    sysctls: args.sysctls,
    // Only the primary runs sync daemons (tvsadm --start-daemon reaches the primary too).
    ...(withVrrp && args.syncDaemons.length > 0 ? { syncDaemons: args.syncDaemons } : {}),
    ...(args.fwmarkRules.length > 0 ? { fwmarkRules: () => loadFwmarkRules(args.fwmarkRules) } : {}),
    // Only the primary announces (workers of the socket plane share its VIPs).
    ...(withVrrp ? announceOptions(args) : {}),
    makePlane: async (deps) =>
      args.dataplane === "packet" ? makePacketPlane(deps, args) : new ProxyPlane(deps, proxy),
  });
}

/** One worker of tvsd --workers: a whole daemon answering the primary over IPC. */
async function workerMain(args: TvsdArgs, log: Logger, index: number): Promise<number> {
  for (const sig of ["SIGINT", "SIGHUP"] as const) process.on(sig, () => {});
  // Every worker serves UDP on its own SO_REUSEPORT socket when the addon can make one (the kernel
  // keeps each flow on one worker); otherwise worker 1 alone, so a flow meets one table.
  const daemon = makeDaemon(args, log, {
    ...args.proxy,
    sharedListen: true,
    udp: index === 1 || udpReusePortAvailable(),
    workers: args.workers,
  });
  try {
    await daemon.start();
  } catch (e) {
    await daemon.stop(0).catch(() => {});
    process.send?.({ t: "failed", message: `Cannot start: ${(e as Error).message}` });
    process.disconnect?.();
    return 1;
  }
  await serveWorker(daemon, log);
  process.disconnect?.();
  return 0;
}

interface Handlers {
  control: ControlHandlers;
  dataplane: string;
  open(): number | undefined;
  stop(drainMs: number): Promise<void>;
}

export interface MainOptions {
  /** A SIGHUP arrived before main() ran (bin/tvsd.ts listens from its first line). */
  sighupSeen?: () => boolean;
  /** End the process at once (bin/tvsd.ts passes process.exit): the fail-fast path (fail-fast.ts). */
  exit: (code: number) => void;
  /** The table as `tvsadm -S -n` prints it, for --state-file and the reload log (the CLI's formatter). */
  formatStateFile: (snap: Snapshot) => string;
  /** --demo: print the service table of the daemon on this socket (bin/tvsd.ts runs tvsadm -L -n). */
  listDemoTable?: (socketPath: string) => Promise<unknown>;
}

/** Runs tvsd; resolves with the exit status after a clean stop. */
export async function main(argv: string[], opts: MainOptions): Promise<number> {
  let args: TvsdArgs;
  try {
    args = parseTvsdArgs(argv, process.env);
  } catch (e) {
    process.stderr.write(`tvsd: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (args.version) {
    process.stdout.write(`tvsd ${packageVersion()}\n`);
    return 0;
  }
  const workerIndex = Number(process.env.TVSD_WORKER_INDEX ?? 0);
  const log = createLogger({ level: args.logLevel }, workerIndex ? { worker: workerIndex } : {});
  installFailFast(log, opts.exit);
  if (cluster.isWorker && workerIndex > 0) return workerMain(args, log, workerIndex);

  // SIGHUP's default action kills the process, and configuration management often reloads right
  // after a start: the handler goes in before any slow start-up work. A SIGHUP that arrives before
  // tvsd is ready is remembered and applied once, when it is.
  let reloadNow: (() => void) | undefined;
  let reloadPending = false;
  const onHup = () => {
    if (reloadNow) reloadNow();
    else if (!reloadPending) {
      reloadPending = true;
      log.info("SIGHUP during start-up: the reload runs once tvsd is ready");
    }
  };
  process.on("SIGHUP", onHup);
  if (opts.sighupSeen?.()) onHup();
  try {
    return await serve(args, log, opts, (run) => {
      reloadNow = run;
      if (reloadPending) {
        reloadPending = false;
        run();
      }
    });
  } finally {
    process.off("SIGHUP", onHup);
  }
}

/** Everything after argument parsing; `ready` hands over the reload to run for each SIGHUP. */
async function serve(
  args: TvsdArgs,
  log: Logger,
  opts: MainOptions,
  ready: (reload: () => void) => void,
): Promise<number> {
  const socketPath = defaultSocketPath({ explicit: args.socket });
  const fail = (msg: string): number => {
    log.error(msg);
    process.stderr.write(`tvsd: ${msg}\n`);
    return 1;
  };

  try {
    const { replacedStale } = await prepareSocketPath(socketPath);
    if (replacedStale) log.warn("Replaced a stale control socket", { socket: socketPath });
  } catch (e) {
    return fail((e as Error).message);
  }

  let demo: DemoServers | undefined;
  if (args.demo) {
    try {
      demo = await startDemoServers(DEMO);
    } catch (e) {
      return fail((e as Error).message);
    }
  }

  let h: Handlers;
  let single: Daemon | undefined;
  if (args.workers > 1 && args.dataplane === "proxy") {
    const pool = new WorkerPool(log);
    try {
      await pool.start(args.workers);
    } catch (e) {
      await pool.stop(0).catch(() => {});
      await demo?.close();
      return fail((e as Error).message);
    }
    h = { control: pool, dataplane: "proxy", open: () => undefined, stop: (ms) => pool.stop(ms) };
  } else {
    const daemon = makeDaemon(args, log, args.proxy, true);
    try {
      await daemon.start();
    } catch (e) {
      await daemon.stop(0).catch(() => {});
      await demo?.close();
      return fail(`Cannot start: ${(e as Error).message}`);
    }
    single = daemon;
    h = {
      control: daemon,
      dataplane: daemon.plane.name,
      open: () => daemon.plane.openFlows(),
      stop: (ms) => daemon.stop(ms),
    };
  }

  // --state-file: the table tvsadm leaves survives a restart (state-file.ts, persisting-control.ts).
  const state = args.stateFile !== undefined ? new StateFile(args.stateFile) : undefined;
  const control = new PersistingControl(h.control, state, log, opts.formatStateFile);
  if (state) {
    try {
      await restoreState(state, args, h.control, log);
    } catch (e) {
      await h.stop(0);
      await demo?.close();
      return fail((e as Error).message);
    }
    try {
      await control.persistAtStart();
    } catch (e) {
      await h.stop(0);
      await demo?.close();
      return fail((e as Error).message);
    }
    single?.events.subscribe(() => void control.persist());
  }

  const server = new ControlServer(control, log);
  try {
    await server.listen(socketPath);
  } catch (e) {
    await h.stop(0);
    await demo?.close();
    return fail((e as Error).message);
  }
  let httpServer: Awaited<ReturnType<typeof startHttp>>;
  try {
    httpServer = await startHttp(args.http, {
      ...(single ? { daemon: single } : { workers: args.workers }),
      ...(args.connLimit !== undefined ? { connLimit: args.connLimit } : {}),
      control: h.control,
      log,
    });
  } catch (e) {
    await server.close();
    await h.stop(0);
    await demo?.close();
    return fail((e as Error).message);
  }
  const sourceName = describeSource(args).sourceName;
  log.info("tvsd ready", {
    http: httpServer?.address ? formatHttpAddress(httpServer.address) : undefined,
    socket: socketPath,
    dataplane: h.dataplane,
    pid: process.pid,
    source: sourceName,
    workers: args.workers,
  });

  if (args.demo) {
    await printDemo(socketPath, opts.listDemoTable);
    const at = httpServer?.address;
    if (at)
      process.stdout.write(
        `  Dashboard: http://${formatHttpAddress(at)}/  (metrics: /metrics; tvs top in a terminal)\n`,
      );
  }

  return await new Promise<number>((resolve) => {
    let stopping = false;
    ready(() => {
      if (stopping) return;
      log.info("SIGHUP: reloading", { source: sourceName });
      control.reload().catch(() => {});
    });
    const onTerm = (sig: string) => {
      if (stopping) return;
      stopping = true;
      log.info("Draining", { signal: sig, drainMs: args.drainMs, open: h.open() });
      (async () => {
        await control.persist();
        await server.close();
        await httpServer?.close();
        await h.stop(args.drainMs);
        await demo?.close();
        log.info("tvsd stopped");
        resolve(typeof process.exitCode === "number" ? process.exitCode : 0);
      })().catch((err) => {
        log.error("Stop failed", { err });
        resolve(1);
      });
    };
    process.once("SIGTERM", () => onTerm("SIGTERM"));
    process.once("SIGINT", () => onTerm("SIGINT"));
  });
}

/**
 * --state-file at start: without a source (--rules, --config, --demo) the saved table is applied as
 * one batch (all or nothing); with one, the source decides the table and the file follows it.
 */
async function restoreState(state: StateFile, args: TvsdArgs, control: ControlHandlers, log: Logger): Promise<void> {
  const sourceName = describeSource(args).sourceName;
  if (sourceName !== undefined) {
    log.info("State file follows the live table; the table at start comes from the source", {
      file: state.path,
      source: sourceName,
    });
    return;
  }
  const saved = await state.load();
  if (!saved) {
    log.info("No state file yet; starting empty", { file: state.path });
    return;
  }
  if (saved.requests.length > 0) {
    try {
      await control.exec({ op: "batch", requests: saved.requests });
    } catch (e) {
      throw new Error(`Cannot restore the state file "${state.path}": ${(e as Error).message}`);
    }
  }
  log.info("Restored the table from the state file", { file: state.path, services: saved.services });
}

/**
 * --demo: show the table (as tvsadm -L -n prints it, when the caller composed tvsadm in: control
 * does not import the CLI) and how to try the service.
 */
async function printDemo(socketPath: string, listTable: MainOptions["listDemoTable"]): Promise<void> {
  if (listTable) {
    process.stdout.write("$ tvsadm -L -n\n");
    try {
      await listTable(socketPath);
    } catch (e) {
      process.stdout.write(`(tvsadm -L -n failed: ${(e as Error).message})\n`);
    }
  }
  process.stdout.write(`${demoHint(DEMO)}\n`);
  if (defaultSocketPath() !== socketPath)
    process.stdout.write(`  (tvsadm finds this daemon with --socket ${socketPath} or TVS_SOCKET=${socketPath})\n`);
}
