// ICMPv6 errors (RFC 4443: destination unreachable 1, packet too big 2, time exceeded 3, parameter
// problem 4) about tracked connections, delivered to the side that needs them, as the kernel's
// ip_vs_in_icmp_v6 / ip_vs_out_icmp_v6 do. The IPv6 twin of icmp-relay.ts:
//  - "in": an error sent to a VIP quotes a packet the service sent to a client (VIP → client);
//    it goes to that connection's real server: unchanged but for the hop limit for DR,
//    encapsulated for TUN, and for NAT/FULLNAT translated so that it quotes the real server's
//    own packet (quoted source = the real server and its port; FULLNAT also the local address).
//  - "out": an error a real server (or a router behind it) sends about a client's packet (NAT:
//    to the client; FULLNAT: to a local address) is translated to quote the packet the client
//    sent to VIP:vport and goes to the client's next hop.
// As in the kernel, a relayed error must carry a correct ICMPv6 checksum (else it is dropped as
// malformed), and it is counted in the connection's statistics (InPkts / OutPkts and bytes).
// The quoted packet may be truncated (a packet-too-big quotes at most 1232 bytes) and may carry
// extension headers before its transport header; only its first fragment names ports. The quoted
// transport checksum is left as is (as the kernel does); the ICMPv6 checksum, which covers the
// outer pseudo-header, is recomputed over the whole message.

import type { BoundConn } from "../../core/conn/conn.ts";
import { finish, pseudo6, sumBytes } from "./codec/checksum.ts";
import { fixIcmp6Checksum, isIcmpv6Error } from "./codec/icmp.ts";
import { IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./codec/ipv4.ts";
import { IPV6_HLEN, ip6Text } from "./codec/ipv6.ts";
import { IPPROTO_SCTP } from "./codec/sctp.ts";
import type { Verdict } from "./counters.ts";
import type { Pkt } from "./pkt.ts";
import { connPlane, decrementTtl, destPlane, toClient } from "./xmit/context.ts";
import { type TunContext, tunIn } from "./xmit/tun.ts";

const EXT_HOP = 0;
const EXT_ROUTING = 43;
const EXT_FRAGMENT = 44;
const EXT_DSTOPTS = 60;

interface Quoted6 {
  /** Start of the quoted IPv6 header. */
  l3: number;
  /** Start of its transport header. */
  l4: number;
  protocol: "tcp" | "udp" | "sctp";
  saddr: string;
  daddr: string;
  sport: number;
  dport: number;
}

/**
 * The packet quoted by the ICMPv6 error p (after the 8-byte ICMPv6 header), walking extension
 * headers within the bytes present; undefined unless it is the first fragment of TCP or UDP with
 * at least 8 transport bytes quoted.
 */
function quoted6(p: Pkt): Quoted6 | undefined {
  const buf = p.buf;
  const l3 = p.l4 + 8;
  const end = p.end;
  if (end - l3 < IPV6_HLEN || buf[l3]! >>> 4 !== 6) return undefined;
  let next = buf[l3 + 6]!;
  let off = l3 + IPV6_HLEN;
  for (let hops = 0; hops < 8; hops++) {
    if (next === EXT_HOP || next === EXT_ROUTING || next === EXT_DSTOPTS) {
      if (end - off < 8) return undefined;
      const len = (buf[off + 1]! + 1) * 8;
      next = buf[off]!;
      off += len;
      continue;
    }
    if (next === EXT_FRAGMENT) {
      if (end - off < 8) return undefined;
      if ((((buf[off + 2]! << 8) | buf[off + 3]!) & 0xfff8) !== 0) return undefined;
      next = buf[off]!;
      off += 8;
      continue;
    }
    break;
  }
  if (next !== IPPROTO_TCP && next !== IPPROTO_UDP && next !== IPPROTO_SCTP) return undefined;
  if (end - off < 8) return undefined;
  return {
    l3,
    l4: off,
    protocol: next === IPPROTO_TCP ? "tcp" : next === IPPROTO_UDP ? "udp" : "sctp",
    saddr: ip6Text(buf, l3 + 8),
    daddr: ip6Text(buf, l3 + 24),
    sport: (buf[off]! << 8) | buf[off + 1]!,
    dport: (buf[off + 2]! << 8) | buf[off + 3]!,
  };
}

/** Whether the ICMPv6 message of p verifies (a checksum left to offload is trusted). */
function checksumOk(p: Pkt): boolean {
  if (p.partial) return true;
  const len = p.end - p.l4;
  return finish(sumBytes(p.buf, p.l4, len, pseudo6(p.buf, p.l3 + 8, IPPROTO_ICMPV6, len))) === 0;
}

function setPort(buf: Uint8Array, off: number, port: number): void {
  buf[off] = port >>> 8;
  buf[off + 1] = port & 0xff;
}

function setAddr(buf: Uint8Array, off: number, addr: Uint8Array | undefined): boolean {
  if (addr === undefined) return false;
  buf.set(addr, off);
  return true;
}

/** An ICMPv6 error addressed to a VIP; undefined when it is not an error or quotes no known connection. */
export function relayIcmp6In(ctx: TunContext, p: Pkt): Verdict | undefined {
  const buf = p.buf;
  if (p.fragment || !isIcmpv6Error(buf[p.l4]!)) return undefined;
  const q = quoted6(p);
  if (q === undefined) return undefined;
  const conn = ctx.conns.lookupIn(q.protocol, q.daddr, q.dport, q.saddr, q.sport);
  if (conn === undefined || !conn.dest.available) return undefined;
  if (!checksumOk(p)) return ctx.drop("malformed");
  const bytes = p.ipLen;
  const v = relayIn(ctx, p, q, conn);
  if (v === "forward") ctx.conns.account(conn, "in", 1, bytes);
  return v;
}

function relayIn(ctx: TunContext, p: Pkt, q: Quoted6, conn: BoundConn): Verdict {
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
      const rs = destPlane(conn.dest).addr6;
      if (!setAddr(buf, p.l3 + 24, rs) || !setAddr(buf, q.l3 + 8, rs)) return ctx.drop("unsupported");
      setPort(buf, q.l4, conn.dport);
      if (conn.fwd === "fullnat") {
        const laddr = connPlane(conn).laddr6;
        if (!setAddr(buf, p.l3 + 8, laddr) || !setAddr(buf, q.l3 + 24, laddr)) return ctx.drop("unsupported");
        setPort(buf, q.l4 + 2, conn.lport);
      }
      fixIcmp6Checksum(buf, p.l3, p.l4, p.end);
      return ctx.toNeighbour(p, conn.daddr, 6);
    }
    default:
      return ctx.drop("unsupported");
  }
}

/** An ICMPv6 error from a real server's side about a client's packet; undefined when not ours. */
export function relayIcmp6Out(ctx: TunContext, p: Pkt): Verdict | undefined {
  const buf = p.buf;
  if (p.fragment || !isIcmpv6Error(buf[p.l4]!)) return undefined;
  const q = quoted6(p);
  if (q === undefined) return undefined;
  const conn: BoundConn | undefined = ctx.conns.lookupOut(q.protocol, q.daddr, q.dport, q.saddr, q.sport);
  if (conn === undefined || (conn.fwd !== "masq" && conn.fwd !== "fullnat")) return undefined;
  if (!checksumOk(p)) return ctx.drop("malformed");
  if (!decrementTtl(p)) return ctx.drop("ttl");
  const bytes = p.ipLen;
  const plane = connPlane(conn);
  if (!setAddr(buf, p.l3 + 8, plane.vaddr6) || !setAddr(buf, q.l3 + 24, plane.vaddr6)) return ctx.drop("unsupported");
  setPort(buf, q.l4 + 2, conn.vport);
  if (conn.fwd === "fullnat") {
    if (!setAddr(buf, p.l3 + 24, plane.caddr6) || !setAddr(buf, q.l3 + 8, plane.caddr6)) return ctx.drop("unsupported");
    setPort(buf, q.l4, conn.cport);
  }
  fixIcmp6Checksum(buf, p.l3, p.l4, p.end);
  const v = toClient(ctx, p, conn, plane);
  if (v === "forward") ctx.conns.account(conn, "out", 1, bytes);
  return v;
}
