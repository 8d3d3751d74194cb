// The table side of connection sync (the kernel's ip_vs_sync.c): what a sync backup does with
// each connection record it receives (ip_vs_proc_conn), and the record a sync master sends for
// an entry. The wire format, the multicast sockets and when to send are the sync daemon's; this
// file only turns records into entries and entries into records.

import { canonicalIp } from "../addr.ts";
import type { Dest, FwdMethod } from "../dest.ts";
import { CoreError, type CoreOp } from "../errors.ts";
import { PE_DATA_MAXLEN } from "../pe/sip-callid.ts";
import type { Protocol } from "../sched/types.ts";
import type { VirtualService } from "../service.ts";
import { addrKey } from "./addr-key.ts";
import {
  CF_INACTIVE,
  CF_NOOUTPUT,
  CF_TEMPLATE,
  CF_V6,
  Conn,
  type ConnExtra,
  connExtra,
  packBits,
  protoCode,
} from "./conn.ts";
import { checkAddr, checkByte, checkFwmark, checkNow, checkPort, checkProtocol, checkTimeoutS } from "./conn-args.ts";
import type { ConnEntries } from "./conn-entries.ts";
import { SCTP_S_COUNT } from "./sctp-states.ts";
import { TCP_S_COUNT } from "./tcp-states.ts";
import { templateKey } from "./template.ts";
import { UDP_S_COUNT } from "./udp-states.ts";

/**
 * One connection record as a sync backup receives it (ip_vs_sync.c v0/v1 messages), decoded:
 * the sync daemon fills it from the wire and hands it to ConnTable.ingestSynced; a sync master
 * gets one per entry from syncedConnOf.
 */
export interface SyncedConn {
  protocol: Protocol;
  /** Client address, canonical text. A template's is the client network (already masked). */
  caddr: string;
  /** Client port; a template's is 0 (IP_VS_CONN_F_NO_CPORT on the wire). */
  cport: number;
  /** Virtual address and port (a fwmark service's: any address of the family, and fwmark set). */
  vaddr: string;
  vport: number;
  /** Real-server address and port. */
  daddr: string;
  dport: number;
  /** Firewall mark (v1 records), 0 for none. */
  fwmark: number;
  /**
   * The sender's forwarding method (IP_VS_CONN_F_FWD_MASK: masq 0, local 1, tunnel 2, droute 3;
   * fullnat is a tvs extension). Used while the entry is unbound; once bound the entry takes its
   * destination's method, as ip_vs_bind_dest does for a synced entry.
   */
  fwd: FwdMethod;
  /** IP_VS_CONN_F_TEMPLATE: a persistence template. */
  template: boolean;
  /** IP_VS_CONN_F_INACTIVE: counted as inactive on the destination (templates always are). */
  inactive: boolean;
  /** IP_VS_CONN_F_NOOUTPUT: replies bypass the director (kept while unbound, as the kernel does). */
  noOutput: boolean;
  /** Protocol state number (tcp-states.ts, udp-states.ts, sctp-states.ts); 0 for templates. */
  state: number;
  /** Timeout in seconds; 0 = the state's timeout (180 s for a template), as for v0 records. */
  timeoutS: number;
  /** FULLNAT local endpoint (a tvs extension of the record); both or neither. */
  laddr?: string;
  lport?: number;
  /**
   * A template keyed by a persistence engine (the PE_NAME and PE_DATA options): the engine's name
   * ("sip") and its key (the Call-ID, one character per byte); both or neither.
   */
  peName?: string;
  peData?: string;
}

/** What ingestSynced did with a record. */
export type SyncIngestResult =
  | {
      /** "created": a new entry; "updated": an existing entry took the record's state and timer. */
      outcome: "created" | "updated";
      /** The entry; conn.dest is undefined while its service or real server is not here. */
      conn: Conn;
    }
  /** The table is at its limit: no entry made, counted in ConnTable.dropped. */
  | { outcome: "refused"; reason: "table-full" };

/** Timeout a synced template gets when the record carries none (ip_vs_proc_conn: 3 minutes). */
const SYNCED_TEMPLATE_TIMEOUT_MS = 180_000;
const STATE_COUNT = [TCP_S_COUNT, UDP_S_COUNT, SCTP_S_COUNT];
const FWD: readonly FwdMethod[] = ["masq", "local", "tunnel", "droute", "fullnat"];

/** Check a record where it enters; throws CoreError EINVAL naming the field. */
function checkRecord(rec: SyncedConn, op: CoreOp): void {
  if (rec === null || typeof rec !== "object") throw new CoreError("EINVAL", op, `Invalid sync entry "${String(rec)}"`);
  const protocol = checkProtocol(rec.protocol, op);
  checkPort(rec.cport, "client port", op);
  checkPort(rec.vport, "virtual port", op);
  checkPort(rec.dport, "real-server port", op);
  for (const [k, v] of [
    ["client address", rec.caddr],
    ["virtual address", rec.vaddr],
    ["real-server address", rec.daddr],
  ] as const)
    if (canonicalIp(checkAddr(v, k, op)) !== v) throw new CoreError("EINVAL", op, `Invalid ${k} "${v}"`);
  checkFwmark(rec.fwmark, op);
  if (!FWD.includes(rec.fwd)) throw new CoreError("EINVAL", op, `Invalid forwarding method "${String(rec.fwd)}"`);
  for (const k of ["template", "inactive", "noOutput"] as const)
    if (typeof rec[k] !== "boolean") throw new CoreError("EINVAL", op, `Invalid ${k} flag "${String(rec[k])}"`);
  checkByte(rec.state, 0, (STATE_COUNT[protoCode(protocol)] ?? 1) - 1, `${protocol} state`, op);
  checkTimeoutS(rec.timeoutS, "timeout", op);
  if (rec.laddr !== undefined || rec.lport !== undefined) {
    if (canonicalIp(checkAddr(rec.laddr, "local address", op)) !== rec.laddr)
      throw new CoreError("EINVAL", op, `Invalid local address "${rec.laddr}"`);
    checkPort(rec.lport, "local port", op);
  }
  if (rec.peName !== undefined || rec.peData !== undefined) {
    if (typeof rec.peName !== "string" || rec.peName === "" || rec.peName.length > 16)
      throw new CoreError("EINVAL", op, `Invalid persistence engine "${String(rec.peName)}"`);
    if (typeof rec.peData !== "string" || rec.peData === "" || rec.peData.length > PE_DATA_MAXLEN)
      throw new CoreError("EINVAL", op, `Invalid persistence engine data "${String(rec.peData).slice(0, 40)}"`);
    if (!rec.template)
      throw new CoreError("EINVAL", op, "Persistence engine data on a connection that is not a template");
  }
}

/** Key of a template whose service is not here (found again by later records of it). */
function unboundTemplateKey(rec: SyncedConn): string {
  const base = `unbound|${rec.protocol}|${rec.fwmark}|${rec.vaddr}|${rec.vport}|${rec.caddr}`;
  return rec.peData === undefined ? base : `${base}|${rec.peName}:${rec.peData}`;
}

/** The key schedule() finds this synced template by (templateKey with the record's engine key). */
function boundTemplateKey(svc: VirtualService, rec: SyncedConn): string {
  return (
    templateKey(
      svc,
      rec.caddr,
      rec.vport,
      rec.peData !== undefined && svc.options.pe === rec.peName ? rec.peData : undefined,
    ) + (rec.peData !== undefined && svc.options.pe !== rec.peName ? `|${rec.peName}:${rec.peData}` : "")
  );
}

/** See ConnTable.ingestSynced. */
export function ingestSynced(t: ConnEntries, rec: SyncedConn, now: number): SyncIngestResult {
  const op: CoreOp = "conn";
  checkNow(now, op);
  checkRecord(rec, op);
  const p = protoCode(rec.protocol);
  const svc = t.services.lookup(rec.protocol, rec.vaddr, rec.vport, rec.fwmark);
  const dest = svc && (svc.findDest(rec.daddr, rec.dport) ?? svc.findDest(rec.daddr, 0));
  const tmo =
    rec.timeoutS > 0
      ? rec.timeoutS * 1000
      : rec.template
        ? SYNCED_TEMPLATE_TIMEOUT_MS
        : (t.timeouts.ms(p, rec.state) ?? 0);
  const ca = addrKey(rec.caddr);
  const va = addrKey(rec.vaddr);
  let c: Conn | undefined;
  let key = "";
  if (rec.template) {
    key = svc !== undefined ? boundTemplateKey(svc, rec) : unboundTemplateKey(rec);
    c = t.templates.get(key) ?? (svc !== undefined ? t.templates.get(unboundTemplateKey(rec)) : undefined);
  } else c = t.index.findIn(p, ca, rec.cport, va, rec.vport);

  if (c === undefined) {
    if (!t.hasRoom(1)) {
      t.dropped++;
      return { outcome: "refused", reason: "table-full" };
    }
    c = newSynced(t, rec, dest, key);
    t.insert(c, now, tmo);
    if (rec.template) t.templates.set(key, c);
    else t.link(c);
    return { outcome: "created", conn: c };
  }

  // Update in place (ip_vs_proc_conn on a known entry): bind it if its destination has appeared,
  // move its activity between the destination's counts as the record says, take its state and
  // timeout.
  if (c.dest === undefined && dest !== undefined) {
    t.bindTo(c, dest);
    if (c.template && svc !== undefined) rekeyTemplate(t, c, svc, rec);
  }
  if (!c.template && c.inactive !== rec.inactive) {
    if (rec.inactive) {
      c.dest?.becameInactive();
      c._set(CF_INACTIVE);
    } else {
      c.dest?.becameActive();
      c._clear(CF_INACTIVE);
    }
  }
  c._setState(rec.state);
  t.retime(c, tmo, now);
  return { outcome: "updated", conn: c };
}

function newSynced(t: ConnEntries, rec: SyncedConn, dest: Dest | undefined, key: string): Conn {
  const v6 = rec.caddr.includes(":");
  let flags = (rec.inactive || rec.template ? CF_INACTIVE : 0) | (v6 ? CF_V6 : 0);
  if (rec.template) flags |= CF_TEMPLATE;
  const fwd = dest?.fwd ?? rec.fwd;
  if (dest !== undefined ? fwd !== "masq" && fwd !== "fullnat" : rec.noOutput) flags |= CF_NOOUTPUT;
  const laddr = rec.laddr ?? "";
  const x: ConnExtra | undefined =
    rec.template || rec.fwmark !== 0 || dest === undefined || laddr !== ""
      ? connExtra({
          fwmark: rec.fwmark,
          tkey: key,
          daddr: dest === undefined ? rec.daddr : "",
          laddr,
          lport: rec.lport ?? 0,
          ...(rec.peData !== undefined && rec.peName !== undefined ? { peName: rec.peName, peData: rec.peData } : {}),
        })
      : undefined;
  const bits = packBits(flags, rec.protocol, fwd, rec.state);
  const c = new Conn(
    t.store.slots,
    bits,
    addrKey(rec.caddr),
    rec.cport,
    addrKey(rec.vaddr),
    rec.vport,
    dest,
    rec.dport,
    x,
  );
  dest?.bind(rec.template ? "template" : rec.inactive ? "inactive" : "active");
  return c;
}

/** A template bound after its service appeared moves to the service's template key. */
function rekeyTemplate(t: ConnEntries, c: Conn, svc: VirtualService, rec: SyncedConn): void {
  const x = t.extra(c);
  const key = boundTemplateKey(svc, rec);
  if (x.tkey === key) return;
  if (t.templates.get(x.tkey) === c) t.templates.delete(x.tkey);
  x.tkey = key;
  t.templates.set(key, c);
}

/**
 * The record a sync master sends for an entry (ip_vs_sync_conn): its addresses, ports, method,
 * flags, state and full timeout in seconds (not the time left, as the kernel sends cp->timeout).
 */
export function syncedConnOf(c: Conn): SyncedConn {
  const rec: SyncedConn = {
    protocol: c.protocol,
    caddr: c.caddr,
    cport: c.cport,
    vaddr: c.vaddr,
    vport: c.vport,
    daddr: c.daddr,
    dport: c.dport,
    fwmark: c.fwmark,
    fwd: c.fwd,
    template: c.template,
    inactive: c.inactive,
    noOutput: c._has(CF_NOOUTPUT),
    state: c.template ? 0 : c.state,
    timeoutS: Math.round(c.timeoutMs / 1000),
  };
  if (c.laddr !== "") {
    rec.laddr = c.laddr;
    rec.lport = c.lport;
  }
  if (c.peName !== "") {
    rec.peName = c.peName;
    rec.peData = c.peData;
  }
  return rec;
}
