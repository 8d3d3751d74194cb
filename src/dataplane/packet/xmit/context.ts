// What a forwarding method needs from the pipeline: emitting the rewritten frame towards a next
// hop (MAC resolution, padding, queueing), sending ICMP errors, per-connection data-plane state
// and per-destination cached addresses. Implemented by Pipeline; the methods stay small.

import { parseIpv4, parseIpv6Groups } from "../../../core/addr.ts";
import type { BoundConn, Conn } from "../../../core/conn/conn.ts";
import type { ConnTable } from "../../../core/conn/conn-table.ts";
import type { Dest } from "../../../core/dest.ts";
import { decTtl4 } from "../codec/ipv4.ts";
import { ip6Bytes } from "../codec/ipv6.ts";
import type { DropReason, Verdict } from "../counters.ts";
import type { Pkt } from "../pkt.ts";
import type { SynproxyConn } from "../synproxy/seq-adjust.ts";

/**
 * A forwarding method as bound to a connection (the kernel's cp->packet_xmit, set once by
 * ip_vs_bind_xmit): how a client's packet goes to the real server, and how a reply comes back
 * when replies pass the director.
 */
export interface Forwarder {
  /** The direction a client's TCP segment drives the state with: "in-only" when replies bypass us. */
  readonly clientDir: "in" | "in-only";
  /** Client → real server. */
  readonly in: (ctx: TunContext, p: Pkt, conn: BoundConn) => Verdict;
  /** Real server → client (NAT, FULLNAT); undefined when replies bypass the director. */
  readonly out: ((ctx: XmitContext, p: Pkt, conn: BoundConn) => Verdict) | undefined;
}

/** What the tunnel method needs beyond XmitContext. */
export interface TunContext extends XmitContext {
  /** The director's own IPv6 address on the interface, undefined when it has none. */
  readonly addr6: Uint8Array | undefined;
  /** A fresh IPv4 ID for an outer header that will be fragmented (the kernel's ip_select_ident). */
  nextIpId(): number;
}

/** Per-connection data-plane state (Conn.plane): numeric addresses and the client's next hop. */
export interface ConnPlane {
  /** The forwarder bound to the connection (xmit/forwarders.ts), once the plane has bound it. */
  xmit: Forwarder | undefined;
  /** Source MAC of the client's packets: the client itself or the router in front of it. */
  cmac: Uint8Array;
  /** Whether cmac has been learned (an entry from connection sync has seen no client packet yet). */
  cmacKnown: boolean;
  caddr4: number;
  vaddr4: number;
  laddr4: number;
  caddr6: Uint8Array | undefined;
  vaddr6: Uint8Array | undefined;
  laddr6: Uint8Array | undefined;
  /** Sequence translation of a connection the SYN proxy opened (synproxy/), undefined otherwise. */
  synproxy: SynproxyConn | undefined;
}

/** Per-destination cached address (Dest.plane). */
export interface DestPlane {
  addr4: number;
  addr6: Uint8Array | undefined;
}

export interface XmitContext {
  readonly conns: ConnTable;
  readonly mac: Uint8Array;
  /** The director's own IPv4 address on the interface (tunnel outer source), 0 if none. */
  readonly addr4: number;
  /** Path MTU towards real servers (the interface MTU). */
  readonly mtu: number;
  /** Clamp the MSS of tunnelled SYNs to fit the IPIP overhead (off by default, as IPVS). */
  readonly tunClampMss: boolean;
  /** Send the frame (pkt.off .. pkt.end) to the on-link next hop `addr`, resolving its MAC. */
  toNeighbour(p: Pkt, addr: string, family: 4 | 6): Verdict;
  /** Send the frame to a known MAC. */
  toMac(p: Pkt, mac: Uint8Array): Verdict;
  /**
   * The on-link next hop towards a client whose MAC no packet has taught (kernel-routes.ts): the
   * gateway of the host's route to it, or the client itself. Absent: the client itself.
   */
  readonly clientNextHop?: ((addr: string) => string) | undefined;
  drop(reason: DropReason): Verdict;
  /** ICMP "fragmentation needed" back to the sender of p, from p's destination address. */
  fragNeeded(p: Pkt, mtu: number): void;
  /** Cut a TCPv4 GSO super-frame into MSS-sized frames in scratch slots; each goes to `each`. */
  segment(p: Pkt, each: (seg: Pkt) => Verdict): Verdict;
}

export function destPlane(d: Dest): DestPlane {
  let dp = d.plane as DestPlane | undefined;
  if (dp === undefined) {
    const g = d.family === 6 ? parseIpv6Groups(d.addr) : undefined;
    dp = { addr4: d.family === 4 ? (parseIpv4(d.addr) ?? 0) : 0, addr6: g ? ip6Bytes(g) : undefined };
    d.plane = dp;
  }
  return dp;
}

function addr6(text: string): Uint8Array | undefined {
  const g = parseIpv6Groups(text);
  return g ? ip6Bytes(g) : undefined;
}

/** The connection's plane state, created from its addresses when the entry came from elsewhere. */
export function connPlane(c: Conn): ConnPlane {
  let plane = c.plane as ConnPlane | undefined;
  if (plane === undefined) {
    const v4 = c.family === 4;
    plane = {
      xmit: undefined,
      cmac: new Uint8Array(6),
      cmacKnown: false,
      caddr4: v4 ? (parseIpv4(c.caddr) ?? 0) : 0,
      vaddr4: v4 ? (parseIpv4(c.vaddr) ?? 0) : 0,
      laddr4: v4 && c.laddr ? (parseIpv4(c.laddr) ?? 0) : 0,
      caddr6: v4 ? undefined : addr6(c.caddr),
      vaddr6: v4 ? undefined : addr6(c.vaddr),
      laddr6: v4 || !c.laddr ? undefined : addr6(c.laddr),
      synproxy: undefined,
    };
    c.plane = plane;
  }
  return plane;
}

/** Decrement TTL / hop limit as IPVS does before forwarding; false when it ran out. */
export function decrementTtl(p: Pkt): boolean {
  if (p.family === 4) {
    if (p.buf[p.l3 + 8]! <= 1) return false;
    decTtl4(p.buf, p.l3);
    return true;
  }
  const h = p.buf[p.l3 + 7]!;
  if (h <= 1) return false;
  p.buf[p.l3 + 7] = h - 1;
  return true;
}

/**
 * Send a reply towards the client: to the MAC its packets came from, or, for an entry made by
 * connection sync that has not seen a client packet on this director yet, to the client's address
 * through neighbour resolution (a client on the link; a routed client is reached once its next
 * packet teaches the MAC of its router).
 */
export function toClient(ctx: XmitContext, p: Pkt, conn: Conn, plane: ConnPlane): Verdict {
  if (plane.cmacKnown) return ctx.toMac(p, plane.cmac);
  return ctx.toNeighbour(p, ctx.clientNextHop?.(conn.caddr) ?? conn.caddr, conn.family);
}
