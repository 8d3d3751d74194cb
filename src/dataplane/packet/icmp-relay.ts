// ICMP errors about tracked connections, delivered to the side that needs them, as the kernel's
// ip_vs_in_icmp / ip_vs_out_icmp do (IPv4; ICMPv6 is icmp6-relay.ts):
//  - "in": an error sent to a VIP quotes a packet the service sent to a client (VIP → client);
//    it goes to that connection's real server: unchanged for DR, encapsulated for TUN, and for
//    NAT/FULLNAT translated so that it quotes the real server's own packet.
//  - "out": an error a real server sends about a client's packet (NAT: to the client; FULLNAT: to
//    a local address) is translated to quote the packet the client sent to VIP:vport and goes
//    to the client's next hop.
// Only destination unreachable (3), source quench (4) and time exceeded (11) are relayed, the
// kernel's list; a parameter problem (12) is not related to a connection for IPVS either.
// As in the kernel, a relayed error must carry a correct ICMP checksum (else it is dropped as
// malformed), and it is counted in the connection's statistics (InPkts / OutPkts and bytes).
// The quoted transport checksum is left as is (as the kernel does); the ICMP checksum is
// recomputed over the whole message.

import type { BoundConn } from "../../core/conn/conn.ts";
import { readU32 } from "./codec/arp.ts";
import { checksum } from "./codec/checksum.ts";
import { fixIcmp4Checksum } from "./codec/icmp.ts";
import { IPPROTO_TCP, IPPROTO_UDP } from "./codec/ipv4.ts";
import { rewriteAddr4 } from "./codec/l4.ts";
import { IPPROTO_SCTP } from "./codec/sctp.ts";
import type { Verdict } from "./counters.ts";
import type { Pkt } from "./pkt.ts";
import { connPlane, decrementTtl, destPlane, toClient } from "./xmit/context.ts";
import { type TunContext, tunIn } from "./xmit/tun.ts";

interface Quoted {
  l3: number;
  l4: number;
  protocol: "tcp" | "udp" | "sctp";
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
}

function quoted(p: Pkt): Quoted | undefined {
  const buf = p.buf;
  const l3 = p.l4 + 8;
  if (p.end - l3 < 20 || buf[l3]! >>> 4 !== 4) return undefined;
  const hl = (buf[l3]! & 15) * 4;
  if (hl < 20 || p.end - l3 < hl + 8) return undefined;
  const proto = buf[l3 + 9];
  if (proto !== IPPROTO_TCP && proto !== IPPROTO_UDP && proto !== IPPROTO_SCTP) return undefined;
  const l4 = l3 + hl;
  return {
    l3,
    l4,
    protocol: proto === IPPROTO_TCP ? "tcp" : proto === IPPROTO_UDP ? "udp" : "sctp",
    saddr: readU32(buf, l3 + 12),
    daddr: readU32(buf, l3 + 16),
    sport: (buf[l4]! << 8) | buf[l4 + 1]!,
    dport: (buf[l4 + 2]! << 8) | buf[l4 + 3]!,
  };
}

/** The ICMPv4 types IPVS relays (ip_vs_in_icmp / ip_vs_out_icmp). */
function relayedType(type: number): boolean {
  return type === 3 || type === 4 || type === 11;
}

/** Whether the ICMP message of p verifies. */
function checksumOk(p: Pkt): boolean {
  return checksum(p.buf, p.l4, p.end - p.l4) === 0;
}

function setPort(buf: Uint8Array, off: number, port: number): void {
  buf[off] = port >>> 8;
  buf[off + 1] = port & 0xff;
}

/** Set an address of the quoted header (no transport checksum follows it). */
function setQuotedAddr(buf: Uint8Array, l3: number, which: 12 | 16, addr: number): void {
  rewriteAddr4(buf, l3, which, -1, 0, addr, false);
}

/** An ICMP error addressed to a VIP; undefined when it quotes no known connection. */
export function relayIcmpIn(ctx: TunContext, p: Pkt): Verdict | undefined {
  if (!relayedType(p.buf[p.l4]!)) return undefined;
  const q = quoted(p);
  if (q === undefined || p.fragment) return undefined;
  const conn = ctx.conns.lookupIn4(q.protocol, q.daddr, q.dport, q.saddr, q.sport);
  if (conn === undefined || !conn.dest.available) return undefined;
  if (!checksumOk(p)) return ctx.drop("malformed");
  const bytes = p.ipLen;
  const v = relayIn(ctx, p, q, conn);
  if (v === "forward") ctx.conns.account(conn, "in", 1, bytes);
  return v;
}

function relayIn(ctx: TunContext, p: Pkt, q: Quoted, conn: BoundConn): Verdict {
  const buf = p.buf;
  switch (conn.fwd) {
    case "droute":
      if (!decrementTtl(p)) return ctx.drop("ttl");
      return ctx.toNeighbour(p, conn.daddr, conn.dest.family);
    case "tunnel":
      return tunIn(ctx, p, conn);
    case "masq":
    case "fullnat": {
      if (!decrementTtl(p)) return ctx.drop("ttl");
      const rs = destPlane(conn.dest).addr4;
      rewriteAddr4(buf, p.l3, 16, -1, 0, rs, false);
      setQuotedAddr(buf, q.l3, 12, rs);
      setPort(buf, q.l4, conn.dport);
      if (conn.fwd === "fullnat") {
        const plane = connPlane(conn);
        rewriteAddr4(buf, p.l3, 12, -1, 0, plane.laddr4, false);
        setQuotedAddr(buf, q.l3, 16, plane.laddr4);
        setPort(buf, q.l4 + 2, conn.lport);
      }
      fixIcmp4Checksum(buf, p.l4, p.end);
      return ctx.toNeighbour(p, conn.daddr, 4);
    }
    default:
      return ctx.drop("unsupported");
  }
}

/** An ICMP error from a real server about a client's packet; undefined when not ours. */
export function relayIcmpOut(ctx: TunContext, p: Pkt): Verdict | undefined {
  const buf = p.buf;
  if (!relayedType(buf[p.l4]!)) return undefined;
  const q = quoted(p);
  if (q === undefined || p.fragment) return undefined;
  const conn: BoundConn | undefined = ctx.conns.lookupOut4(q.protocol, q.daddr, q.dport, q.saddr, q.sport);
  if (conn === undefined || (conn.fwd !== "masq" && conn.fwd !== "fullnat")) return undefined;
  if (!checksumOk(p)) return ctx.drop("malformed");
  if (!decrementTtl(p)) return ctx.drop("ttl");
  const bytes = p.ipLen;
  const plane = connPlane(conn);
  rewriteAddr4(buf, p.l3, 12, -1, 0, plane.vaddr4, false);
  setQuotedAddr(buf, q.l3, 16, plane.vaddr4);
  setPort(buf, q.l4 + 2, conn.vport);
  if (conn.fwd === "fullnat") {
    rewriteAddr4(buf, p.l3, 16, -1, 0, plane.caddr4, false);
    setQuotedAddr(buf, q.l3, 12, plane.caddr4);
    setPort(buf, q.l4, conn.cport);
  }
  fixIcmp4Checksum(buf, p.l4, p.end);
  const v = toClient(ctx, p, conn, plane);
  if (v === "forward") ctx.conns.account(conn, "out", 1, bytes);
  return v;
}
