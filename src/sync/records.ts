// Between the wire's connection records (codec.ts's SyncConn: IP protocol numbers and kernel flag
// bits) and the table's synced-entry records (core's SyncedConn: names and booleans).
//
// Sending: the forwarding bits are the kernel's (MASQ 0, LOCALNODE 1, TUNNEL 2, DROUTE 3); a
// FULLNAT entry says MASQ and carries its local endpoint in tvs's optional option. A fwmark
// service's template goes with protocol 0 (IPPROTO_IP) and the mark written as its virtual
// address, as the kernel builds such templates.
//
// Receiving, as ip_vs_proc_sync_conn filters: only the flags a backup may take
// (IP_VS_CONN_F_BACKUP_MASK); a connection whose protocol tvs does not forward, or whose state is
// out of that protocol's table, is skipped; so is a record with persistence-engine data of an engine
// tvs has not (only "sip" exists, as a kernel without that engine module skips it); a SIP
// template's PE_NAME / PE_DATA become its engine name and key; a template's state is
// always NONE. A template of protocol 0 needs its fwmark (v1) to find its service; the entry
// keeps "tcp" as its protocol, which only listings show.

import { SCTP_S_COUNT } from "../core/conn/sctp-states.ts";
import { TCP_S_COUNT } from "../core/conn/tcp-states.ts";
import { UDP_S_COUNT } from "../core/conn/udp-states.ts";
import type { FwdMethod } from "../core/dest.ts";
import type { Protocol } from "../core/sched/types.ts";
import {
  F_BACKUP_MASK,
  F_DROUTE,
  F_FWD_MASK,
  F_INACTIVE,
  F_LOCALNODE,
  F_MASQ,
  F_NOOUTPUT,
  F_TEMPLATE,
  F_TUNNEL,
  type SyncConn,
} from "./codec.ts";
import type { SyncedConn } from "./synced-conn.ts";

const PROTO_NUMBER: Record<Protocol, number> = { tcp: 6, udp: 17, sctp: 132 };
const PROTO_NAME = new Map<number, Protocol>([
  [6, "tcp"],
  [17, "udp"],
  [132, "sctp"],
]);
const STATE_COUNT: Record<Protocol, number> = { tcp: TCP_S_COUNT, udp: UDP_S_COUNT, sctp: SCTP_S_COUNT };
const FWD_BITS: Record<FwdMethod, number> = {
  masq: F_MASQ,
  local: F_LOCALNODE,
  tunnel: F_TUNNEL,
  droute: F_DROUTE,
  fullnat: F_MASQ,
};
const FWD_OF_BITS: (FwdMethod | undefined)[] = ["masq", "local", "tunnel", "droute"];

/** Why a received record was not ingested. */
export type RecordRefusal = "protocol" | "state" | "pe" | "fwd";

/** A fwmark template's virtual address: the mark written as an address of the family. */
export function markAddress(mark: number, family: 4 | 6): string {
  if (family === 4) return `${mark >>> 24}.${(mark >>> 16) & 255}.${(mark >>> 8) & 255}.${mark & 255}`;
  const hi = (mark >>> 16).toString(16);
  const lo = (mark & 0xffff).toString(16);
  return mark >>> 16 === 0 ? `::${lo}` : `::${hi}:${lo}`;
}

function isFwmarkTemplate(r: SyncedConn, family: 4 | 6): boolean {
  return r.template && r.fwmark !== 0 && r.vport === 0 && r.vaddr === markAddress(r.fwmark, family);
}

/** The wire record for a table record. */
export function toWire(r: SyncedConn): SyncConn {
  const family = r.caddr.includes(":") ? 6 : 4;
  let flags = FWD_BITS[r.fwd] ?? F_MASQ;
  if (r.noOutput) flags |= F_NOOUTPUT;
  if (r.inactive || r.template) flags |= F_INACTIVE;
  if (r.template) flags |= F_TEMPLATE;
  const c: SyncConn = {
    family,
    protocol: isFwmarkTemplate(r, family) ? 0 : PROTO_NUMBER[r.protocol],
    flags,
    state: r.template ? 0 : r.state,
    cport: r.cport,
    vport: r.vport,
    dport: r.dport,
    fwmark: r.fwmark,
    timeoutS: r.timeoutS,
    caddr: r.caddr,
    vaddr: r.vaddr,
    daddr: r.daddr,
  };
  if (r.laddr !== undefined && r.laddr !== "" && r.lport !== undefined) c.local = { addr: r.laddr, port: r.lport };
  if (r.peData !== undefined && r.peName !== undefined) {
    c.peName = r.peName;
    c.peData = Uint8Array.from(r.peData, (ch) => ch.charCodeAt(0) & 0xff);
  }
  return c;
}

/** The table record for a received wire record, or why it is skipped. */
export function fromWire(c: SyncConn): SyncedConn | RecordRefusal {
  const flags = c.flags & F_BACKUP_MASK;
  const template = (flags & F_TEMPLATE) !== 0;
  let protocol = PROTO_NAME.get(c.protocol);
  if (protocol === undefined) {
    if (!template || c.fwmark === 0) return "protocol";
    protocol = "tcp";
  }
  if (!template && c.state >= STATE_COUNT[protocol]) return "state";
  // A record with engine data names its engine (PE_NAME); only the SIP engine exists.
  if (c.peData !== undefined && c.peData.length > 0 && (c.peName !== "sip" || !template)) return "pe";
  let fwd = FWD_OF_BITS[flags & F_FWD_MASK];
  if (fwd === undefined) return "fwd";
  if (fwd === "masq" && c.local !== undefined) fwd = "fullnat";
  const r: SyncedConn = {
    protocol,
    caddr: c.caddr,
    cport: c.cport,
    vaddr: c.vaddr,
    vport: c.vport,
    daddr: c.daddr,
    dport: c.dport,
    fwmark: c.fwmark,
    fwd,
    template,
    inactive: (flags & F_INACTIVE) !== 0,
    noOutput: (flags & F_NOOUTPUT) !== 0,
    state: template ? 0 : c.state,
    timeoutS: c.timeoutS,
  };
  if (c.local !== undefined) {
    r.laddr = c.local.addr;
    r.lport = c.local.port;
  }
  if (c.peData !== undefined && c.peData.length > 0 && c.peName !== undefined) {
    r.peName = c.peName;
    r.peData = String.fromCharCode(...c.peData);
  }
  return r;
}
