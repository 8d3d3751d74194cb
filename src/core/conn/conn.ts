// One entry of the connection table (the kernel's struct ip_vs_conn): who the client is, which
// virtual service it hit, which real server it was bound to and how packets reach it, its
// protocol state and when it expires. Entries are created, changed and removed only by ConnTable;
// a Conn is a handle the data planes keep and read. An entry received from a sync master whose
// service or real server is not (yet) here is kept unbound (dest undefined, as the kernel keeps
// cp->dest NULL) until one appears; the table never hands an unbound entry to a data plane.
//
// Memory layout: a million live entries must fit in well under 200 MB, so a Conn carries only
// what cannot be derived. Numbers that change on every packet (expiry, timeout) live in typed
// arrays owned by the table and indexed by the entry's slot; protocol, forwarding method, state
// and flags are packed into one small integer; an IPv4 client or virtual address is held as a
// 32-bit integer rather than a string; the FULLNAT local endpoint and the firewall mark sit in a
// side record that exists only when used. The getters below turn all of that back into the
// documented fields.

import { type Family, formatIpv4 } from "../addr.ts";
import type { Dest, FwdMethod } from "../dest.ts";
import type { Protocol } from "../sched/types.ts";
import type { VirtualService } from "../service.ts";
import { SCTP_STATE_NAMES } from "./sctp-states.ts";
import { TCP_STATE_NAMES } from "./tcp-states.ts";
import { UDP_STATE_NAMES } from "./udp-states.ts";

/** Kernel conn flags we model (IP_VS_CONN_F_*), in the low byte of Conn._bits. */
export const CF_TEMPLATE = 0x01;
export const CF_INACTIVE = 0x02;
export const CF_NOOUTPUT = 0x04;
export const CF_ONE_PACKET = 0x08;
/** A template invalidated by ip_vs_check_template: unreachable, left to expire. */
export const CF_INVALID = 0x10;
/** IPv6 entry. */
export const CF_V6 = 0x20;
/** Entry is in the table (false for one-packet entries and after removal). */
export const CF_LIVE = 0x40;

export const PROTOCOLS: readonly Protocol[] = ["tcp", "udp", "sctp"];
export const FWD_METHODS: readonly FwdMethod[] = ["masq", "local", "tunnel", "droute", "fullnat"];

const PROTO_SHIFT = 8;
const FWD_SHIFT = 10;
const STATE_SHIFT = 16;

export function protoCode(p: Protocol): number {
  return p === "tcp" ? 0 : p === "udp" ? 1 : 2;
}

/** Per-slot numeric storage shared by a table's entries (see conn-store.ts). */
export interface ConnSlots {
  /** Absolute expiry time, ms on the injected clock. */
  exp: Float64Array;
  /** Current timeout, ms. */
  tmo: Float64Array;
}

/** Rarely used fields, allocated only when an entry needs them. */
export interface ConnExtra {
  laddr: string;
  lport: number;
  fwmark: number;
  /** Expiry and timeout frozen when the entry left the table. */
  deadExp: number;
  deadTmo: number;
  /** @internal A template's key in the table's template map ("" otherwise). */
  tkey: string;
  /** A template keyed by a persistence engine: its name and key (SIP: the Call-ID); "" otherwise. */
  peName: string;
  peData: string;
  /** Real-server address of an unbound entry ("" once bound: the destination's address then). */
  daddr: string;
}

/** A fresh side record. */
export function connExtra(over: Partial<ConnExtra> = {}): ConnExtra {
  return {
    laddr: "",
    lport: 0,
    fwmark: 0,
    deadExp: 0,
    deadTmo: 0,
    tkey: "",
    daddr: "",
    peName: "",
    peData: "",
    ...over,
  };
}

export class Conn {
  /** @internal Storage of the owning table. */
  _s: ConnSlots;
  /** @internal Slot index in the owning table; -1 when not in a table. */
  _id: number;
  /** @internal Flags, protocol, forwarding method and state packed (see the shifts above). */
  _bits: number;
  /** @internal Client address: 32-bit integer for IPv4, canonical text for IPv6. */
  _ca: number | string;
  readonly cport: number;
  /** @internal Virtual address: 32-bit integer for IPv4, canonical text for IPv6. */
  _va: number | string;
  /** @internal Virtual port (65535 on an invalidated template). */
  _vp: number;
  /**
   * The real server this entry is bound to (never changes once bound; may be removed from its
   * service). Undefined only for an entry from connection sync whose destination is not here;
   * lookups and schedule() return bound entries only (BoundConn). Written only by the table
   * (a plain field rather than a getter: it is read on every packet).
   */
  dest: Dest | undefined;
  /** The persistence template this entry hangs off, if the service is persistent. */
  control: Conn | undefined;
  /** Data-plane slot (sockets, cached MACs, ...); core never reads it. */
  plane: unknown;
  /** @internal Real-server port. */
  _dp: number;
  /** @internal */
  _x: ConnExtra | undefined;

  /** @internal Only ConnTable creates entries. */
  constructor(
    s: ConnSlots,
    bits: number,
    ca: number | string,
    cport: number,
    va: number | string,
    vport: number,
    dest: Dest | undefined,
    dport: number,
    x: ConnExtra | undefined,
  ) {
    this._s = s;
    this._id = -1;
    this._bits = bits;
    this._ca = ca;
    this.cport = cport;
    this._va = va;
    this._vp = vport;
    this.dest = dest;
    this._dp = dport;
    this.control = undefined;
    this.plane = undefined;
    this._x = x;
  }

  get protocol(): Protocol {
    return protocolOf(this._proto);
  }
  get family(): Family {
    return this._bits & CF_V6 ? 6 : 4;
  }
  /** Client address (a template's is the client network: the address masked by the service netmask). */
  get caddr(): string {
    const a = this._ca;
    return typeof a === "number" ? formatIpv4(a >>> 0) : a;
  }
  get vport(): number {
    return this._vp;
  }
  get vaddr(): string {
    const a = this._va;
    return typeof a === "number" ? formatIpv4(a >>> 0) : a;
  }
  get daddr(): string {
    return this.dest !== undefined ? this.dest.addr : (this._x?.daddr ?? "");
  }
  /**
   * Real-server port. A connection's is fixed when created (the dest's port, or the packet's
   * for port-0 and fwmark services, as the kernel picks it); an invalidated template shows 65535.
   */
  get dport(): number {
    return this._dp;
  }
  /** FULLNAT local address ("" otherwise). */
  get laddr(): string {
    return this._x?.laddr ?? "";
  }
  /** FULLNAT local port (0 otherwise). */
  get lport(): number {
    return this._x?.lport ?? 0;
  }
  /** The virtual service, via the destination (as the kernel's dest->svc); undefined while unbound. */
  get svc(): VirtualService | undefined {
    return this.dest?.svc;
  }
  /** Forwarding method fixed when the entry was bound (the kernel copies it into the conn flags). */
  get fwd(): FwdMethod {
    return fwdOf((this._bits >>> FWD_SHIFT) & 7);
  }
  get template(): boolean {
    return (this._bits & CF_TEMPLATE) !== 0;
  }
  /** One-packet scheduling entry (ipvsadm -o, UDP): never stored in the table. */
  get onePacket(): boolean {
    return (this._bits & CF_ONE_PACKET) !== 0;
  }
  /** Counted as inactive on its destination (every state but ESTABLISHED). */
  get inactive(): boolean {
    return (this._bits & CF_INACTIVE) !== 0;
  }
  /** Still in the table. */
  get live(): boolean {
    return (this._bits & CF_LIVE) !== 0;
  }
  get fwmark(): number {
    return this._x?.fwmark ?? 0;
  }
  /** Persistence engine of a template keyed by one ("sip"), "" otherwise. */
  get peName(): string {
    return this._x?.peName ?? "";
  }
  /** The persistence engine's key of this template (SIP: the Call-ID), "" otherwise. */
  get peData(): string {
    return this._x?.peData ?? "";
  }
  /** Protocol state number (tcp-states.ts, udp-states.ts, sctp-states.ts). Change it with ConnTable.setState. */
  get state(): number {
    return (this._bits >>> STATE_SHIFT) & 0xff;
  }
  get stateName(): string {
    if (this._bits & CF_TEMPLATE) return "NONE";
    const p = this._proto;
    const names = p === 0 ? TCP_STATE_NAMES : p === 1 ? UDP_STATE_NAMES : SCTP_STATE_NAMES;
    return names[this.state] ?? "ERR!";
  }
  /** Current timeout in ms (the state's timeout, or the persistence timeout for a template). */
  get timeoutMs(): number {
    return this._id >= 0 ? (this._s.tmo[this._id] ?? 0) : (this._x?.deadTmo ?? 0);
  }
  /** When the entry expires, ms on the injected clock. */
  get expiresAt(): number {
    return this._id >= 0 ? (this._s.exp[this._id] ?? 0) : (this._x?.deadExp ?? 0);
  }

  // Typed access to the packed bits for the table's modules (the only readers of _bits).

  /** @internal Protocol code (protoCode). */
  get _proto(): number {
    return (this._bits >>> PROTO_SHIFT) & 3;
  }
  /** @internal Whether every flag in `f` is set. */
  _has(f: number): boolean {
    return (this._bits & f) === f;
  }
  /** @internal */
  _set(f: number): void {
    this._bits |= f;
  }
  /** @internal */
  _clear(f: number): void {
    this._bits &= ~f;
  }
  /** @internal */
  _setState(state: number): void {
    this._bits = (this._bits & ~(0xff << STATE_SHIFT)) | (state << STATE_SHIFT);
  }
  /** @internal Bind an unbound entry (sync) to a destination: it takes the destination's method. */
  _bindTo(dest: Dest): void {
    this.dest = dest;
    const noOutput = dest.fwd !== "masq" && dest.fwd !== "fullnat" ? CF_NOOUTPUT : 0;
    this._bits =
      (this._bits & ~((7 << FWD_SHIFT) | CF_NOOUTPUT)) | (FWD_METHODS.indexOf(dest.fwd) << FWD_SHIFT) | noOutput;
    if (this._x !== undefined) this._x.daddr = "";
  }
  /** @internal Invalidated template: shown with ports 65535 (ip_vs_check_template). */
  _invalidate(): void {
    this._bits |= CF_INVALID;
    this._vp = 0xffff;
    this._dp = 0xffff;
  }
}

/** An entry bound to a destination: what lookups and schedule() return to data planes. */
export type BoundConn = Conn & { readonly dest: Dest };

export function isBound(c: Conn): c is BoundConn {
  return c.dest !== undefined;
}

function protocolOf(code: number): Protocol {
  return code === 0 ? "tcp" : code === 1 ? "udp" : "sctp";
}

function fwdOf(code: number): FwdMethod {
  return FWD_METHODS[code] ?? "masq";
}

/** @internal Pack the immutable part of _bits. */
export function packBits(flags: number, protocol: Protocol, fwd: FwdMethod, state: number): number {
  return (
    flags | (protoCode(protocol) << PROTO_SHIFT) | (FWD_METHODS.indexOf(fwd) << FWD_SHIFT) | (state << STATE_SHIFT)
  );
}
