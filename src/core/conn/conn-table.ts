// The connection table: the one public face of src/core/conn. It creates an entry when a new
// flow is scheduled (with its persistence template), finds entries from both directions, drives
// the protocol state machines that move a destination's connections between active and
// inactive, charges traffic to the counters, expires entries on an injected clock, and takes in
// entries from a sync master. Bounded: when `limit` entries are live, lingering and half-open
// entries make room first (conn-reclaim.ts), and only then are new flows refused and counted in
// `dropped` (conn-schedule.ts, "Full table").
//
// How a data plane drives it (the kernel's ip_vs_in / ip_vs_out in miniature):
//   client packet:  c = lookupIn(...) ?? schedule(services.lookup(...), flow, now)
//                   tcpPacket(c, "in", flags, now) | sctpPacket(...) | touch(c, now) for UDP;
//                   account(c, "in", 1, bytes)
//   reply (NAT, FULLNAT): c = lookupOut(...); tcpPacket(c, "out", flags, now); account(c, "out", ...)
//   socket planes:  setState(c, TCP_S_SYN_RECV / ESTABLISHED / FIN_WAIT / TIME_WAIT ..., now)
//   every second:   expire(now); onRemove tells the plane an entry is gone (close its sockets).
//   sync backup:    ingestSynced(record, now) for every connection record received.
// Every packet should restart the entry's timer (tcpPacket, sctpPacket, setState and touch all
// do), as the kernel's ip_vs_conn_put does. An entry whose destination was removed is still
// returned by lookupIn unless expire_nodest_conn is set; check conn.dest.available and drop.
//
// Where the parts live (as the kernel keeps ip_vs_conn.c, ip_vs_core.c and ip_vs_sync.c apart):
//   conn.ts          the entry handle and its typed accessors
//   conn-store.ts    slots: the per-entry numbers in typed arrays, free list, growth
//   conn-index.ts    the IN and OUT hash indexes          addr-key.ts  address keys and the hash
//   timer-wheel.ts   expiry                               conn-entries.ts  an entry's life
//   conn-schedule.ts new flows and persistence templates  conn-sync.ts the sync backup's ingest
//   conn-timeouts.ts per-state timeouts, ipvsadm --set    conn-args.ts argument checks
//   conn-reclaim.ts  room in a full table (TIME_WAIT and half-open entries go first)
//   defense.ts       drop_entry, drop_packet, secure_tcp under memory pressure; sysctl.ts names

import { canonicalIp } from "../addr.ts";
import type { Dest } from "../dest.ts";
import { CoreError, type CoreOp } from "../errors.ts";
import type { Flow, Protocol } from "../sched/types.ts";
import { VirtualService } from "../service.ts";
import type { ServiceTable } from "../service-table.ts";
import { addrKey } from "./addr-key.ts";
import { type BoundConn, CF_NOOUTPUT, type Conn, isBound, protoCode } from "./conn.ts";
import { checkAddr, checkByte, checkDirection, checkNow, checkPort, checkProtocol } from "./conn-args.ts";
import { ConnEntries, type ConnOptions, DEFAULT_CONN_OPTIONS } from "./conn-entries.ts";
import { CF_OUTHASH, type ConnIndex } from "./conn-index.ts";
import { ConnScheduler, type ScheduleError, type ScheduleOptions } from "./conn-schedule.ts";
import type { ConnStore } from "./conn-store.ts";
import { ingestSynced, type SyncedConn, type SyncIngestResult } from "./conn-sync.ts";
import type { Timeouts } from "./conn-timeouts.ts";
import { Defense, type DefenseSysctls, HEAP_PRESSURE } from "./defense.ts";
import { SCTP_S_CLOSED, SCTP_S_COUNT, sctpEvent, sctpNextState } from "./sctp-states.ts";
import { checkSysctl, SYSCTL_NAMES, SYSCTL_SPEC, type SysctlName, type Sysctls } from "./sysctl.ts";
import {
  type Direction,
  TCP_DIR_INPUT,
  TCP_DIR_INPUT_ONLY,
  TCP_DIR_OUTPUT,
  TCP_S_CLOSE,
  TCP_S_COUNT,
  TCP_S_FIN_WAIT,
  TCP_S_TIME_WAIT,
  tcpNextState,
} from "./tcp-states.ts";
import { clientNetwork, templateKey } from "./template.ts";
import { UDP_S_COUNT } from "./udp-states.ts";

export type { ConnOptions } from "./conn-entries.ts";
export { DEFAULT_CONN_OPTIONS } from "./conn-entries.ts";
export type { ScheduleError, ScheduleOptions } from "./conn-schedule.ts";
export type { SyncedConn, SyncIngestResult } from "./conn-sync.ts";
export { syncedConnOf } from "./conn-sync.ts";
export type { Timeouts } from "./conn-timeouts.ts";
export type { Direction } from "./tcp-states.ts";

export const DEFAULT_CONN_LIMIT = 1 << 20;
/** Largest accepted limit (typed-array storage). */
export const MAX_CONN_LIMIT = 1 << 26;

/** Timeout a template gets when it expires while still controlling connections. */
const CONTROL_RETRY_MS = 60_000;
/** State counts per protocol code (tcp, udp, sctp). */
const STATE_COUNT = [TCP_S_COUNT, UDP_S_COUNT, SCTP_S_COUNT];
const PROTO_TCP = 0;
const PROTO_UDP = 1;

export class ConnTable {
  readonly #t: ConnEntries;
  readonly #index: ConnIndex;
  readonly #store: ConnStore;
  readonly #sched: ConnScheduler;
  readonly #defense = new Defense();
  #connReuseMode = SYSCTL_SPEC.conn_reuse_mode.def;
  /**
   * The process heap's use as a fraction of its limit, reported by the host before expire();
   * from HEAP_PRESSURE (0.9) on, memory counts as exhausted for the defence strategy (defense.ts).
   */
  heapUsed = 0;
  /**
   * sysctl synproxy (tvs's own): the packet plane answers SYNs to NAT and FULLNAT services with
   * SYN cookies and makes an entry only for a client that returns one (dataplane/packet/synproxy/).
   */
  synproxy = false;
  /**
   * sysctl stateless_syn (tvs's own): the packet plane forwards a SYN to a DR service scheduled by
   * mh or sh without an entry; the client's ACK makes it (dataplane/packet/stateless-syn.ts).
   */
  statelessSyn = false;

  constructor(opts: {
    services: ServiceTable;
    limit?: number;
    options?: Partial<ConnOptions>;
    sysctls?: Partial<Sysctls>;
  }) {
    if (opts === null || typeof opts !== "object" || opts.services === undefined)
      throw new CoreError("EINVAL", "conn", "Connection table needs a service table");
    const limit = opts.limit ?? DEFAULT_CONN_LIMIT;
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CONN_LIMIT)
      throw new CoreError("ERANGE", "conn", `Connection limit "${limit}" out of range 1..${MAX_CONN_LIMIT}`);
    const options = { ...DEFAULT_CONN_OPTIONS, ...(opts.options ?? {}) };
    for (const [k, v] of Object.entries(options))
      if (typeof v !== "boolean")
        throw new CoreError("EINVAL", "conn", `Invalid connection option ${k} "${String(v)}"`);
    this.#t = new ConnEntries(opts.services, limit, options);
    this.#index = this.#t.index;
    this.#store = this.#t.store;
    this.#sched = new ConnScheduler(this.#t);
    for (const [k, v] of Object.entries(opts.sysctls ?? {})) this.setSysctl(k, v);
  }

  /** A sysctl's value by its kernel name (sysctl.ts); drop_entry etc. read 1 or 2 in the automatic modes. */
  sysctl(name: SysctlName): number {
    const o = this.#t.options;
    switch (name) {
      case "conn_reuse_mode":
        return this.#connReuseMode;
      case "expire_nodest_conn":
        return o.expireNodestConn ? 1 : 0;
      case "expire_quiescent_template":
        return o.expireQuiescentTemplate ? 1 : 0;
      case "sloppy_tcp":
        return o.sloppyTcp ? 1 : 0;
      case "sloppy_sctp":
        return o.sloppySctp ? 1 : 0;
      case "synproxy":
        return this.synproxy ? 1 : 0;
      case "stateless_syn":
        return this.statelessSyn ? 1 : 0;
      default:
        return this.#defense.sysctls[name];
    }
  }

  /** Every sysctl with its value. */
  sysctls(): Sysctls {
    const out = {} as Sysctls;
    for (const n of SYSCTL_NAMES) out[n] = this.sysctl(n);
    return out;
  }

  /** Set a sysctl by its kernel name; the value is checked (sysctl.ts) and applies at once. */
  setSysctl(name: string, value: unknown): void {
    const c = checkSysctl(name, value, "sysctl");
    const o = this.#t.options;
    const on = c.value !== 0;
    switch (c.name) {
      case "conn_reuse_mode":
        this.#connReuseMode = c.value;
        o.reuseFinWait = (c.value & 2) !== 0;
        return;
      case "expire_nodest_conn":
        o.expireNodestConn = on;
        return;
      case "expire_quiescent_template":
        o.expireQuiescentTemplate = on;
        return;
      case "sloppy_tcp":
        o.sloppyTcp = on;
        return;
      case "sloppy_sctp":
        o.sloppySctp = on;
        return;
      case "synproxy":
        this.synproxy = on;
        return;
      case "stateless_syn":
        this.statelessSyn = on;
        return;
      default:
        this.#defense.set(c.name as keyof DefenseSysctls, c.value, this.#available());
    }
  }

  /** conn_reuse_mode is not 0: a SYN that finds a finished entry asks reuseExpected (the data plane does). */
  get connReuse(): boolean {
    return this.#connReuseMode !== 0;
  }

  /** The defence strategy's state: what is on, the drop rate, what it removed and refused. */
  get defense(): {
    dropEntry: boolean;
    secureTcp: boolean;
    dropRate: number;
    available: number;
    packetsDropped: number;
    entriesDropped: number;
    entries: number;
    limit: number;
  } {
    const d = this.#defense;
    return {
      entries: this.#t.size,
      limit: this.#t.limit,
      dropEntry: d.dropEntryOn,
      secureTcp: d.secureTcpOn,
      dropRate: d.dropRate,
      available: d.available,
      packetsDropped: d.packetsDropped,
      entriesDropped: this.#sched.reclaimer.dropEntried,
    };
  }

  /** Free entries as the defence strategy counts them: none while the heap is under pressure. */
  #available(): number {
    return this.heapUsed >= HEAP_PRESSURE ? 0 : Math.max(0, this.#t.limit - this.#t.size);
  }

  /** Most live entries (templates included); new flows beyond it are refused. */
  get limit(): number {
    return this.#t.limit;
  }

  /** The kernel sysctls in force (ConnOptions); mutable. */
  get options(): ConnOptions {
    return this.#t.options;
  }
  set options(o: ConnOptions) {
    this.#t.options = o;
  }

  /** Called after an entry leaves the table (expiry, remove, nodest), e.g. to close its sockets. */
  get onRemove(): ((c: Conn) => void) | undefined {
    return this.#t.onRemove;
  }
  set onRemove(f: ((c: Conn) => void) | undefined) {
    this.#t.onRemove = f;
  }

  /** Live entries, templates included (one-packet entries are never stored). */
  get size(): number {
    return this.#t.size;
  }

  /** New flows (and synced entries) refused because the table was full. */
  get dropped(): number {
    return this.#t.dropped;
  }

  /** Lingering and half-open entries removed to make room for new flows (conn-reclaim.ts). */
  get reclaimed(): number {
    return this.#sched.reclaimer.reclaimed;
  }

  /**
   * A new flow hit `svc` (ip_vs_schedule, or ip_vs_sched_persist for a persistent service): pick
   * a destination (through the template when one pins this client), create the entry bound to
   * it (inactive, state NONE for TCP/SCTP with the kernel's 3 s initial timeout, UDP's state and
   * timeout for UDP), count it, and return it. The data plane then applies the first packet with
   * tcpPacket/setState like every later one. With one-packet scheduling (ipvsadm -o) a UDP entry
   * is returned but not stored. FULLNAT: pass laddr/lport here or later with setLocal.
   * Validation happens before the scheduler runs, except for a laddr/lport given for a
   * destination that turns out not to be FULLNAT or whose endpoint is taken (the scheduler's
   * cursor has then moved on; nothing else changed). An unbound synced entry for the same flow
   * whose destination is still missing is replaced.
   */
  schedule(svc: VirtualService, flow: Flow, now: number, opts?: ScheduleOptions): BoundConn | ScheduleError {
    // drop_packet (defense.ts): a share of new connections is refused before anything is made.
    if (this.#defense.dropRate !== 0 && this.#defense.todrop()) return { error: "defense-drop" };
    return this.#sched.schedule(svc, flow, now, opts);
  }

  /**
   * A masquerading real server `dest` of `svc` started a request towards a client with no entry
   * (ip_vs_new_conn_out, which the kernel runs for services whose persistence engine has conn_out,
   * i.e. --pe sip): `flow` is the connection as the client would have opened it (client → VIP:
   * vport). For a persistent service the template of the client's network and the engine's key is
   * found, or made bound to `dest` (one bound elsewhere is replaced); the entry is bound to `dest`
   * with the real server's port `dport`. Refusals as schedule().
   */
  scheduleOut(
    svc: VirtualService,
    dest: Dest,
    dport: number,
    flow: Flow,
    now: number,
    opts?: ScheduleOptions,
  ): BoundConn | ScheduleError {
    return this.#sched.scheduleOut(svc, dest, dport, flow, now, opts);
  }

  /**
   * The entry for a client → virtual-service packet (every forwarding method), or undefined.
   * Addresses are canonical text (addr.ts). With expire_nodest_conn, an entry whose destination
   * was removed is removed here and undefined returned. An unbound synced entry is bound here
   * when its real server has appeared, and not returned while it has not.
   */
  lookupIn(protocol: Protocol, caddr: string, cport: number, vaddr: string, vport: number): BoundConn | undefined {
    const op: CoreOp = "conn";
    const p = protoCode(checkProtocol(protocol, op));
    checkPort(cport, "client port", op);
    checkPort(vport, "virtual port", op);
    const ca = addrKey(checkAddr(caddr, "client address", op));
    const va = addrKey(checkAddr(vaddr, "virtual address", op));
    return this.#t.lookupIn(p, ca, cport, va, vport);
  }

  /**
   * Numeric fast path of lookupIn for IPv4: addresses as unsigned (or signed) 32-bit integers in
   * network order read big-endian (10.0.0.1 = 0x0a000001). Arguments are not validated beyond
   * what the comparison needs; use it from the packet data plane with values from a parsed header.
   */
  lookupIn4(protocol: Protocol, caddr: number, cport: number, vaddr: number, vport: number): BoundConn | undefined {
    const c = this.#index.findIn(protoCode(protocol), caddr | 0, cport, vaddr | 0, vport);
    // The common cases inline: a miss, or a bound entry and no expire_nodest_conn.
    if (c === undefined) return undefined;
    if (isBound(c) && !this.#t.options.expireNodestConn) return c;
    return this.#t.settleIn(c);
  }

  /**
   * The entry for a real server → client reply through the director: NAT replies come from
   * daddr:dport to caddr:cport; FULLNAT replies from daddr:dport to laddr:lport (pass those as
   * the last two). DR/TUN entries and templates are never found here.
   */
  lookupOut(protocol: Protocol, daddr: string, dport: number, caddr: string, cport: number): BoundConn | undefined {
    const op: CoreOp = "conn";
    const p = protoCode(checkProtocol(protocol, op));
    checkPort(dport, "real-server port", op);
    checkPort(cport, "reply port", op);
    const da = addrKey(checkAddr(daddr, "real-server address", op));
    const xa = addrKey(checkAddr(caddr, "reply address", op));
    return this.#t.lookupOut(p, da, dport, xa, cport);
  }

  /** Numeric fast path of lookupOut for IPv4 (see lookupIn4). */
  lookupOut4(protocol: Protocol, daddr: number, dport: number, caddr: number, cport: number): BoundConn | undefined {
    const c = this.#index.findOut(protoCode(protocol), daddr | 0, dport, caddr | 0, cport);
    if (c === undefined || isBound(c)) return c;
    return this.#t.settleOut(c);
  }

  /** The live template for a client network of a persistent service (for listings and tests). */
  findTemplate(svc: VirtualService, caddr: string, vport: number): Conn | undefined {
    if (!(svc instanceof VirtualService)) throw new CoreError("EINVAL", "conn", `Invalid service "${String(svc)}"`);
    checkPort(vport, "virtual port", "conn");
    if (canonicalIp(checkAddr(caddr, "client address", "conn")) !== caddr)
      throw new CoreError("EINVAL", "conn", `Invalid client address "${caddr}"`);
    return this.#t.templates.get(templateKey(svc, clientNetwork(svc, caddr), vport));
  }

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
    checkDirection(dir, op);
    checkByte(tcpFlags, 0, 0xff, "TCP flags", op);
    if (conn._proto !== PROTO_TCP) throw new CoreError("EINVAL", op, `Connection is ${conn.protocol}, not tcp`);
    this.tcpPacketTrusted(conn, dir, tcpFlags, now);
  }

  /**
   * tcpPacket for the packet path, where the input was checked on entry: the connection is one this
   * table returned for a TCP flow, the direction is the forwarder's, the flags are a parsed header's
   * byte and now is the plane's clock. Nothing is checked again per packet.
   */
  tcpPacketTrusted(conn: Conn, dir: Direction, tcpFlags: number, now: number): void {
    if (!conn.live || conn.template) return;
    let off = dir === "out" ? TCP_DIR_OUTPUT : dir === "in" ? TCP_DIR_INPUT : TCP_DIR_INPUT_ONLY;
    if (conn._has(CF_NOOUTPUT)) {
      if (off === TCP_DIR_OUTPUT) conn._clear(CF_NOOUTPUT);
      else off = TCP_DIR_INPUT_ONLY;
    }
    this.#t.applyState(conn, tcpNextState(off, conn.state, tcpFlags, this.#defense.secureTcpOn), now);
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
    checkDirection(dir, op);
    checkByte(chunkType, 0, 0xff, "SCTP chunk type", op);
    checkByte(nextChunkType, -1, 0xff, "SCTP chunk type", op);
    if (conn.protocol !== "sctp") throw new CoreError("EINVAL", op, `Connection is ${conn.protocol}, not sctp`);
    this.sctpPacketTrusted(conn, dir, chunkType, now, nextChunkType);
  }

  /**
   * sctpPacket for the packet path, where the input was checked on entry (as tcpPacketTrusted):
   * an SCTP connection this table returned, the forwarder's direction, parsed chunk-type bytes.
   */
  sctpPacketTrusted(conn: Conn, dir: Direction, chunkType: number, now: number, nextChunkType = -1): void {
    if (!conn.live || conn.template) return;
    let d = dir === "out" ? 1 : dir === "in" ? 0 : 2;
    if (conn._has(CF_NOOUTPUT)) {
      if (d === 1) conn._clear(CF_NOOUTPUT);
      else d = 2;
    }
    this.#t.applyState(conn, sctpNextState(d, conn.state, sctpEvent(chunkType, nextChunkType)), now);
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
    checkByte(state, 0, (STATE_COUNT[conn._proto] ?? 1) - 1, `${conn.protocol} state`, op);
    if (conn.template) throw new CoreError("EINVAL", op, "Cannot set the state of a persistence template");
    if (!conn.live) return;
    this.#t.applyState(conn, state, now);
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
    if (conn._proto === PROTO_UDP && !conn.template) this.#t.retime(conn, this.#t.timeouts.udpMs, now);
    else this.#t.rearm(conn, now);
  }

  /**
   * Charge packets and bytes seen in one direction to the destination's, the service's and the
   * global counters (ip_vs_in_stats / ip_vs_out_stats). Like the kernel, nothing is counted
   * once the destination has been removed from its service (or while an entry is unbound).
   */
  account(conn: Conn, dir: "in" | "out", packets: number, bytes: number): void {
    const op: CoreOp = "conn";
    this.#mine(conn, op);
    if (dir !== "in" && dir !== "out") throw new CoreError("EINVAL", op, `Invalid direction "${String(dir)}"`);
    if (!Number.isSafeInteger(packets) || packets < 0)
      throw new CoreError("EINVAL", op, `Invalid packet count "${packets}"`);
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new CoreError("EINVAL", op, `Invalid byte count "${bytes}"`);
    if (conn.template) throw new CoreError("EINVAL", op, "Cannot account traffic to a persistence template");
    this.accountTrusted(conn, dir, packets, bytes);
  }

  /**
   * account for the packet path: a connection entry (not a template) this table returned, the
   * direction of the forwarder that sent it, one packet and a parsed header's length.
   */
  accountTrusted(conn: Conn, dir: "in" | "out", packets: number, bytes: number): void {
    const dest = conn.dest;
    if (dest === undefined || !dest.available) return;
    const svc = dest.svc;
    const g = this.#t.services.stats;
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
    const t = this.#t;
    const other = t.index.findOut(conn._proto, t.index.daddrKey(conn), conn.dport, addrKey(laddr), lport);
    if (other !== undefined && other !== conn)
      throw new CoreError(
        "EEXIST",
        op,
        `Local endpoint ${laddr}:${lport} to ${conn.dest?.endpoint ?? conn.daddr} is in use`,
      );
    if (conn._has(CF_OUTHASH)) t.index.unlinkOut(conn);
    const x = t.extra(conn);
    x.laddr = laddr;
    x.lport = lport;
    t.index.linkOut(conn);
  }

  /**
   * Remove every entry whose expiry time is at or before `now` and return them. A template that
   * still controls connections is not removed: its timeout becomes 60 s and restarts (the
   * kernel's ip_vs_conn_expire with n_control); later uses re-arm it with that 60 s too. With
   * expire_nodest_conn, entries whose destination was removed go too. Destinations are unbound
   * (active/inactive/persist counts, overload flag) and trashed destinations freed; onRemove is
   * called for each.
   */
  expire(now: number): Conn[] {
    checkNow(now, "conn");
    const t = this.#t;
    const out: Conn[] = [];
    if (t.options.expireNodestConn) t.sweepNodest(out);
    t.wheel.advance(now, (c) => {
      // ip_vs_conn_expire's "expire later": still controls connections, so it stays, and from
      // now on with a 60 s timeout.
      if (t.controlled(c) > 0) t.retime(c, CONTROL_RETRY_MS, now);
      else t.remove(c, out);
    });
    // The defence timer (the kernel's defense_work): once a second, levels from the free entries,
    // then drop_entry's sweep while it is on.
    const d = this.#defense;
    if (d.due(now)) {
      d.update(this.#available());
      if (d.dropEntryOn) this.#sched.reclaimer.dropEntries(Math.min(8192, Math.max(1, Math.floor(t.limit / 32))));
    }
    return out;
  }

  /**
   * The kernel's is_new_conn_expected (conn_reuse_mode, default on): a connection-opening packet
   * (a TCP segment with SYN, an SCTP INIT) that finds this entry should instead get a freshly
   * scheduled one, because the old connection is over: TCP in TIME_WAIT or CLOSE (or FIN_WAIT
   * without replies seen, with reuseFinWait), SCTP in CLOSED; never for an entry under a
   * persistence template. The data plane then calls remove(conn) and schedule(), as the kernel
   * expires the entry and reschedules.
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
          (this.#t.options.reuseFinWait && st === TCP_S_FIN_WAIT && conn._has(CF_NOOUTPUT))
        );
      case "sctp":
        return st === SCTP_S_CLOSED;
      default:
        return false;
    }
  }

  /**
   * Ingest one connection record received by a sync backup (the kernel's ip_vs_proc_conn).
   *
   * Call it once per record, in the order received, with the backup's clock. The entry is found
   * by its client → virtual key (a template by service, client network and virtual port):
   *  - not there: it is created with the record's state, activity and timeout (timeoutS 0: the
   *    state's timeout, 180 s for a template) → { outcome: "created", conn }. Its destination is
   *    found by service and real-server address (a real-server port of 0 also matches, as
   *    ip_vs_find_dest tries). When the service or real server is not here the entry is kept
   *    UNBOUND (conn.dest undefined, conn.daddr/dport from the record, method from rec.fwd): it
   *    is listed and expires like any other, counts against the limit, is never returned by
   *    lookups or forwarded, and is bound (taking the destination's method and counts) by the
   *    first lookup or record after its real server appears;
   *  - there: it takes the record's state, activity (moved between the destination's active and
   *    inactive counts) and timeout, its timer restarts, and an unbound entry is bound if it now
   *    can be → { outcome: "updated", conn };
   *  - the table is full: nothing is created → { outcome: "refused", reason: "table-full" }, and
   *    `dropped` counts it.
   * Synced entries are not counted as new connections and control no template (n_control stays
   * 0), as in the kernel. A record that is not well formed (a non-canonical address, a port or
   * state out of range, an unknown method) throws CoreError EINVAL naming the field, before
   * anything changes: the sync daemon catches it, counts the record and drops it.
   */
  ingestSynced(rec: SyncedConn, now: number): SyncIngestResult {
    return ingestSynced(this.#t, rec, now);
  }

  /** Remove one entry now (ip_vs_conn_expire_now). Entries already gone are ignored. */
  remove(conn: Conn, now: number): void {
    this.#mine(conn, "conn");
    checkNow(now, "conn");
    if (!conn.live) return;
    this.#t.remove(conn, undefined);
  }

  /** Every live entry, templates and unbound synced entries included, in slot order. */
  entries(): IterableIterator<Conn> {
    return this.#t.store.live();
  }

  /** The current TCP ESTABLISHED, TCP FIN_WAIT and UDP timeouts in seconds (ipvsadm --timeout). */
  timeouts(): Timeouts {
    return this.#t.timeouts.seconds();
  }

  /**
   * ipvsadm --set tcp tcpfin udp (ip_vs_set_timeout): each value in seconds, 0 keeps the current
   * one. Applies to entries from their next state transition on, as in the kernel.
   */
  setTimeouts(t: Timeouts): void {
    this.#t.timeouts.set(t);
  }

  /** Timeout in ms the table gives a state of a protocol (for display and tests). */
  stateTimeoutMs(protocol: Protocol, state: number): number {
    const v = this.#t.timeouts.ms(protoCode(checkProtocol(protocol, "conn")), state);
    if (v === undefined) throw new CoreError("EINVAL", "conn", `Invalid ${protocol} state "${state}"`);
    return v;
  }

  /** Persistent connections controlled by a template (the kernel's n_control). */
  controlled(tpl: Conn): number {
    this.#mine(tpl, "conn");
    return this.#t.controlled(tpl);
  }

  #mine(conn: Conn, op: CoreOp): void {
    if (!this.#store.owns(conn))
      throw new CoreError("EINVAL", op, `Connection "${String(conn)}" does not belong to this table`);
  }
}
