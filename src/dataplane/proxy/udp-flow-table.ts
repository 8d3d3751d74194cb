// UDP flow state on the socket data plane, bounded. A flow is one client address:port talking to
// one real server through a VIP; the director forwards its datagrams from a socket of its own so
// the real server's replies can be told apart and returned to the right client.
//
// Shared sockets. A reply is recognised by the socket it arrives on and the real server it comes
// from, so one socket can carry one flow per real server at the same time: flows towards
// different real servers share sockets. Each real server numbers its flows' slots from 0 (the
// lowest free slot is reused first), and slot k of every real server uses shared socket k; a
// socket closes when its last flow goes. N flows spread over D real servers need about N/D
// sockets instead of N, and each socket keeps a small table from real server to flow.
//
// The cap. The table holds at most `limit` flows (tvsd --udp-flow-limit; by default a quarter of
// the data plane's descriptor budget, so UDP can never take the descriptors TCP relays and the
// control socket need). When a new flow finds the table full, one flow is evicted first, chosen
// the way connection tracking's early drop chooses: the oldest flow that never had a reply (an
// unanswered datagram from a source that may be spoofed), and only if every flow has been
// answered, the least recently active one. Its connection entry leaves the table with it. So a
// flood of one-datagram flows churns among its own entries while flows that are answered and
// busy keep their state; every eviction is counted and the count logged at most every 10 s.

import dgram from "node:dgram";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { FdBudget } from "./fd-budget.ts";
import type { LimitAlarm } from "./limit-alarm.ts";
import { plainAddr } from "./tcp-relay.ts";

/** Who forwards a flow's replies to its client (the VIP listener). */
export interface UdpFlowOwner {
  reply(flow: UdpFlow, msg: Buffer): void;
  forget(flow: UdpFlow): void;
}

/** One shared outgoing socket: at most one flow per real server (address and port). */
class SharedSocket {
  readonly sock: dgram.Socket;
  readonly flows = new Map<string, UdpFlow>();

  constructor(type: "udp4" | "udp6", onError: (err: Error) => void) {
    this.sock = dgram.createSocket(type);
    this.sock.on("error", onError);
    this.sock.on("message", (msg, rinfo) => {
      const flow = this.flows.get(`${plainAddr(rinfo.address)}|${rinfo.port}`);
      if (flow) flow.owner.reply(flow, msg);
    });
  }
}

/**
 * Slots of one real server: the lowest free one is taken first (freed slots wait in a min-heap,
 * never-used ones start at `high`), so each new flow costs O(log n) however many there are.
 */
class DestSlots {
  count = 0;
  high = 0;
  readonly #free: number[] = [];

  take(): number {
    this.count++;
    const h = this.#free;
    if (h.length === 0) return this.high++;
    const top = h[0] as number;
    const last = h.pop() as number;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && (h[l] as number) < (m === i ? last : (h[m] as number))) m = l;
        if (r < h.length && (h[r] as number) < (m === i ? last : (h[m] as number))) m = r;
        if (m === i) break;
        h[i] = h[m] as number;
        i = m;
      }
      h[i] = last;
    }
    return top;
  }

  give(slot: number): void {
    this.count--;
    const h = this.#free;
    let i = h.length;
    h.push(slot);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if ((h[p] as number) <= slot) break;
      h[i] = h[p] as number;
      i = p;
    }
    h[i] = slot;
  }
}

class FamilyPool {
  readonly type: "udp4" | "udp6";
  readonly sockets: (SharedSocket | undefined)[] = [];
  readonly dests = new Map<string, DestSlots>();
  constructor(type: "udp4" | "udp6") {
    this.type = type;
  }
}

export class UdpFlow {
  readonly owner: UdpFlowOwner;
  readonly caddr: string;
  readonly cport: number;
  readonly daddr: string;
  readonly dport: number;
  /** The connection entry; undefined for one-packet-scheduling flows, which live on their own timer. */
  conn: BoundConn | undefined;
  /** The real server has answered at least once. */
  replied = false;
  readonly #table: UdpFlowTable;
  readonly #socket: SharedSocket;
  readonly slot: number;
  #closed = false;
  #idle: NodeJS.Timeout | undefined;
  readonly #idleMs: number;

  constructor(
    table: UdpFlowTable,
    owner: UdpFlowOwner,
    socket: SharedSocket,
    slot: number,
    ends: { caddr: string; cport: number; daddr: string; dport: number },
    conn: BoundConn | undefined,
    idleMs: number,
  ) {
    this.#table = table;
    this.owner = owner;
    this.#socket = socket;
    this.slot = slot;
    this.caddr = ends.caddr;
    this.cport = ends.cport;
    this.daddr = ends.daddr;
    this.dport = ends.dport;
    this.conn = conn;
    this.#idleMs = idleMs;
  }

  get destKey(): string {
    return `${this.daddr}|${this.dport}`;
  }

  get closed(): boolean {
    return this.#closed;
  }

  send(msg: Buffer): void {
    if (this.#closed) return;
    this.#socket.sock.send(msg, this.dport, this.daddr);
    this.#table.active(this);
    this.#armIdle();
  }

  /** A reply came back: the flow is answered and active. */
  answered(): void {
    if (this.#closed) return;
    this.replied = true;
    this.#table.active(this);
    this.#armIdle();
  }

  /** Flows without an entry (ops) close after an idle udp timeout of their own. */
  #armIdle(): void {
    if (this.conn !== undefined) return;
    if (this.#idle) this.#idle.refresh();
    else {
      this.#idle = setTimeout(() => this.close(), this.#idleMs);
      this.#idle.unref();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idle) clearTimeout(this.#idle);
    this.#table.release(this, this.#socket);
    this.owner.forget(this);
  }

  closeFromTable(): void {
    this.close();
  }
}

export interface UdpFlowTableOptions {
  /** Most flows held at once. */
  limit: number;
  fds: FdBudget;
  /** Called for an evicted flow: remove its connection entry (which closes it) or close it. */
  evict: (flow: UdpFlow) => void;
  /** Logged (rate-limited) when a flow is evicted to make room. */
  fullAlarm: LimitAlarm;
  /** Logged (rate-limited) when no descriptor is left for a new socket. */
  fdAlarm: LimitAlarm;
  onSocketError: (err: Error) => void;
}

export class UdpFlowTable {
  readonly limit: number;
  readonly #opts: UdpFlowTableOptions;
  readonly #pools = { udp4: new FamilyPool("udp4"), udp6: new FamilyPool("udp6") };
  /** Flows never answered, oldest first (Set order is insertion order). */
  readonly #unreplied = new Set<UdpFlow>();
  /** Answered flows, least recently active first. */
  readonly #replied = new Set<UdpFlow>();
  #sockets = 0;
  #evicted = 0;
  #refused = 0;

  constructor(opts: UdpFlowTableOptions) {
    this.#opts = opts;
    this.limit = opts.limit;
  }

  get size(): number {
    return this.#unreplied.size + this.#replied.size;
  }

  /** Shared sockets open now. */
  get sockets(): number {
    return this.#sockets;
  }

  /** Flows evicted to make room for new ones. */
  get evicted(): number {
    return this.#evicted;
  }

  /** New flows dropped because no descriptor was left for a socket. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * A new flow towards daddr:dport, evicting one first when the table is full. Undefined when no
   * socket can be had (the descriptor budget is spent): the datagram is dropped.
   */
  open(
    owner: UdpFlowOwner,
    ends: { caddr: string; cport: number; daddr: string; dport: number },
    conn: BoundConn | undefined,
    idleMs: number,
  ): UdpFlow | undefined {
    if (this.size >= this.limit) {
      const victim = first(this.#unreplied) ?? first(this.#replied);
      if (victim) {
        this.#evicted++;
        this.#opts.fullAlarm.hit({ limit: this.limit, evicted: this.#evicted });
        this.#opts.evict(victim);
        victim.close();
      }
    }
    const pool = ends.daddr.includes(":") ? this.#pools.udp6 : this.#pools.udp4;
    const destKey = `${ends.daddr}|${ends.dport}`;
    let slots = pool.dests.get(destKey);
    if (!slots) {
      slots = new DestSlots();
      pool.dests.set(destKey, slots);
    }
    const slot = slots.take();
    let socket = pool.sockets[slot];
    if (!socket) {
      if (!this.#opts.fds.take(1)) {
        this.#refused++;
        this.#opts.fdAlarm.hit({ what: "UDP flow socket" });
        slots.give(slot);
        if (slots.count === 0) pool.dests.delete(destKey);
        return undefined;
      }
      socket = new SharedSocket(pool.type, this.#opts.onSocketError);
      pool.sockets[slot] = socket;
      this.#sockets++;
    }
    const flow = new UdpFlow(this, owner, socket, slot, ends, conn, idleMs);
    socket.flows.set(destKey, flow);
    this.#unreplied.add(flow);
    return flow;
  }

  /** Move a flow to the recent end of its list (answered flows leave the unanswered list). */
  active(flow: UdpFlow): void {
    if (flow.replied) {
      this.#unreplied.delete(flow);
      this.#replied.delete(flow);
      this.#replied.add(flow);
    }
  }

  release(flow: UdpFlow, socket: SharedSocket): void {
    this.#unreplied.delete(flow);
    this.#replied.delete(flow);
    const destKey = flow.destKey;
    if (socket.flows.get(destKey) === flow) socket.flows.delete(destKey);
    const pool = flow.daddr.includes(":") ? this.#pools.udp6 : this.#pools.udp4;
    const slots = pool.dests.get(destKey);
    if (slots) {
      slots.give(flow.slot);
      if (slots.count === 0) pool.dests.delete(destKey);
    }
    if (socket.flows.size === 0 && pool.sockets[flow.slot] === socket) {
      pool.sockets[flow.slot] = undefined;
      while (pool.sockets.length > 0 && pool.sockets[pool.sockets.length - 1] === undefined) pool.sockets.pop();
      this.#sockets--;
      try {
        socket.sock.close();
      } catch {
        // already closed
      }
      this.#opts.fds.give(1);
    }
  }

  /** Close every flow (daemon stop). */
  closeAll(): void {
    for (const f of [...this.#unreplied, ...this.#replied]) f.close();
  }
}

function first<T>(s: Set<T>): T | undefined {
  for (const v of s) return v;
  return undefined;
}
