// Scheduling a new flow into the connection table (the kernel's ip_vs_schedule and
// ip_vs_sched_persist in ip_vs_core.c): check the flow once where it enters, ask the service's
// scheduler for a destination (through the client network's persistence template when the
// service is persistent, making the template when there is none or it may no longer be used),
// and create the entry bound to that destination.
//
// Full table: the kernel grows its table without bound and, under memory pressure, drops entries
// that carry nothing (drop_entry). tvs has a limit: when it is reached, lingering and half-open
// entries are reclaimed first (conn-reclaim.ts); only if that frees no room is the flow refused:
// schedule returns { error: "table-full" } without touching the scheduler, any destination or
// any counter, and `dropped` counts the refusal.

import { canonicalIp } from "../addr.ts";
import type { Dest } from "../dest.ts";
import { CoreError, type CoreOp } from "../errors.ts";
import { PE_DATA_MAXLEN } from "../pe/sip-callid.ts";
import type { Flow } from "../sched/types.ts";
import { VirtualService } from "../service.ts";
import { type AddrKey, addrKey, markAsIpv6 } from "./addr-key.ts";
import {
  type BoundConn,
  CF_INACTIVE,
  CF_NOOUTPUT,
  CF_ONE_PACKET,
  CF_TEMPLATE,
  CF_V6,
  Conn,
  type ConnExtra,
  connExtra,
  isBound,
  packBits,
  protoCode,
} from "./conn.ts";
import { checkAddr, checkFwmark, checkNow, checkPort, checkProtocol } from "./conn-args.ts";
import type { ConnEntries } from "./conn-entries.ts";
import { ConnReclaimer } from "./conn-reclaim.ts";
import {
  clientNetwork,
  persistentConnDport,
  templateDport,
  templateKey,
  templateUsable,
  templateVport,
} from "./template.ts";
import { UDP_S_NORMAL } from "./udp-states.ts";

/** What schedule() returns when it creates no entry. */
/** defense-drop: refused by drop_packet (defense.ts). */
/** pe-no-data: the service's persistence engine found no key in the packet (SIP: no Call-ID). */
export type ScheduleError = { error: "no-destination" | "table-full" | "defense-drop" | "pe-no-data" };

export interface ScheduleOptions {
  /** The packet's firewall mark (stored in the entry; a fwmark service's mark if omitted). */
  fwmark?: number;
  /** FULLNAT: the local address the data plane chose for this connection. */
  laddr?: string;
  /** FULLNAT: the local port the data plane chose for this connection. */
  lport?: number;
  /**
   * The key the service's persistence engine read from the packet (SIP: the Call-ID, see
   * core/pe/), absent when it found none. Only read for a persistent service with an engine.
   */
  peData?: string;
}

/** Initial timeout of a new TCP/SCTP entry before its first transition (ip_vs_conn_new: 3 s). */
const NEW_CONN_TIMEOUT_MS = 3000;

/** A checked new flow: its parsed addresses and the options that apply. */
interface NewFlow {
  f: Flow;
  ca: AddrKey;
  va: AddrKey;
  fwmark: number;
  laddr: string;
  lport: number;
  ops: boolean;
  /** The persistence engine's key, when the service has an engine and the packet gave one. */
  peData: string | undefined;
}

export class ConnScheduler {
  readonly #t: ConnEntries;
  /** Services already checked to belong to the service table. */
  readonly #known = new WeakSet<VirtualService>();
  #flowCa: AddrKey = 0;
  #flowVa: AddrKey = 0;
  /** Makes room in a full table before a flow is refused. */
  readonly reclaimer: ConnReclaimer;

  constructor(entries: ConnEntries) {
    this.#t = entries;
    this.reclaimer = new ConnReclaimer(entries);
  }

  /** See ConnTable.schedule. */
  schedule(svc: VirtualService, flow: Flow, now: number, opts?: ScheduleOptions): BoundConn | ScheduleError {
    const t = this.#t;
    const nf = this.#admit(svc, flow, now, opts);
    const { f, laddr, lport, ops } = nf;
    t.wheel.start(now);
    if (!svc.options.persistent) {
      if (svc.key.kind === "vip" && f.dport !== svc.key.port)
        throw new CoreError("EINVAL", "schedule", `Port ${f.dport} does not match service ${svc.id}`);
      if (!ops && !this.reclaimer.makeRoom(1, now)) return this.#refuse();
      const dest = svc.sched.schedule(f);
      if (dest === undefined) return { error: "no-destination" };
      this.#checkLocal(dest, laddr, lport, nf);
      const c = this.#newConn(nf, dest, dest.port !== 0 ? dest.port : f.dport, now, undefined);
      this.#countConn(c.dest);
      return c;
    }

    // Persistent: find (or make) the template for this client network (and call, with --pe).
    // ip_vs_sched_persist drops the packet when the engine finds no key: the SIP engine reads
    // UDP only, and only a message with a Call-ID.
    if (svc.options.pe !== "" && (f.protocol !== "udp" || nf.peData === undefined)) return { error: "pe-no-data" };
    const network = clientNetwork(svc, f.saddr);
    const vport = templateVport(svc, f);
    const key = templateKey(svc, network, vport, svc.options.pe !== "" ? nf.peData : undefined);
    let tpl = t.templates.get(key);
    if (tpl !== undefined && !(t.tryBind(tpl) && templateUsable(tpl.dest, t.options.expireQuiescentTemplate))) {
      this.#invalidateTemplate(tpl);
      tpl = undefined;
    }
    if (!this.reclaimer.makeRoom((tpl === undefined ? 1 : 0) + (ops ? 0 : 1), now)) return this.#refuse();
    let bound: BoundConn;
    if (tpl === undefined) {
      const d = svc.sched.schedule(f);
      if (d === undefined) return { error: "no-destination" };
      this.#checkLocal(d, laddr, lport, nf);
      bound = this.#newTemplate(svc, f, network, vport, templateDport(svc, f, d), d, key, nf, now);
    } else if (isBound(tpl)) {
      bound = tpl;
      this.#checkLocal(bound.dest, laddr, lport, nf);
    } else return { error: "no-destination" };
    const dest = bound.dest;
    const c = this.#newConn(nf, dest, persistentConnDport(svc, f, dest), now, bound);
    // ip_vs_conn_put on the template: its timer restarts with the persistence timeout.
    t.rearm(bound, now);
    this.#countConn(dest);
    return c;
  }

  /** See ConnTable.scheduleOut (the kernel's ip_vs_new_conn_out). */
  scheduleOut(
    svc: VirtualService,
    dest: Dest,
    dport: number,
    flow: Flow,
    now: number,
    opts?: ScheduleOptions,
  ): BoundConn | ScheduleError {
    const t = this.#t;
    const nf = this.#admit(svc, flow, now, opts);
    const { f } = nf;
    if (dest.svc !== svc || !dest.available)
      throw new CoreError("EINVAL", "schedule", `Destination ${dest.endpoint} is not in service ${svc.id}`);
    checkPort(dport, "real-server port", "schedule");
    if (svc.key.kind !== "vip" || svc.key.port === 0 || dport === 0) return { error: "no-destination" };
    t.wheel.start(now);
    let tpl: BoundConn | undefined;
    if (svc.options.persistent) {
      if (svc.options.pe !== "" && (f.protocol !== "udp" || nf.peData === undefined)) return { error: "pe-no-data" };
      const network = clientNetwork(svc, f.saddr);
      const vport = svc.key.port;
      const key = templateKey(svc, network, vport, svc.options.pe !== "" ? nf.peData : undefined);
      let found = t.templates.get(key);
      // ip_vs_check_template(ct, dest): a template pinning another real server is replaced.
      if (
        found !== undefined &&
        !(t.tryBind(found) && templateUsable(found.dest, t.options.expireQuiescentTemplate) && found.dest === dest)
      ) {
        this.#invalidateTemplate(found);
        found = undefined;
      }
      if (!this.reclaimer.makeRoom((found === undefined ? 1 : 0) + (nf.ops ? 0 : 1), now)) return this.#refuse();
      tpl =
        found !== undefined && isBound(found)
          ? found
          : this.#newTemplate(svc, f, network, vport, dport, dest, key, nf, now);
    } else if (!nf.ops && !this.reclaimer.makeRoom(1, now)) return this.#refuse();
    const c = this.#newConn(nf, dest, dport, now, tpl);
    if (tpl !== undefined) t.rearm(tpl, now);
    this.#countConn(dest);
    return c;
  }

  /** Every check of schedule()'s arguments, before the scheduler runs. */
  #admit(svc: VirtualService, flow: Flow, now: number, opts: ScheduleOptions | undefined): NewFlow {
    const op: CoreOp = "schedule";
    checkNow(now, op);
    if (!this.#known.has(svc)) {
      // Checked once per service object; a service deleted later has no destinations left, so
      // scheduling on it finds none.
      if (!(svc instanceof VirtualService) || this.#t.services.get(svc.key) !== svc)
        throw new CoreError("ESRCH", op, `Service "${String(svc?.id)}" is not in the service table`);
      this.#known.add(svc);
    }
    this.#checkFlow(svc, flow);
    const f = flow;
    const ca = this.#flowCa;
    const va = this.#flowVa;
    const fwmark = checkFwmark(opts?.fwmark ?? (svc.key.kind === "fwmark" ? svc.key.fwmark : 0), op);
    let laddr = "";
    let lport = 0;
    if (opts?.laddr !== undefined || opts?.lport !== undefined) {
      laddr = checkAddr(opts.laddr, "local address", op);
      lport = checkPort(opts.lport, "local port", op);
    }
    const peData = opts?.peData;
    if (peData !== undefined && (typeof peData !== "string" || peData.length === 0 || peData.length > PE_DATA_MAXLEN))
      throw new CoreError("EINVAL", op, `Invalid persistence engine data "${String(peData).slice(0, 40)}"`);
    return { f, ca, va, fwmark, laddr, lport, ops: svc.options.ops && f.protocol === "udp", peData };
  }

  /** Checks the flow and leaves its parsed addresses in #flowCa / #flowVa (no allocation). */
  #checkFlow(svc: VirtualService, flow: Flow): void {
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
    const t = this.#t;
    const old = t.index.findIn(protoCode(protocol), ca, flow.sport, va, flow.dport);
    if (old !== undefined) {
      // A synced entry whose destination is still not here is replaced by the new flow, as is
      // an entry whose destination was removed under expire_nodest_conn.
      if (!t.tryBind(old) || (t.options.expireNodestConn && !old.dest.available)) t.remove(old, undefined);
      else
        throw new CoreError(
          "EEXIST",
          op,
          `Connection ${protocol} ${flow.saddr}:${flow.sport} → ${flow.daddr}:${flow.dport} already exists`,
        );
    }
    this.#flowCa = ca;
    this.#flowVa = va;
  }

  #checkLocal(dest: Dest, laddr: string, lport: number, nf: NewFlow): void {
    if (laddr === "") return;
    if (dest.fwd !== "fullnat")
      throw new CoreError("EINVAL", "schedule", `Local address "${laddr}" given for a ${dest.fwd} destination`);
    if (this.#t.index.findOut(protoCode(nf.f.protocol), this.#t.index.destKey(dest), dest.port, addrKey(laddr), lport))
      throw new CoreError("EEXIST", "schedule", `Local endpoint ${laddr}:${lport} to ${dest.endpoint} is in use`);
  }

  #refuse(): ScheduleError {
    this.#t.dropped++;
    return { error: "table-full" };
  }

  #countConn(dest: Dest): void {
    dest.stats.conns++;
    if (dest.svc) dest.svc.stats.conns++;
    this.#t.services.stats.conns++;
  }

  #newConn(nf: NewFlow, dest: Dest, dport: number, now: number, tpl: Conn | undefined): BoundConn {
    const t = this.#t;
    const { f, ops, laddr, lport, fwmark } = nf;
    const p = protoCode(f.protocol);
    let flags = CF_INACTIVE | (f.family === 6 ? CF_V6 : 0) | (ops ? CF_ONE_PACKET : 0);
    if (dest.fwd !== "masq" && dest.fwd !== "fullnat") flags |= CF_NOOUTPUT;
    const state = p === 1 ? UDP_S_NORMAL : 0;
    const x: ConnExtra | undefined = fwmark !== 0 || laddr !== "" ? connExtra({ laddr, lport, fwmark }) : undefined;
    const bits = packBits(flags, f.protocol, dest.fwd, state);
    const c = new Conn(t.store.slots, bits, nf.ca, f.sport, nf.va, f.dport, dest, dport, x);
    const tmo = p === 1 ? t.timeouts.udpMs : NEW_CONN_TIMEOUT_MS;
    dest.bind("inactive");
    if (ops) {
      // One-packet scheduling: the kernel never hashes the entry and its timer fires at once.
      c.control = tpl;
      t.freeze(c, now, tmo);
      dest.unbind("inactive");
      t.services.released(dest);
      return this.#bound(c);
    }
    t.insert(c, now, tmo);
    t.link(c);
    if (tpl !== undefined) t.control(c, tpl);
    return this.#bound(c);
  }

  #newTemplate(
    svc: VirtualService,
    f: Flow,
    network: string,
    vport: number,
    dport: number,
    dest: Dest,
    key: string,
    nf: NewFlow,
    now: number,
  ): BoundConn {
    const fwmark = nf.fwmark;
    // A fwmark template carries the mark where the virtual address would be (as the kernel's).
    const va: AddrKey =
      svc.key.kind === "fwmark"
        ? svc.family === 4
          ? svc.key.fwmark | 0
          : markAsIpv6(svc.key.fwmark)
        : addrKey(f.daddr);
    const flags = CF_TEMPLATE | CF_INACTIVE | (svc.family === 6 ? CF_V6 : 0);
    const peData = svc.options.pe !== "" ? nf.peData : undefined;
    const x = connExtra({
      fwmark,
      tkey: key,
      ...(peData !== undefined ? { peName: svc.options.pe, peData } : {}),
    });
    const bits = packBits(flags, f.protocol, dest.fwd, 0);
    const c = new Conn(this.#t.store.slots, bits, addrKey(network), 0, va, vport, dest, dport, x);
    dest.bind("template");
    this.#t.insert(c, now, svc.options.timeout * 1000);
    this.#t.templates.set(key, c);
    return this.#bound(c);
  }

  /** ip_vs_check_template's invalidation: unreachable, shown with ports 65535, left to expire. */
  #invalidateTemplate(tpl: Conn): void {
    const key = tpl._x?.tkey;
    if (key !== undefined && this.#t.templates.get(key) === tpl) this.#t.templates.delete(key);
    tpl._invalidate();
  }

  /** A new entry is bound by construction; the guard keeps the type honest. */
  #bound(c: Conn): BoundConn {
    if (!isBound(c)) throw new CoreError("EINVAL", "schedule", "Scheduled entry has no destination");
    return c;
  }
}
