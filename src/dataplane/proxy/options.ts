// Settings of the socket data plane that IPVS has no words for, and their text forms (tvsd flags):
//
//   --fwmark-addr MARK=PROTO:ADDR:PORT   a socket cannot see firewall marks, so an fwmark service
//                                        listens on the addresses listed for its mark (repeatable;
//                                        e.g. 1=tcp:127.0.0.5:80 1=tcp:127.0.0.5:443)
//   --proxy-protocol SERVICE[->DEST]=v1|v2
//                                        send a PROXY protocol header to the real server, for every
//                                        destination of a service or for one destination
//                                        (e.g. tcp:127.0.0.1:8080=v2, tcp:127.0.0.1:8080->127.0.0.1:8081=v1,
//                                        fwmark:1=v1); a destination rule beats a service rule
//   --retry-connect                      when a destination refuses or times out, schedule once more
//                                        per other destination before resetting the client
//   --connect-timeout MS                 how long a destination may take to accept (default 5000)
//   --fd-reserve N                       file descriptors kept for the control plane whatever the
//                                        traffic does (default: limit/8, within 64..1024)
//   --udp-flow-limit N                   most UDP flows held at once; when full, the oldest
//                                        unanswered flow is evicted first (default: a quarter of
//                                        the data plane's descriptor budget)

import { canonicalIp, formatEndpoint, MAX_PORT } from "../../core/addr.ts";
import type { Protocol } from "../../core/sched/types.ts";
import type { ProxyProtocolVersion } from "./proxy-protocol.ts";

export interface ListenAddr {
  protocol: Protocol;
  addr: string;
  port: number;
}

export interface ProxyProtocolRule {
  /** Service id as core prints it ("tcp 127.0.0.1:8080", "fwmark 1 ipv4"). */
  service: string;
  /** "addr:port" of one destination ([v6]:port), or undefined for every destination. */
  dest: string | undefined;
  version: ProxyProtocolVersion;
}

export interface ProxyPlaneOptions {
  fwmarkAddrs: Map<number, ListenAddr[]>;
  proxyProtocol: ProxyProtocolRule[];
  retryConnect: boolean;
  connectTimeoutMs: number;
  /**
   * Multi-worker mode (tvsd --workers): each worker listens on its own SO_REUSEPORT socket per TCP
   * endpoint (reuse-port.ts; node:cluster's shared socket without the native addon). UDP is
   * served where udp=true: by every worker on its own SO_REUSEPORT socket when the addon can
   * make one, else by one worker, so every client's datagrams meet one flow table.
   */
  sharedListen: boolean;
  udp: boolean;
  /**
   * How many workers share each VIP (tvsd --workers): a persistent service's SO_REUSEPORT group
   * is steered by client address over this many sockets (worker-steering.ts). 1: no steering.
   */
  workers?: number | undefined;
  /**
   * Which TCP relay carries connections: "native" (the addon's byte pump, native-relay.ts; the
   * default where the addon is built), "handle" (libuv handles, handle-relay.ts; the default
   * where it is not and Node exposes them) or "stream" (net.Socket, tcp-relay.ts; the last
   * fallback). Undefined: the fastest available. Tests name one to cover each.
   */
  relay?: "native" | "handle" | "stream" | undefined;
  /** Descriptors kept for the control plane (--fd-reserve); undefined: the default in fd-budget.ts. */
  fdReserve?: number | undefined;
  /** Most UDP flows at once (--udp-flow-limit); undefined: a quarter of the descriptor budget. */
  udpFlowLimit?: number | undefined;
}

/** How long a real server may take to accept a connection on the socket data plane. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

export function defaultProxyOptions(): ProxyPlaneOptions {
  return {
    fwmarkAddrs: new Map(),
    proxyProtocol: [],
    retryConnect: false,
    connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS,
    sharedListen: false,
    udp: true,
  };
}

/** "addr:port" or "[v6]:port" → parts, or undefined. */
export function parseEndpoint(text: string): { addr: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(text) ?? /^([^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const addr = canonicalIp(m[1] as string);
  const port = Number(m[2]);
  if (addr === undefined || port > MAX_PORT) return undefined;
  return { addr, port };
}

/** Parse "MARK=PROTO:ADDR:PORT"; throws an Error naming the bad value. */
export function parseFwmarkAddr(text: string): { mark: number; listen: ListenAddr } {
  const m = /^(\d+)=(tcp|udp):(.+)$/.exec(text);
  const mark = m ? Number(m[1]) : Number.NaN;
  const ep = m ? parseEndpoint(m[3] as string) : undefined;
  if (!m || !ep || !Number.isInteger(mark) || mark < 1 || mark > 0xffffffff)
    throw new Error(`Invalid --fwmark-addr "${text}" (expected MARK=tcp|udp:ADDR:PORT)`);
  return { mark, listen: { protocol: m[2] as Protocol, addr: ep.addr, port: ep.port } };
}

/** Parse "SERVICE[->DEST]=v1|v2" where SERVICE is tcp:ADDR:PORT or fwmark:N. */
export function parseProxyProtocolRule(text: string): ProxyProtocolRule {
  const bad = () => new Error(`Invalid --proxy-protocol "${text}" (expected tcp:ADDR:PORT[->ADDR:PORT]=v1|v2)`);
  const eq = text.lastIndexOf("=");
  if (eq === -1) throw bad();
  const version = text.slice(eq + 1);
  if (version !== "v1" && version !== "v2") throw bad();
  const [svcText, destText] = text.slice(0, eq).split("->") as [string, string | undefined];
  let service: string;
  const fm = /^fwmark:(\d+)(?::ipv6)?$/.exec(svcText);
  if (fm) service = `fwmark ${Number(fm[1])} ipv${svcText.endsWith(":ipv6") ? 6 : 4}`;
  else {
    const sm = /^tcp:(.+)$/.exec(svcText);
    const ep = sm ? parseEndpoint(sm[1] as string) : undefined;
    if (!ep) throw bad();
    service = `tcp ${formatEndpoint(ep.addr, ep.port)}`;
  }
  let dest: string | undefined;
  if (destText !== undefined) {
    const ep = parseEndpoint(destText);
    if (!ep) throw bad();
    dest = formatEndpoint(ep.addr, ep.port);
  }
  return { service, dest, version: version === "v1" ? 1 : 2 };
}

/** The PROXY protocol version to use for a connection, or 0 for none. */
export function proxyProtocolFor(
  rules: readonly ProxyProtocolRule[],
  serviceId: string,
  destEndpoint: string,
): ProxyProtocolVersion | 0 {
  let forService: ProxyProtocolVersion | 0 = 0;
  for (const r of rules) {
    if (r.service !== serviceId) continue;
    if (r.dest === destEndpoint) return r.version;
    if (r.dest === undefined) forService = r.version;
  }
  return forService;
}
