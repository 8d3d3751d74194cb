// The connection table (the kernel's ip_vs_conn.c with the scheduling glue of ip_vs_core.c):
// creates an entry when a new flow is scheduled (with its persistence template), finds entries
// from both directions, drives the protocol state machines that move a destination's
// connections between active and inactive, charges traffic to the counters, and expires entries
// on an injected clock. Bounded: when `limit` entries are live, new flows are refused and
// counted in `dropped` (see "Full table" below).
//
// How a data plane drives it (the kernel's ip_vs_in / ip_vs_out in miniature):
//   client packet:  c = lookupIn(...) ?? schedule(services.lookup(...), flow, now)
//                   tcpPacket(c, "in", flags, now) | sctpPacket(...) | touch(c, now) for UDP;
//                   account(c, "in", 1, bytes)
//   reply (NAT, FULLNAT): c = lookupOut(...); tcpPacket(c, "out", flags, now); account(c, "out", ...)
//   socket planes:  setState(c, TCP_S_SYN_RECV / ESTABLISHED / FIN_WAIT / TIME_WAIT ..., now)
//   every second:   expire(now); onRemove tells the plane an entry is gone (close its sockets).
// Every packet should restart the entry's timer (tcpPacket, sctpPacket, setState and touch all
// do), as the kernel's ip_vs_conn_put does. An entry whose destination was removed is still
// returned by lookupIn unless expire_nodest_conn is set; check conn.dest.available and drop.
//
// Storage. Entries are Conn handles (conn.ts) in a slot array; the per-slot numbers (expiry,
// timeout, count of controlled connections, hash-chain and timer-list links) are typed arrays
// indexed by slot, grown by doubling up to `limit`. Two chained hash indexes point into the
// slots: IN, keyed by (protocol, client address, client port, virtual address, virtual port),
// holds every connection; OUT, keyed by (protocol, real-server address, real-server port, reply
// destination address and port), holds NAT connections (reply destination = the client) and
// FULLNAT connections once their local endpoint is known (reply destination = laddr:lport).
// Templates are few (one per client network and service) and sit in a Map keyed as template.ts
// says. IPv4 addresses are hashed and compared as 32-bit integers, IPv6 as text.
//
// Expiry: a hashed timer wheel of 4096 slots of 250 ms (about 17 minutes per turn). An entry sits
// in the slot of its expiry time. expire(now) visits the slots whose time has come since the
// last call (at most one full turn), removing what is due and re-filing the rest (entries whose
// expiry was pushed later, and entries due in a later turn). Pushing an expiry later, which
// happens on nearly every packet, only rewrites the number: the entry is re-filed lazily when
// its old slot comes up. Pulling it earlier (a state with a shorter timeout) moves it at once.
// So touch is O(1) and expire costs O(due + re-filed), never a scan of the table.
//
// Full table: the kernel grows its table without bound and, under memory pressure, drops random
// entries (drop_entry). We refuse instead: schedule() returns { error: "table-full" } without
// touching the scheduler, any destination or any counter, and `dropped` counts the refusal.

import { canonicalIp } from "../addr.ts";
import type { Dest } from "../dest.ts";
import { CoreError, type CoreOp } from "../errors.ts";
import type { Flow, Protocol } from "../sched/types.ts";
import { VirtualService } from "../service.ts";
import type { ServiceTable } from "../service-table.ts";
import {
  CF_INACTIVE,
  CF_INVALID,
  CF_LIVE,
  CF_NOOUTPUT,
  CF_ONE_PACKET,
  CF_TEMPLATE,
  CF_V6,
  Conn,
  type ConnExtra,
  type ConnSlots,
  packBits,
  protoCode,
} from "./conn.ts";
import {
  SCTP_DEFAULT_TIMEOUTS,
  SCTP_S_CLOSED,
  SCTP_S_COUNT,
  SCTP_S_ESTABLISHED,
  sctpEvent,
  sctpNextState,
} from "./sctp-states.ts";
import {
  type Direction,
  TCP_DEFAULT_TIMEOUTS,
  TCP_DIR_INPUT,
  TCP_DIR_INPUT_ONLY,
  TCP_DIR_OUTPUT,
  TCP_S_CLOSE,
  TCP_S_COUNT,
  TCP_S_ESTABLISHED,
  TCP_S_FIN_WAIT,
  TCP_S_TIME_WAIT,
  tcpNextState,
} from "./tcp-states.ts";
import {
  clientNetwork,
  persistentConnDport,
  templateDport,
  templateKey,
  templateUsable,
  templateVport,
} from "./template.ts";
import { UDP_DEFAULT_TIMEOUTS, UDP_S_COUNT, UDP_S_NORMAL } from "./udp-states.ts";

export type { Direction } from "./tcp-states.ts";

/** ipvsadm --set / --timeout: seconds; 0 in setTimeouts means "keep the current value". */
export interface Timeouts {
  /** TCP ESTABLISHED timeout. */
  tcp: number;
  /** TCP FIN_WAIT timeout. */
  tcpfin: number;
  /** UDP timeout. */
  udp: number;
}

/** The kernel's sysctls that change how entries are expired. Both default to 0 (off) as in the kernel. */
export interface ConnOptions {
  /**
   * expire_nodest_conn: an entry whose destination was removed from its service is removed when
   * its next client packet is looked up (lookupIn returns undefined, so the packet is scheduled
   * afresh) and at the next expire() call. Off: such entries live out their timeout and lookupIn
   * still returns them (the data plane should drop their packets, as the kernel does).
   */
  expireNodestConn: boolean;
  /**
   * expire_quiescent_template: a persistence template whose destination has weight 0 is not
   * used for new connections (a new destination is scheduled and a new template made).
   */
  expireQuiescentTemplate: boolean;
  /**
   * conn_reuse_mode's "also FIN_WAIT" bit (2): reuseExpected() also answers true for a FIN_WAIT
   * entry whose replies bypass the director. Bit 1 (reuse at all) is the caller's choice to ask.
   */
  reuseFinWait: boolean;
}

export const DEFAULT_CONN_OPTIONS: ConnOptions = {
  expireNodestConn: false,
  expireQuiescentTemplate: false,
  reuseFinWait: false,
};

export const DEFAULT_CONN_LIMIT = 1 << 20;
/** Largest accepted limit (typed-array storage). */
export const MAX_CONN_LIMIT = 1 << 26;

/** One entry as a connection-sync message describes it (ip_vs_sync.c, v0/v1 messages). */
export interface SyncedConnSpec {
  protocol: Protocol;
  /** A template's client address is the client network (already masked); its cport is 0. */
  caddr: string;
  cport: number;
  /** The virtual address and port (for a fwmark service: any address, and fwmark set). */
  vaddr: string;
  vport: number;
  daddr: string;
  dport: number;
  fwmark: number;
  template: boolean;
  /** The sender's IP_VS_CONN_F_INACTIVE. */
  inactive: boolean;
  state: number;
  /** Seconds; 0 = the state's timeout (180 s for a template), as for v0 messages. */
  timeoutS: number;
}

/** What schedule() returns when it creates no entry. */
export type ScheduleError = { error: "no-destination" | "table-full" };

export interface ScheduleOptions {
  /** The packet's firewall mark (stored in the entry; a fwmark service's mark if omitted). */
  fwmark?: number;
  /** FULLNAT: the local address the data plane chose for this connection. */
  laddr?: string;
  /** FULLNAT: the local port the data plane chose for this connection. */
  lport?: number;
}

/** Initial timeout of a new TCP/SCTP entry before its first transition (ip_vs_conn_new: 3 s). */
const NEW_CONN_TIMEOUT_MS = 3000;
/** Timeout a template gets when it expires while still controlling connections. */
const CONTROL_RETRY_MS = 60_000;
/** Largest timeout in seconds ipvsadm --set accepts (the kernel's INT_MAX / HZ with HZ = 1000). */
const MAX_TIMEOUT_S = Math.floor(0x7fffffff / 1000);

const WHEEL_BITS = 12;
const WHEEL_SLOTS = 1 << WHEEL_BITS;
const WHEEL_MASK = WHEEL_SLOTS - 1;
const WHEEL_TICK_MS = 250;
const INITIAL_CAPACITY = 1024;

/** Extra flag: entry is linked in the OUT index. */
const CF_OUTHASH = 0x80;

type AddrKey = number | string;

/**
 * Strict dotted-quad IPv4 (no leading zeros, each part 0..255: exactly the canonical form) to a
 * signed 32-bit integer, or undefined. Hand-rolled: it runs on every text lookup.
 */
function ipv4Key(s: string): number | undefined {
  const n = s.length;
  if (n < 7 || n > 15) return undefined;
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      acc = (acc << 8) | part;
      part = 0;
      digits = 0;
    } else if (ch >= 48 && ch <= 57) {
      if (digits > 0 && part === 0) return undefined;
      part = part * 10 + (ch - 48);
      if (part > 255) return undefined;
      digits++;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return (acc << 8) | part;
}

/** IPv4 text → signed 32-bit integer; anything else stays text (IPv6, or no match at all). */
function addrKey(text: string): AddrKey {
  return ipv4Key(text) ?? text;
}

function mixAddr(h: number, a: AddrKey): number {
  if (typeof a === "number") return Math.imul(h ^ a, 0x9e3779b1);
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a.charCodeAt(i), 0x01000193);
  return Math.imul(h, 0x9e3779b1);
}

/** Hash of (protocol code, address, port, address, port) for both indexes. */
function hash5(p: number, a1: AddrKey, port1: number, a2: AddrKey, port2: number): number {
  let h = 0x811c9dc5 ^ p;
  h = mixAddr(h, a1);
  h = Math.imul(h ^ port1, 0x85ebca6b);
  h = mixAddr(h ^ (h >>> 15), a2);
  h = Math.imul(h ^ port2, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function isPort(v: unknown): v is number {
  return typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff;
}

function checkProtocol(p: unknown, op: CoreOp): Protocol {
  if (p === "tcp" || p === "udp" || p === "sctp") return p;
  throw new CoreError("EINVAL", op, `Invalid protocol "${String(p)}"`);
}

function checkPort(v: unknown, what: string, op: CoreOp): number {
  if (!isPort(v)) throw new CoreError("EINVAL", op, `Invalid ${what} "${String(v)}"`);
  return v;
}

function checkAddr(v: unknown, what: string, op: CoreOp): string {
  if (typeof v !== "string" || v.length === 0) throw new CoreError("EINVAL", op, `Invalid ${what} "${String(v)}"`);
  return v;
}

function checkNow(now: unknown, op: CoreOp): number {
  if (typeof now !== "number" || !Number.isFinite(now))
    throw new CoreError("EINVAL", op, `Invalid time "${String(now)}"`);
  return now;
}

/** State counts and the ESTABLISHED state per protocol code (tcp, udp, sctp). */
const STATE_COUNT = [TCP_S_COUNT, UDP_S_COUNT, SCTP_S_COUNT];
const ESTABLISHED = [TCP_S_ESTABLISHED, -1, SCTP_S_ESTABLISHED];

export class ConnTable {
  readonly limit: number;
  options: ConnOptions;
  /** Called after an entry leaves the table (expiry, remove, nodest), e.g. to close its sockets. */
  onRemove: ((c: Conn) => void) | undefined = undefined;

  readonly #services: ServiceTable;
  #size = 0;
  #dropped = 0;
  /** Timeouts in ms per state, per protocol code. */
  readonly #timeouts: number[][] = [
    TCP_DEFAULT_TIMEOUTS.map((s) => s * 1000),
    UDP_DEFAULT_TIMEOUTS.map((s) => s * 1000),
    SCTP_DEFAULT_TIMEOUTS.map((s) => s * 1000),
  ];

  #cap = 0;
  readonly #slots: ConnSlots = { exp: new Float64Array(0), tmo: new Float64Array(0) };
  #conns: (Conn | undefined)[] = [];
  #nctl = new Int32Array(0);
  #inNext = new Int32Array(0);
  #outNext = new Int32Array(0);
  #wNext = new Int32Array(0);
  #wPrev = new Int32Array(0);
  #wSlot = new Int32Array(0);
  #inHeads = new Int32Array(0);
  #outHeads = new Int32Array(0);
  #bucketMask = 0;
  #free = new Int32Array(0);
  #freeTop = 0;
  #fresh = 0;
  readonly #wheel = new Int32Array(WHEEL_SLOTS).fill(-1);
  /** Last wheel tick fully processed; NaN until time is first seen. */
  #cursor = Number.NaN;
  readonly #templates = new Map<string, Conn>();
  readonly #batch: Conn[] = [];
  /** Services already checked to belong to #services. */
  readonly #known = new WeakSet<VirtualService>();
  /** Parsed addresses of the flow #checkFlow last accepted. */
  #flowCa: AddrKey = 0;
  #flowVa: AddrKey = 0;
  readonly #destKeys = new WeakMap<Dest, AddrKey>();

  constructor(opts: { services: ServiceTable; limit?: number; options?: Partial<ConnOptions> }) {
    if (opts === null || typeof opts !== "object" || opts.services === undefined)
      throw new CoreError("EINVAL", "conn", "Connection table needs a service table");
    const limit = opts.limit ?? DEFAULT_CONN_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CONN_LIMIT)
      throw new CoreError("ERANGE", "conn", `Connection limit "${limit}" out of range 1..${MAX_CONN_LIMIT}`);
    this.#services = opts.services;
    this.limit = limit;
    const options = { ...DEFAULT_CONN_OPTIONS, ...(opts.options ?? {}) };
    for (const [k, v] of Object.entries(options))
      if (typeof v !== "boolean")
        throw new CoreError("EINVAL", "conn", `Invalid connection option ${k} "${String(v)}"`);
    this.options = options;
    this.#grow(Math.min(INITIAL_CAPACITY, limit));
  }

  /** Live entries, templates included (one-packet entries are never stored). */
  get size(): number {
    return this.#size;
  }

  /** New flows refused because the table was full. */
  get dropped(): number {
    return this.#dropped;
  }

  // ---------------------------------------------------------------- scheduling

  /**
   * A new flow hit `svc` (ip_vs_schedule, or ip_vs_sched_persist for a persistent service): pick
   * a destination (through the template when one pins this client), create the entry bound to
   * it (inactive, state NONE for TCP/SCTP with the kernel's 3 s initial timeout, UDP's state and
   * timeout for UDP), count it, and return it. The data plane then applies the first packet with
   * tcpPacket/setState like every later one. With one-packet scheduling (ipvsadm -o) a UDP entry
   * is returned but not stored. FULLNAT: pass laddr/lport here or later with setLocal.
   * Validation happens before the scheduler runs, except for a laddr/lport given for a
   * destination that turns out not to be FULLNAT or whose endpoint is taken (the scheduler's
   * cursor has then moved on; nothing else changed).
   */
  schedule(svc: VirtualService, flow: Flow, now: number, opts?: ScheduleOptions): Conn | ScheduleError {
    const op: CoreOp = "schedule";
    checkNow(now, op);
    if (!this.#known.has(svc)) {
      // Checked once per service object; a service deleted later has no destinations left, so
      // scheduling on it finds none.
      if (!(svc instanceof VirtualService) || this.#services.get(svc.key) !== svc)
        throw new CoreError("ESRCH", op, `Service "${String(svc?.id)}" is not in the service table`);
      this.#known.add(svc);
    }
    const f = this.#checkFlow(svc, flow);
    const ca = this.#flowCa;
    const va = this.#flowVa;
    const fwmark = opts?.fwmark ?? (svc.key.kind === "fwmark" ? svc.key.fwmark : 0);
    if (!Number.isInteger(fwmark) || fwmark < 0 || fwmark > 0xffffffff)
      throw new CoreError("EINVAL", op, `Invalid firewall mark "${fwmark}"`);
    let laddr = "";
    let lport = 0;
    if (opts?.laddr !== undefined || opts?.lport !== undefined) {
      laddr = checkAddr(opts.laddr, "local address", op);
      lport = checkPort(opts.lport, "local port", op);
    }
    const ops = svc.options.ops && f.protocol === "udp";
    this.#initCursor(now);

    if (!svc.options.persistent) {
      if (svc.key.kind === "vip" && f.dport !== svc.key.port)
        throw new CoreError("EINVAL", op, `Port ${f.dport} does not match service ${svc.id}`);
      if (!ops && this.#size >= this.limit) return this.#refuse();
      const dest = svc.sched.schedule(f);
      if (dest === undefined) return { error: "no-destination" };
      this.#checkLocal(dest, f.protocol, laddr, lport);
      const c = this.#newConn(f, ca, va, dest, dest.port !== 0 ? dest.port : f.dport, now, fwmark, laddr, lport, ops);
      this.#countConn(c);
      return c;
    }

    // Persistent: find (or make) the template for this client network.
    const network = clientNetwork(svc, f.saddr);
    const vport = templateVport(svc, f);
    const key = templateKey(svc, network, vport);
    let tpl = this.#templates.get(key);
    if (tpl !== undefined && !templateUsable(tpl.dest, this.options.expireQuiescentTemplate)) {
      this.#invalidateTemplate(tpl);
      tpl = undefined;
    }
    const need = (tpl === undefined ? 1 : 0) + (ops ? 0 : 1);
    if (this.#size + need > this.limit) return this.#refuse();
    let dest: Dest;
    if (tpl === undefined) {
      const d = svc.sched.schedule(f);
      if (d === undefined) return { error: "no-destination" };
      this.#checkLocal(d, f.protocol, laddr, lport);
      dest = d;
      tpl = this.#newTemplate(svc, f, network, vport, templateDport(svc, f, d), d, key, fwmark, now);
    } else {
      dest = tpl.dest;
      this.#checkLocal(dest, f.protocol, laddr, lport);
    }
    const c = this.#newConn(f, ca, va, dest, persistentConnDport(svc, f, dest), now, fwmark, laddr, lport, ops, tpl);
    // ip_vs_conn_put on the template: its timer restarts with the persistence timeout.
    this.#rearm(tpl, now);
    this.#countConn(c);
    return c;
  }

  // ---------------------------------------------------------------- lookups

  /**
   * The entry for a client → virtual-service packet (every forwarding method), or undefined.
   * Addresses are canonical text (addr.ts). With expire_nodest_conn, an entry whose destination
   * was removed is removed here and undefined returned.
   */
  lookupIn(protocol: Protocol, caddr: string, cport: number, vaddr: string, vport: number): Conn | undefined {
    const op: CoreOp = "conn";
    const p = protoCode(checkProtocol(protocol, op));
    checkPort(cport, "client port", op);
    checkPort(vport, "virtual port", op);
    const ca = addrKey(checkAddr(caddr, "client address", op));
    const va = addrKey(checkAddr(vaddr, "virtual address", op));
    return this.#lookupIn(p, ca, cport, va, vport);
  }

  /**
   * Numeric fast path of lookupIn for IPv4: addresses as unsigned (or signed) 32-bit integers in
   * network order read big-endian (10.0.0.1 = 0x0a000001). Arguments are not validated beyond
   * what the comparison needs; use it from the packet data plane with values from a parsed header.
   */
  lookupIn4(protocol: Protocol, caddr: number, cport: number, vaddr: number, vport: number): Conn | undefined {
    return this.#lookupIn(protoCode(protocol), caddr | 0, cport, vaddr | 0, vport);
  }

  /**
   * The entry for a real server → client reply through the director: NAT replies come from
   * daddr:dport to caddr:cport; FULLNAT replies from daddr:dport to laddr:lport (pass those as
   * the last two). DR/TUN entries and templates are never found here.
   */
  lookupOut(protocol: Protocol, daddr: string, dport: number, caddr: string, cport: number): Conn | undefined {
    const op: CoreOp = "conn";
    const p = protoCode(checkProtocol(protocol, op));
    checkPort(dport, "real-server port", op);
    checkPort(cport, "reply port", op);
    const da = addrKey(checkAddr(daddr, "real-server address", op));
    const xa = addrKey(checkAddr(caddr, "reply address", op));
    return this.#lookupOut(p, da, dport, xa, cport);
  }

  /** Numeric fast path of lookupOut for IPv4 (see lookupIn4). */
  lookupOut4(protocol: Protocol, daddr: number, dport: number, caddr: number, cport: number): Conn | undefined {
    return this.#lookupOut(protoCode(protocol), daddr | 0, dport, caddr | 0, cport);
  }

  /** The live template for a client network of a persistent service (for listings and tests). */
  findTemplate(svc: VirtualService, caddr: string, vport: number): Conn | undefined {
    if (!(svc instanceof VirtualService)) throw new CoreError("EINVAL", "conn", `Invalid service "${String(svc)}"`);
    checkPort(vport, "virtual port", "conn");
    if (canonicalIp(checkAddr(caddr, "client address", "conn")) !== caddr)
      throw new CoreError("EINVAL", "conn", `Invalid client address "${caddr}"`);
    return this.#templates.get(templateKey(svc, clientNetwork(svc, caddr), vport));
  }

  // ---------------------------------------------------------------- state

  /**
   * A TCP segment of this connection passed the director (set_tcp_state): the kernel's table
   * gives the next state from the direction and the segment's flags (rst > syn > fin > ack; none
   * of them → CLOSE). On a connection whose replies bypass the director (every method but NAT
   * and FULLNAT) "in" is treated as "in-only" until a reply is seen ("out" clears that, as the
   * kernel's NOOUTPUT flag). The timeout becomes the new state's and the expiry restarts.
   * Entries no longer in the table (expired, removed, one-packet) are left alone.
   */
  tcpPacket(conn: Conn, dir: Direction, tcpFlags: number, now: number): void {
    const op: CoreOp = "conn";
    this.#mine(conn, op);
    checkNow(now, op);
    if (dir !== "in" && dir !== "out" && dir !== "in-only")
      throw new CoreError("EINVAL", op, `Invalid direction "${String(dir)}"`);
    if (!Number.isInteger(tcpFlags) || tcpFlags < 0 || tcpFlags > 0xff)
      throw new CoreError("EINVAL", op, `Invalid TCP flags "${tcpFlags}"`);
    if (conn.protocol !== "tcp") throw new CoreError("EINVAL", op, `Connection is ${conn.protocol}, not tcp`);
    if (!conn.live || conn.template) return;
    let off = dir === "out" ? TCP_DIR_OUTPUT : dir === "in" ? TCP_DIR_INPUT : TCP_DIR_INPUT_ONLY;
    if (conn._bits & CF_NOOUTPUT) {
      if (off === TCP_DIR_OUTPUT) conn._bits &= ~CF_NOOUTPUT;
      else off = TCP_DIR_INPUT_ONLY;
    }
    this.#applyState(conn, tcpNextState(off, conn.state, tcpFlags), now);
  }

  /**
   * An SCTP packet of this association passed the director (set_sctp_state): the kernel's table
   * gives the next state from the direction and the event of the packet's first chunk type
   * (a COOKIE ECHO/ACK bundled with an ABORT counts as the ABORT: pass the second chunk's type).
   * Direction handling, counts, timeout and expiry as tcpPacket.
   */
  sctpPacket(conn: Conn, dir: Direction, chunkType: number, now: number, nextChunkType = -1): void {
    const op: CoreOp = "conn";
    this.#mine(conn, op);
    checkNow(now, op);
    if (dir !== "in" && dir !== "out" && dir !== "in-only")
      throw new CoreError("EINVAL", op, `Invalid direction "${String(dir)}"`);
    if (!Number.isInteger(chunkType) || chunkType < 0 || chunkType > 0xff)
      throw new CoreError("EINVAL", op, `Invalid SCTP chunk type "${chunkType}"`);
    if (!Number.isInteger(nextChunkType) || nextChunkType < -1 || nextChunkType > 0xff)
      throw new CoreError("EINVAL", op, `Invalid SCTP chunk type "${nextChunkType}"`);
    if (conn.protocol !== "sctp") throw new CoreError("EINVAL", op, `Connection is ${conn.protocol}, not sctp`);
    if (!conn.live || conn.template) return;
    let d = dir === "out" ? 1 : dir === "in" ? 0 : 2;
    if (conn._bits & CF_NOOUTPUT) {
      if (d === 1) conn._bits &= ~CF_NOOUTPUT;
      else d = 2;
    }
    this.#applyState(conn, sctpNextState(d, conn.state, sctpEvent(chunkType, nextChunkType)), now);
  }

  /**
   * Set a state directly (socket-driven planes: SYN_RECV on accept, ESTABLISHED on connect,
   * FIN_WAIT/CLOSE_WAIT on half close, TIME_WAIT/CLOSE at the end; SCTP states likewise).
   * Entering or leaving ESTABLISHED moves the entry between the destination's active and
   * inactive counts; the timeout becomes the state's and the expiry restarts.
   */
  setState(conn: Conn, state: number, now: number): void {
    const op: CoreOp = "conn";
    this.#mine(conn, op);
    checkNow(now, op);
    const p = (conn._bits >>> 8) & 3;
    if (!Number.isInteger(state) || state < 0 || state >= (STATE_COUNT[p] as number))
      throw new CoreError("EINVAL", op, `Invalid ${conn.protocol} state "${state}"`);
    if (conn.template) throw new CoreError("EINVAL", op, "Cannot set the state of a persistence template");
    if (!conn.live) return;
    this.#applyState(conn, state, now);
  }

  /**
   * A packet passed without a state change: restart the entry's timer from now (the kernel's
   * ip_vs_conn_put on every packet). For UDP this is the whole state machine
   * (udp_state_transition): the entry takes the current udp timeout, so an ipvsadm --set reaches
   * live UDP entries at their next packet.
   */
  touch(conn: Conn, now: number): void {
    this.#mine(conn, "conn");
    checkNow(now, "conn");
    if (!conn.live) return;
    if (((conn._bits >>> 8) & 3) === 1 && !(conn._bits & CF_TEMPLATE))
      this.#slots.tmo[conn._id] = (this.#timeouts[1] as number[])[UDP_S_NORMAL] as number;
    this.#rearm(conn, now);
  }

  /**
   * Charge packets and bytes seen in one direction to the destination's, the service's and the
   * global counters (ip_vs_in_stats / ip_vs_out_stats). Like the kernel, nothing is counted
   * once the destination has been removed from its service.
   */
  account(conn: Conn, dir: "in" | "out", packets: number, bytes: number): void {
    const op: CoreOp = "conn";
    this.#mine(conn, op);
    if (dir !== "in" && dir !== "out") throw new CoreError("EINVAL", op, `Invalid direction "${String(dir)}"`);
    if (!Number.isSafeInteger(packets) || packets < 0)
      throw new CoreError("EINVAL", op, `Invalid packet count "${packets}"`);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new CoreError("EINVAL", op, `Invalid byte count "${bytes}"`);
    if (conn.template) throw new CoreError("EINVAL", op, "Cannot account traffic to a persistence template");
    const dest = conn.dest;
    if (!dest.available) return;
    const svc = dest.svc;
    const g = this.#services.stats;
    if (dir === "in") {
      dest.stats.inPkts += packets;
      dest.stats.inBytes += bytes;
      if (svc) {
        svc.stats.inPkts += packets;
        svc.stats.inBytes += bytes;
      }
      g.inPkts += packets;
      g.inBytes += bytes;
    } else {
      dest.stats.outPkts += packets;
      dest.stats.outBytes += bytes;
      if (svc) {
        svc.stats.outPkts += packets;
        svc.stats.outBytes += bytes;
      }
      g.outPkts += packets;
      g.outBytes += bytes;
    }
  }

  /**
   * FULLNAT: record the local endpoint the data plane chose, so replies to laddr:lport are found
   * by lookupOut. Throws EEXIST when another entry to the same real server already uses it.
   */
  setLocal(conn: Conn, laddr: string, lport: number): void {
    const op: CoreOp = "conn";
    this.#mine(conn, op);
    checkAddr(laddr, "local address", op);
    checkPort(lport, "local port", op);
    if (conn.fwd !== "fullnat") throw new CoreError("EINVAL", op, `Connection uses ${conn.fwd}, not fullnat`);
    if (!conn.live) return;
    const other = this.#lookupOut(
      protoCode(conn.protocol),
      this.#destKey(conn.dest),
      conn.dport,
      addrKey(laddr),
      lport,
    );
    if (other !== undefined && other !== conn)
      throw new CoreError("EEXIST", op, `Local endpoint ${laddr}:${lport} to ${conn.dest.endpoint} is in use`);
    if (conn._bits & CF_OUTHASH) this.#outUnlink(conn);
    const x = this.#extra(conn);
    x.laddr = laddr;
    x.lport = lport;
    this.#outLink(conn);
  }

  // ---------------------------------------------------------------- expiry and removal

  /**
   * Remove every entry whose expiry time is at or before `now` and return them. A template that
   * still controls connections is not removed: its timeout becomes 60 s and restarts (the
   * kernel's ip_vs_conn_expire with n_control); later uses re-arm it with that 60 s too. With expire_nodest_conn, entries whose
   * destination was removed go too. Destinations are unbound (active/inactive/persist counts,
   * overload flag) and trashed destinations freed; onRemove is called for each.
   */
  expire(now: number): Conn[] {
    checkNow(now, "conn");
    const out: Conn[] = [];
    if (this.options.expireNodestConn) this.#sweepNodest(out);
    this.#initCursor(now);
    const target = Math.floor(now / WHEEL_TICK_MS);
    const start = Math.max(this.#cursor + 1, target - WHEEL_SLOTS + 1);
    const exp = this.#slots.exp;
    const batch = this.#batch;
    for (let b = start; b <= target; b++) {
      const slot = b & WHEEL_MASK;
      // Detach the slot's list first: onRemove callbacks may touch or remove other entries.
      let id = this.#wheel[slot] as number;
      this.#wheel[slot] = -1;
      this.#cursor = b - 1;
      batch.length = 0;
      while (id !== -1) {
        batch.push(this.#conns[id] as Conn);
        this.#wSlot[id] = -1;
        id = this.#wNext[id] as number;
      }
      for (const c of batch) {
        const cid = c._id;
        // Skip entries removed, or re-filed, by a callback during this batch.
        if (cid < 0 || this.#wSlot[cid] !== -1) continue;
        if ((exp[cid] as number) <= now) {
          if ((this.#nctl[cid] as number) > 0) {
            // ip_vs_conn_expire's "expire later": still controls connections, so it stays,
            // and from now on with a 60 s timeout.
            this.#slots.tmo[cid] = CONTROL_RETRY_MS;
            this.#rearm(c, now);
          } else this.#remove(c, out);
        } else this.#wheelInsert(cid);
      }
    }
    batch.length = 0;
    this.#cursor = target - 1;
    return out;
  }

  /**
   * The kernel's is_new_conn_expected (conn_reuse_mode, default on): a connection-opening packet
   * (a TCP segment with SYN, an SCTP INIT) that finds this entry should instead get a freshly
   * scheduled one, because the old connection is over: TCP in TIME_WAIT or CLOSE (or FIN_WAIT
   * without replies seen, with reuseFinWait), SCTP in CLOSED; never for an entry under a persistence template. The data
   * plane then calls remove(conn) and schedule(), as the kernel expires the entry and reschedules.
   */
  reuseExpected(conn: Conn): boolean {
    this.#mine(conn, "conn");
    if (!conn.live || conn.control !== undefined || conn.template) return false;
    const st = conn.state;
    switch (conn.protocol) {
      case "tcp":
        return (
          st === TCP_S_TIME_WAIT ||
          st === TCP_S_CLOSE ||
          (this.options.reuseFinWait && st === TCP_S_FIN_WAIT && (conn._bits & CF_NOOUTPUT) !== 0)
        );
      case "sctp":
        return st === SCTP_S_CLOSED;
      default:
        return false;
    }
  }

  /**
   * Create or update an entry from a connection-sync message (the backup's ip_vs_proc_conn):
   * the destination is found by service and real-server address (a real-server port of 0 also
   * matches, as ip_vs_find_dest tries); the entry takes the message's state, activity and
   * timeout (0: the state's timeout, 180 s for a template). Synced entries are not counted as
   * new connections and control nothing. Returns undefined when the service or destination is
   * not here (the kernel keeps such entries without a destination; we have nowhere to send
   * them) or the table is full.
   */
  sync(spec: SyncedConnSpec, now: number): Conn | undefined {
    const op: CoreOp = "conn";
    checkNow(now, op);
    if (spec === null || typeof spec !== "object")
      throw new CoreError("EINVAL", op, `Invalid sync entry "${String(spec)}"`);
    const protocol = checkProtocol(spec.protocol, op);
    const p = protoCode(protocol);
    for (const [k, v] of [
      ["client port", spec.cport],
      ["virtual port", spec.vport],
      ["real-server port", spec.dport],
    ] as const)
      checkPort(v, k, op);
    for (const [k, v] of [
      ["client address", spec.caddr],
      ["virtual address", spec.vaddr],
      ["real-server address", spec.daddr],
    ] as const)
      if (canonicalIp(checkAddr(v, k, op)) !== v) throw new CoreError("EINVAL", op, `Invalid ${k} "${v}"`);
    if (!Number.isInteger(spec.fwmark) || spec.fwmark < 0 || spec.fwmark > 0xffffffff)
      throw new CoreError("EINVAL", op, `Invalid firewall mark "${spec.fwmark}"`);
    if (!Number.isInteger(spec.state) || spec.state < 0 || spec.state >= (STATE_COUNT[p] as number))
      throw new CoreError("EINVAL", op, `Invalid ${protocol} state "${spec.state}"`);
    if (!Number.isInteger(spec.timeoutS) || spec.timeoutS < 0 || spec.timeoutS > MAX_TIMEOUT_S)
      throw new CoreError("EINVAL", op, `Invalid timeout "${spec.timeoutS}"`);
    const svc = this.#services.lookup(protocol, spec.vaddr, spec.vport, spec.fwmark);
    const dest = svc && (svc.findDest(spec.daddr, spec.dport) ?? svc.findDest(spec.daddr, 0));
    if (svc === undefined || dest === undefined) return undefined;
    const tmo =
      spec.timeoutS > 0
        ? spec.timeoutS * 1000
        : spec.template
          ? 180_000
          : ((this.#timeouts[p] as number[])[spec.state] as number);
    const ca = addrKey(spec.caddr);
    const va = addrKey(spec.vaddr);
    let c: Conn | undefined;
    let key = "";
    if (spec.template) {
      key = templateKey(svc, spec.caddr, spec.vport);
      c = this.#templates.get(key);
    } else c = this.#lookupIn(p, ca, spec.cport, va, spec.vport);
    if (c === undefined) {
      if (this.#size >= this.limit) {
        this.#dropped++;
        return undefined;
      }
      let flags = (spec.inactive || spec.template ? CF_INACTIVE : 0) | (typeof ca === "number" ? 0 : CF_V6);
      if (spec.template) flags |= CF_TEMPLATE;
      if (dest.fwd !== "masq" && dest.fwd !== "fullnat") flags |= CF_NOOUTPUT;
      const x: ConnExtra | undefined =
        spec.template || spec.fwmark !== 0
          ? { laddr: "", lport: 0, fwmark: spec.fwmark, deadExp: 0, deadTmo: 0, tkey: key }
          : undefined;
      c = new Conn(
        this.#slots,
        packBits(flags, protocol, dest.fwd, spec.state),
        ca,
        spec.cport,
        va,
        spec.vport,
        dest,
        spec.dport,
        x,
      );
      dest.bind(spec.template ? "template" : spec.inactive ? "inactive" : "active");
      this.#store(c, now, tmo);
      if (spec.template) this.#templates.set(key, c);
      else {
        this.#inLink(c);
        if (dest.fwd === "masq") this.#outLink(c);
      }
      return c;
    }
    // Update in place: activity moves between the destination's counts as the message says.
    if (!c.template && c.inactive !== spec.inactive) {
      if (spec.inactive) c.dest.becameInactive();
      else c.dest.becameActive();
      c._bits ^= CF_INACTIVE;
    }
    c._setState(spec.state);
    this.#slots.tmo[c._id] = tmo;
    this.#rearm(c, now);
    return c;
  }

  /** Remove one entry now (ip_vs_conn_expire_now). Entries already gone are ignored. */
  remove(conn: Conn, now: number): void {
    this.#mine(conn, "conn");
    checkNow(now, "conn");
    if (!conn.live) return;
    this.#remove(conn, undefined);
  }

  /** Every live entry, templates included, in slot order. */
  *entries(): IterableIterator<Conn> {
    for (let id = 0; id < this.#fresh; id++) {
      const c = this.#conns[id];
      if (c !== undefined) yield c;
    }
  }

  /** The current TCP ESTABLISHED, TCP FIN_WAIT and UDP timeouts in seconds (ipvsadm --timeout). */
  timeouts(): Timeouts {
    const tcp = this.#timeouts[0] as number[];
    const udp = this.#timeouts[1] as number[];
    return {
      tcp: (tcp[TCP_S_ESTABLISHED] as number) / 1000,
      tcpfin: (tcp[TCP_S_FIN_WAIT] as number) / 1000,
      udp: (udp[UDP_S_NORMAL] as number) / 1000,
    };
  }

  /**
   * ipvsadm --set tcp tcpfin udp (ip_vs_set_timeout): each value in seconds, 0 keeps the current
   * one. Applies to entries from their next state transition on, as in the kernel.
   */
  setTimeouts(t: Timeouts): void {
    const op: CoreOp = "set-timeout";
    if (t === null || typeof t !== "object") throw new CoreError("EINVAL", op, `Invalid timeouts "${String(t)}"`);
    for (const k of ["tcp", "tcpfin", "udp"] as const) {
      const v = t[k];
      if (!Number.isInteger(v) || v < 0 || v > MAX_TIMEOUT_S)
        throw new CoreError("EINVAL", op, `Invalid ${k} timeout "${String(v)}"`);
    }
    const tcp = this.#timeouts[0] as number[];
    const udp = this.#timeouts[1] as number[];
    if (t.tcp !== 0) tcp[TCP_S_ESTABLISHED] = t.tcp * 1000;
    if (t.tcpfin !== 0) tcp[TCP_S_FIN_WAIT] = t.tcpfin * 1000;
    if (t.udp !== 0) udp[UDP_S_NORMAL] = t.udp * 1000;
  }

  /** Timeout in ms the table gives a state of a protocol (for display and tests). */
  stateTimeoutMs(protocol: Protocol, state: number): number {
    const p = protoCode(checkProtocol(protocol, "conn"));
    const v = (this.#timeouts[p] as number[])[state];
    if (v === undefined) throw new CoreError("EINVAL", "conn", `Invalid ${protocol} state "${state}"`);
    return v;
  }

  /** Persistent connections controlled by a template (the kernel's n_control). */
  controlled(tpl: Conn): number {
    this.#mine(tpl, "conn");
    return tpl._id >= 0 ? (this.#nctl[tpl._id] as number) : 0;
  }

  // ---------------------------------------------------------------- internals

  #checkFlow(svc: VirtualService, flow: Flow): Flow {
    const op: CoreOp = "schedule";
    if (flow === null || typeof flow !== "object") throw new CoreError("EINVAL", op, `Invalid flow "${String(flow)}"`);
    const protocol = checkProtocol(flow.protocol, op);
    if (svc.key.kind === "vip" && svc.key.protocol !== protocol)
      throw new CoreError("EINVAL", op, `Protocol "${protocol}" does not match service ${svc.id}`);
    checkAddr(flow.saddr, "client address", op);
    checkAddr(flow.daddr, "virtual address", op);
    checkPort(flow.sport, "client port", op);
    checkPort(flow.dport, "virtual port", op);
    // One parse per address: IPv4 must be the strict dotted quad (which is its canonical form),
    // IPv6 must be canonical text.
    const ca = addrKey(flow.saddr);
    const va = addrKey(flow.daddr);
    if (typeof ca === "string" && !ca.includes(":"))
      throw new CoreError("EINVAL", op, `Invalid client address "${flow.saddr}"`);
    if (typeof va === "string" && !va.includes(":"))
      throw new CoreError("EINVAL", op, `Invalid virtual address "${flow.daddr}"`);
    const fam = typeof ca === "number" ? 4 : 6;
    if (fam !== svc.family || flow.family !== svc.family || (typeof va === "number" ? 4 : 6) !== fam)
      throw new CoreError("EINVAL", op, `Flow ${flow.saddr} → ${flow.daddr} is not IPv${svc.family}`);
    if (fam === 6 && canonicalIp(flow.saddr) !== flow.saddr)
      throw new CoreError("EINVAL", op, `Invalid client address "${flow.saddr}"`);
    if (fam === 6 && canonicalIp(flow.daddr) !== flow.daddr)
      throw new CoreError("EINVAL", op, `Invalid virtual address "${flow.daddr}"`);
    if (svc.key.kind === "vip" && svc.key.addr !== flow.daddr)
      throw new CoreError("EINVAL", op, `Virtual address "${flow.daddr}" does not match service ${svc.id}`);
    this.#flowCa = ca;
    this.#flowVa = va;
    if (this.#lookupIn(protoCode(protocol), ca, flow.sport, va, flow.dport) !== undefined)
      throw new CoreError(
        "EEXIST",
        op,
        `Connection ${protocol} ${flow.saddr}:${flow.sport} → ${flow.daddr}:${flow.dport} already exists`,
      );
    return flow;
  }

  #checkLocal(dest: Dest, protocol: Protocol, laddr: string, lport: number): void {
    if (laddr === "") return;
    if (dest.fwd !== "fullnat")
      throw new CoreError("EINVAL", "schedule", `Local address "${laddr}" given for a ${dest.fwd} destination`);
    if (this.#lookupOut(protoCode(protocol), this.#destKey(dest), dest.port, addrKey(laddr), lport) !== undefined)
      throw new CoreError("EEXIST", "schedule", `Local endpoint ${laddr}:${lport} to ${dest.endpoint} is in use`);
  }

  #refuse(): ScheduleError {
    this.#dropped++;
    return { error: "table-full" };
  }

  #countConn(c: Conn): void {
    const dest = c.dest;
    dest.stats.conns++;
    if (dest.svc) dest.svc.stats.conns++;
    this.#services.stats.conns++;
  }

  #newConn(
    f: Flow,
    ca: AddrKey,
    va: AddrKey,
    dest: Dest,
    dport: number,
    now: number,
    fwmark: number,
    laddr: string,
    lport: number,
    ops: boolean,
    tpl?: Conn,
  ): Conn {
    const p = protoCode(f.protocol);
    let flags = CF_INACTIVE | (f.family === 6 ? CF_V6 : 0) | (ops ? CF_ONE_PACKET : 0);
    if (dest.fwd !== "masq" && dest.fwd !== "fullnat") flags |= CF_NOOUTPUT;
    const state = p === 1 ? UDP_S_NORMAL : 0;
    const x: ConnExtra | undefined =
      fwmark !== 0 || laddr !== "" ? { laddr, lport, fwmark, deadExp: 0, deadTmo: 0, tkey: "" } : undefined;
    const c = new Conn(
      this.#slots,
      packBits(flags, f.protocol, dest.fwd, state),
      ca,
      f.sport,
      va,
      f.dport,
      dest,
      dport,
      x,
    );
    const tmo = p === 1 ? ((this.#timeouts[1] as number[])[UDP_S_NORMAL] as number) : NEW_CONN_TIMEOUT_MS;
    dest.bind("inactive");
    if (ops) {
      // One-packet scheduling: the kernel never hashes the entry and its timer fires at once.
      c.control = tpl;
      this.#freeze(c, now, tmo);
      dest.unbind("inactive");
      this.#services.released(dest);
      return c;
    }
    this.#store(c, now, tmo);
    this.#inLink(c);
    if (dest.fwd === "masq" || (dest.fwd === "fullnat" && laddr !== "")) this.#outLink(c);
    if (tpl !== undefined) {
      c.control = tpl;
      this.#nctl[tpl._id] = (this.#nctl[tpl._id] as number) + 1;
    }
    return c;
  }

  #newTemplate(
    svc: VirtualService,
    f: Flow,
    network: string,
    vport: number,
    dport: number,
    dest: Dest,
    key: string,
    fwmark: number,
    now: number,
  ): Conn {
    // A fwmark template carries the mark where the virtual address would be (as the kernel's).
    const va: number | string =
      svc.key.kind === "fwmark"
        ? svc.family === 4
          ? svc.key.fwmark | 0
          : markAsIpv6(svc.key.fwmark)
        : addrKey(f.daddr);
    const flags = CF_TEMPLATE | CF_INACTIVE | (svc.family === 6 ? CF_V6 : 0);
    const x: ConnExtra = { laddr: "", lport: 0, fwmark, deadExp: 0, deadTmo: 0, tkey: key };
    const c = new Conn(
      this.#slots,
      packBits(flags, f.protocol, dest.fwd, 0),
      addrKey(network),
      0,
      va,
      vport,
      dest,
      dport,
      x,
    );
    dest.bind("template");
    this.#store(c, now, svc.options.timeout * 1000);
    this.#templates.set(key, c);
    return c;
  }

  /** ip_vs_check_template's invalidation: unreachable, shown with ports 65535, left to expire. */
  #invalidateTemplate(tpl: Conn): void {
    const x = tpl._x as ConnExtra;
    if (this.#templates.get(x.tkey) === tpl) this.#templates.delete(x.tkey);
    tpl._bits |= CF_INVALID;
    (tpl as { vport: number }).vport = 0xffff;
    tpl._dp = 0xffff;
  }

  #applyState(c: Conn, state: number, now: number): void {
    const p = (c._bits >>> 8) & 3;
    if (state !== c.state) {
      const est = ESTABLISHED[p] as number;
      if (!(c._bits & CF_INACTIVE) && state !== est) {
        c.dest.becameInactive();
        c._bits |= CF_INACTIVE;
      } else if (c._bits & CF_INACTIVE && state === est) {
        c.dest.becameActive();
        c._bits &= ~CF_INACTIVE;
      }
      c._setState(state);
    }
    this.#slots.tmo[c._id] = (this.#timeouts[p] as number[])[state] as number;
    this.#rearm(c, now);
  }

  /** Expiry = now + timeout; moved in the wheel only when it got earlier. */
  #rearm(c: Conn, now: number): void {
    const id = c._id;
    const exp = this.#slots.exp;
    const next = now + (this.#slots.tmo[id] as number);
    const old = exp[id] as number;
    exp[id] = next;
    if (next < old || this.#wSlot[id] === -1) {
      if (this.#wSlot[id] !== -1) this.#wheelUnlink(id);
      this.#wheelInsert(id);
    }
  }

  #remove(c: Conn, out: Conn[] | undefined): void {
    const id = c._id;
    if (c._bits & CF_TEMPLATE) {
      const x = c._x as ConnExtra;
      if (this.#templates.get(x.tkey) === c) this.#templates.delete(x.tkey);
    } else this.#inUnlink(c);
    if (c._bits & CF_OUTHASH) this.#outUnlink(c);
    if (this.#wSlot[id] !== -1) this.#wheelUnlink(id);
    const ctl = c.control;
    if (ctl !== undefined && ctl._id >= 0) this.#nctl[ctl._id] = (this.#nctl[ctl._id] as number) - 1;
    this.#freeze(c, this.#slots.exp[id] as number, this.#slots.tmo[id] as number);
    this.#conns[id] = undefined;
    this.#nctl[id] = 0;
    this.#free[this.#freeTop++] = id;
    this.#size--;
    const dest = c.dest;
    dest.unbind(c._bits & CF_TEMPLATE ? "template" : c._bits & CF_INACTIVE ? "inactive" : "active");
    this.#services.released(dest);
    out?.push(c);
    this.onRemove?.(c);
  }

  /** Keep the last expiry/timeout readable on an entry that is not (or no longer) stored. */
  #freeze(c: Conn, exp: number, tmo: number): void {
    const x = this.#extra(c);
    x.deadExp = exp;
    x.deadTmo = tmo;
    c._id = -1;
    c._bits &= ~CF_LIVE;
  }

  #extra(c: Conn): ConnExtra {
    if (c._x === undefined) c._x = { laddr: "", lport: 0, fwmark: 0, deadExp: 0, deadTmo: 0, tkey: "" };
    return c._x;
  }

  /** expire_nodest_conn at expire(): remove the entries of destinations removed from their service. */
  #sweepNodest(out: Conn[]): void {
    // After a sweep the removed destinations hold no references and leave the trash, so this
    // scans the table once per removal of a destination that still had entries.
    if (!this.#services.trash().some((d) => d.refs > 0)) return;
    // Connections first, templates after (so no template is kept alive by a doomed child).
    for (const pass of [0, CF_TEMPLATE]) {
      for (let id = 0; id < this.#fresh; id++) {
        const c = this.#conns[id];
        if (c !== undefined && (c._bits & CF_TEMPLATE) === pass && !c.dest.available) this.#remove(c, out);
      }
    }
  }

  #mine(conn: Conn, op: CoreOp): void {
    if (!(conn instanceof Conn) || conn._s !== this.#slots)
      throw new CoreError("EINVAL", op, `Connection "${String(conn)}" does not belong to this table`);
  }

  #destKey(d: Dest): AddrKey {
    let k = this.#destKeys.get(d);
    if (k === undefined) {
      k = addrKey(d.addr);
      this.#destKeys.set(d, k);
    }
    return k;
  }

  #initCursor(now: number): void {
    if (Number.isNaN(this.#cursor)) this.#cursor = Math.floor(now / WHEEL_TICK_MS) - 1;
  }

  // Slots and storage.

  #store(c: Conn, now: number, tmo: number): void {
    this.#initCursor(now);
    if (this.#freeTop === 0 && this.#fresh === this.#cap) this.#grow(Math.min(this.#cap * 2, this.limit));
    const id = this.#freeTop > 0 ? (this.#free[--this.#freeTop] as number) : this.#fresh++;
    c._id = id;
    c._bits |= CF_LIVE;
    this.#conns[id] = c;
    this.#slots.tmo[id] = tmo;
    this.#slots.exp[id] = now + tmo;
    this.#nctl[id] = 0;
    this.#wSlot[id] = -1;
    this.#wheelInsert(id);
    this.#size++;
  }

  #grow(cap: number): void {
    const old = this.#cap;
    if (cap <= old) return;
    const f64 = (a: Float64Array) => {
      const n = new Float64Array(cap);
      n.set(a);
      return n;
    };
    const i32 = (a: Int32Array) => {
      const n = new Int32Array(cap);
      n.set(a);
      return n;
    };
    this.#slots.exp = f64(this.#slots.exp);
    this.#slots.tmo = f64(this.#slots.tmo);
    this.#nctl = i32(this.#nctl);
    this.#inNext = i32(this.#inNext);
    this.#outNext = i32(this.#outNext);
    this.#wNext = i32(this.#wNext);
    this.#wPrev = i32(this.#wPrev);
    this.#wSlot = i32(this.#wSlot);
    this.#free = i32(this.#free);
    this.#cap = cap;
    let buckets = 1;
    while (buckets < cap) buckets <<= 1;
    if (buckets - 1 !== this.#bucketMask) {
      this.#bucketMask = buckets - 1;
      this.#inHeads = new Int32Array(buckets).fill(-1);
      this.#outHeads = new Int32Array(buckets).fill(-1);
      for (let id = 0; id < this.#fresh; id++) {
        const c = this.#conns[id];
        if (c === undefined) continue;
        if (!(c._bits & CF_TEMPLATE)) {
          const b = this.#inHash(c) & this.#bucketMask;
          this.#inNext[id] = this.#inHeads[b] as number;
          this.#inHeads[b] = id;
        }
        if (c._bits & CF_OUTHASH) {
          const b = this.#outHash(c) & this.#bucketMask;
          this.#outNext[id] = this.#outHeads[b] as number;
          this.#outHeads[b] = id;
        }
      }
    }
  }

  // The IN index.

  #inHash(c: Conn): number {
    return hash5((c._bits >>> 8) & 3, c._ca, c.cport, c._va, c.vport);
  }

  #inLink(c: Conn): void {
    const b = this.#inHash(c) & this.#bucketMask;
    this.#inNext[c._id] = this.#inHeads[b] as number;
    this.#inHeads[b] = c._id;
  }

  #inUnlink(c: Conn): void {
    const b = this.#inHash(c) & this.#bucketMask;
    let id = this.#inHeads[b] as number;
    if (id === c._id) {
      this.#inHeads[b] = this.#inNext[id] as number;
      return;
    }
    while (id !== -1) {
      const next = this.#inNext[id] as number;
      if (next === c._id) {
        this.#inNext[id] = this.#inNext[next] as number;
        return;
      }
      id = next;
    }
  }

  #lookupIn(p: number, ca: AddrKey, cport: number, va: AddrKey, vport: number): Conn | undefined {
    let id = this.#inHeads[hash5(p, ca, cport, va, vport) & this.#bucketMask] as number;
    while (id !== -1) {
      const c = this.#conns[id] as Conn;
      if (c.cport === cport && c._ca === ca && c.vport === vport && c._va === va && ((c._bits >>> 8) & 3) === p) {
        if (this.options.expireNodestConn && !c.dest.available) {
          this.#remove(c, undefined);
          return undefined;
        }
        return c;
      }
      id = this.#inNext[id] as number;
    }
    return undefined;
  }

  // The OUT index: NAT entries by (daddr, dport, caddr, cport), FULLNAT by (daddr, dport, laddr, lport).

  #outHash(c: Conn): number {
    const x = c._x;
    const full = x !== undefined && x.laddr !== "";
    return hash5(
      (c._bits >>> 8) & 3,
      this.#destKey(c.dest),
      c._dp,
      full ? addrKey(x.laddr) : c._ca,
      full ? x.lport : c.cport,
    );
  }

  #outLink(c: Conn): void {
    const b = this.#outHash(c) & this.#bucketMask;
    this.#outNext[c._id] = this.#outHeads[b] as number;
    this.#outHeads[b] = c._id;
    c._bits |= CF_OUTHASH;
  }

  #outUnlink(c: Conn): void {
    c._bits &= ~CF_OUTHASH;
    const b = this.#outHash(c) & this.#bucketMask;
    let id = this.#outHeads[b] as number;
    if (id === c._id) {
      this.#outHeads[b] = this.#outNext[id] as number;
      return;
    }
    while (id !== -1) {
      const next = this.#outNext[id] as number;
      if (next === c._id) {
        this.#outNext[id] = this.#outNext[next] as number;
        return;
      }
      id = next;
    }
  }

  #lookupOut(p: number, da: AddrKey, dport: number, xa: AddrKey, xport: number): Conn | undefined {
    let id = this.#outHeads[hash5(p, da, dport, xa, xport) & this.#bucketMask] as number;
    while (id !== -1) {
      const c = this.#conns[id] as Conn;
      if (c._dp === dport && ((c._bits >>> 8) & 3) === p && this.#destKey(c.dest) === da) {
        const x = c._x;
        if (x !== undefined && x.laddr !== "") {
          if (x.lport === xport && addrKey(x.laddr) === xa) return c;
        } else if (c.cport === xport && c._ca === xa) return c;
      }
      id = this.#outNext[id] as number;
    }
    return undefined;
  }

  // The timer wheel.

  #wheelInsert(id: number): void {
    let abs = Math.floor((this.#slots.exp[id] as number) / WHEEL_TICK_MS);
    if (abs <= this.#cursor) abs = this.#cursor + 1;
    const slot = abs & WHEEL_MASK;
    const head = this.#wheel[slot] as number;
    this.#wNext[id] = head;
    this.#wPrev[id] = -1;
    if (head !== -1) this.#wPrev[head] = id;
    this.#wheel[slot] = id;
    this.#wSlot[id] = slot;
  }

  #wheelUnlink(id: number): void {
    const prev = this.#wPrev[id] as number;
    const next = this.#wNext[id] as number;
    if (prev === -1) this.#wheel[this.#wSlot[id] as number] = next;
    else this.#wNext[prev] = next;
    if (next !== -1) this.#wPrev[next] = prev;
    this.#wSlot[id] = -1;
  }
}

/** The kernel's fwmark-as-address for an IPv6 template: the mark in the first 32-bit word. */
function markAsIpv6(mark: number): string {
  const hi = (mark >>> 16).toString(16);
  const lo = (mark & 0xffff).toString(16);
  return mark >>> 16 === 0 ? (mark === 0 ? "::" : `0:${lo}::`) : `${hi}:${lo}::`;
}
