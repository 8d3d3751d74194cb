// The entries of the connection table and what happens to one over its life (the kernel's
// ip_vs_conn.c): put in the slot store and filed in the indexes and the timer wheel, bound to
// (and counted on) its destination, its state and timer moved, and finally unlinked from
// everything, unbound and handed to onRemove. ConnTable (the public API), the scheduler glue
// (conn-schedule.ts) and the sync ingest (conn-sync.ts) build on these operations; nothing else
// touches the store, the indexes or the wheel.

import type { Dest } from "../dest.ts";
import type { ServiceTable } from "../service-table.ts";
import type { AddrKey } from "./addr-key.ts";
import { type BoundConn, CF_INACTIVE, CF_LIVE, type Conn, type ConnExtra, connExtra, isBound } from "./conn.ts";
import { CF_OUTHASH, ConnIndex } from "./conn-index.ts";
import { ConnStore } from "./conn-store.ts";
import { StateTimeouts } from "./conn-timeouts.ts";
import { SCTP_S_ESTABLISHED } from "./sctp-states.ts";
import { TCP_S_ESTABLISHED } from "./tcp-states.ts";
import { TimerWheel } from "./timer-wheel.ts";

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
  /**
   * sloppy_tcp: a TCP packet without an entry is scheduled whatever its flags (except RST), not only
   * a SYN. A director that ECMP hands a flow mid-connection (another director left or joined) then
   * takes it over; with mh every director picks the same real server (sloppy.ts).
   */
  sloppyTcp: boolean;
  /** sloppy_sctp: an SCTP packet without an entry is scheduled whatever its first chunk, not only INIT. */
  sloppySctp: boolean;
}

export const DEFAULT_CONN_OPTIONS: ConnOptions = {
  expireNodestConn: false,
  expireQuiescentTemplate: false,
  reuseFinWait: false,
  sloppyTcp: false,
  sloppySctp: false,
};

const INITIAL_CAPACITY = 1024;
/** The ESTABLISHED state per protocol code (tcp, udp, sctp); UDP has none. */
const ESTABLISHED = [TCP_S_ESTABLISHED, -1, SCTP_S_ESTABLISHED];

export class ConnEntries {
  readonly limit: number;
  readonly services: ServiceTable;
  options: ConnOptions;
  readonly timeouts = new StateTimeouts();
  readonly store = new ConnStore();
  readonly index = new ConnIndex(this.store);
  readonly wheel = new TimerWheel(this.store);
  /** Live templates by template key (template.ts). */
  readonly templates = new Map<string, Conn>();
  /** Entries refused because the table was full. */
  dropped = 0;
  /** Called after an entry leaves the table (expiry, remove, nodest), e.g. to close its sockets. */
  onRemove: ((c: Conn) => void) | undefined = undefined;

  constructor(services: ServiceTable, limit: number, options: ConnOptions) {
    this.services = services;
    this.limit = limit;
    this.options = options;
    this.#grow(Math.min(INITIAL_CAPACITY, limit));
  }

  get size(): number {
    return this.store.size;
  }

  /** Room for `n` more entries under the limit. */
  hasRoom(n: number): boolean {
    return this.store.size + n <= this.limit;
  }

  /** Put `c` in the table with timeout `tmo` from `now` and file it in the wheel (not the indexes). */
  insert(c: Conn, now: number, tmo: number): void {
    this.wheel.start(now);
    if (this.store.exhausted) this.#grow(Math.min(this.store.capacity * 2, this.limit));
    const id = this.store.put(c, now + tmo, tmo);
    c._set(CF_LIVE);
    this.wheel.clear(id);
    this.wheel.insert(id);
  }

  /** File a connection (not a template) in the IN index, and in OUT when replies come back through us. */
  link(c: Conn): void {
    this.index.linkIn(c);
    const fwd = c.fwd;
    if (fwd === "masq" || (fwd === "fullnat" && c.laddr !== "")) this.index.linkOut(c);
  }

  /** A connection starts hanging off a template (the kernel's n_control). */
  control(c: Conn, tpl: Conn): void {
    c.control = tpl;
    this.store.addControlled(tpl._id, 1);
  }

  /** Connections controlled by a live template. */
  controlled(tpl: Conn): number {
    return tpl._id >= 0 ? this.store.controlled(tpl._id) : 0;
  }

  /** Restart the timer: expiry = now + the entry's timeout. */
  rearm(c: Conn, now: number): void {
    this.wheel.rearm(c._id, now);
  }

  /** Give a live entry a new timeout and restart its timer. */
  retime(c: Conn, tmo: number, now: number): void {
    this.wheel.retime(c._id, tmo, now);
  }

  /** Move to `state`: active/inactive counts follow ESTABLISHED; the state's timeout restarts. */
  applyState(c: Conn, state: number, now: number): void {
    const p = c._proto;
    if (state !== c.state) this.#transition(c, p, state);
    this.wheel.retime(c._id, this.timeouts.ms(p, state) ?? 0, now);
  }

  /** A state change: the destination's active/inactive counts follow ESTABLISHED (out of line: rare). */
  #transition(c: Conn, p: number, state: number): void {
    const est = ESTABLISHED[p];
    if (!c._has(CF_INACTIVE) && state !== est) {
      c.dest?.becameInactive();
      c._set(CF_INACTIVE);
    } else if (c._has(CF_INACTIVE) && state === est) {
      c.dest?.becameActive();
      c._clear(CF_INACTIVE);
    }
    c._setState(state);
  }

  /** Unlink `c` from everything, unbind its destination, append it to `out`, tell onRemove. */
  remove(c: Conn, out: Conn[] | undefined): void {
    const id = c._id;
    if (c.template) {
      const x = c._x;
      if (x !== undefined && this.templates.get(x.tkey) === c) this.templates.delete(x.tkey);
    } else this.index.unlinkIn(c);
    if (c._has(CF_OUTHASH)) this.index.unlinkOut(c);
    if (this.wheel.filed(id)) this.wheel.unlink(id);
    const ctl = c.control;
    if (ctl !== undefined && ctl._id >= 0) this.store.addControlled(ctl._id, -1);
    this.freeze(c, this.store.exp(id), this.store.tmo(id));
    this.store.release(id);
    const dest = c.dest;
    if (dest !== undefined) {
      dest.unbind(c.template ? "template" : c.inactive ? "inactive" : "active");
      this.services.released(dest);
    }
    out?.push(c);
    this.onRemove?.(c);
  }

  /** Keep the last expiry/timeout readable on an entry that is not (or no longer) stored. */
  freeze(c: Conn, exp: number, tmo: number): void {
    const x = this.extra(c);
    x.deadExp = exp;
    x.deadTmo = tmo;
    c._id = -1;
    c._clear(CF_LIVE);
  }

  extra(c: Conn): ConnExtra {
    if (c._x === undefined) c._x = connExtra();
    return c._x;
  }

  /**
   * The bound connection for a client packet. With expire_nodest_conn an entry whose destination
   * was removed is removed here. An unbound (synced) entry is bound now if its service and real
   * server have appeared (the kernel's ip_vs_try_bind_dest), else not returned.
   */
  lookupIn(p: number, ca: AddrKey, cport: number, va: AddrKey, vport: number): BoundConn | undefined {
    return this.settleIn(this.index.findIn(p, ca, cport, va, vport));
  }

  /** What lookupIn returns for the entry the IN index found (split out so the lookup stays small). */
  settleIn(c: Conn | undefined): BoundConn | undefined {
    if (c === undefined) return undefined;
    if (isBound(c)) {
      if (this.options.expireNodestConn && !c.dest.available) {
        this.remove(c, undefined);
        return undefined;
      }
      return c;
    }
    return this.tryBind(c) ? c : undefined;
  }

  /** The bound connection for a reply from the real server (see lookupIn for unbound entries). */
  lookupOut(p: number, da: AddrKey, dport: number, xa: AddrKey, xport: number): BoundConn | undefined {
    return this.settleOut(this.index.findOut(p, da, dport, xa, xport));
  }

  settleOut(c: Conn | undefined): BoundConn | undefined {
    if (c === undefined || isBound(c)) return c;
    return this.tryBind(c) ? c : undefined;
  }

  /**
   * Bind an unbound entry to its real server if its service has it now (ip_vs_try_bind_dest: the
   * real-server port, then port 0 as ip_vs_find_dest tries): it takes the destination's method
   * and is counted on it. A type guard: true means `c` is bound.
   */
  tryBind(c: Conn): c is BoundConn {
    if (isBound(c)) return true;
    const svc = this.services.lookup(c.protocol, c.vaddr, c.vport, c.fwmark);
    const dest = svc && (svc.findDest(c.daddr, c.dport) ?? svc.findDest(c.daddr, 0));
    if (dest === undefined) return false;
    this.bindTo(c, dest);
    return isBound(c);
  }

  /** Bind an entry to `dest` and count it there (ip_vs_bind_dest). */
  bindTo(c: Conn, dest: Dest): void {
    const outHashed = c._has(CF_OUTHASH);
    if (outHashed) this.index.unlinkOut(c);
    c._bindTo(dest);
    dest.bind(c.template ? "template" : c.inactive ? "inactive" : "active");
    if (!c.template && (dest.fwd === "masq" || (dest.fwd === "fullnat" && c.laddr !== ""))) this.index.linkOut(c);
  }

  /** expire_nodest_conn at expire(): remove the entries of destinations removed from their service. */
  sweepNodest(out: Conn[]): void {
    // After a sweep the removed destinations hold no references and leave the trash, so this
    // scans the table once per removal of a destination that still had entries.
    if (!this.services.trash().some((d) => d.refs > 0)) return;
    // Connections first, templates after (so no template is kept alive by a doomed child).
    for (const templates of [false, true]) {
      for (let id = 0; id < this.store.highWater; id++) {
        const c = this.store.at(id);
        if (c !== undefined && c.template === templates && c.dest !== undefined && !c.dest.available)
          this.remove(c, out);
      }
    }
  }

  #grow(cap: number): void {
    if (cap <= this.store.capacity) return;
    this.store.grow(cap);
    this.wheel.grow(cap);
    this.index.grow(cap);
  }
}
