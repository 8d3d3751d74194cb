// IP tunnelling (ipvsadm -i, the kernel's ip_vs_tunnel_xmit and ip_vs_tunnel_xmit_v6): the
// client's packet is wrapped in an outer header from the director's own address on the interface
// to the real server, which decapsulates it and answers the client directly.
//
// Families. The outer header has the real server's family, the inner one the service's, as in
// the kernel since 3.18 (mixed-family tunnel destinations): IPv4 in IPv4 (protocol 4, IPIP),
// IPv6 in IPv6 (next header 41, RFC 2473), IPv6 in IPv4 (protocol 41) and IPv4 in IPv6 (next
// header 4). The outer header copies the inner TOS / traffic class and the inner TTL / hop limit
// (after the director's decrement). An outer IPv4 header copies the inner DF bit and IP ID (an
// outer packet that fits is not fragmented, so reusing the inner ID is safe, RFC 6864, and keeps
// output deterministic; one that will be fragmented gets a fresh ID, see Size); for an IPv6 inner
// packet DF is clear and the ID 0. An outer IPv6 header has flow label 0.
//
// Size. The packet grows by 20 (IPv4 outer) or 40 (IPv6 outer) bytes; the tunnel MTU is the
// interface MTU minus that, and a tunnel MTU below 68 (IPv4) / 1280 (IPv6) drops everything, as
// IPVS does. As in the kernel the hop limit is decremented first and the size checked after: a
// packet that no longer fits gets, if it is IPv4 with DF, ICMP "fragmentation needed" with the
// tunnel MTU, and if it is IPv6, ICMPv6 "packet too big" with the tunnel MTU, sent to the client
// from the VIP and quoting the packet; it is then dropped (counted as mtu). IPv4 without DF in an
// IPv4 tunnel is encapsulated anyway, with a fresh outer ID, and the outer packet leaves in
// fragments, as from the kernel (in an IPv6 tunnel it is dropped). A relayed ICMP error that does
// not fit is dropped without an error about it (never an ICMP error about an ICMP error).
//
// Tunnel types. The destination's --tun-type picks what goes between the outer IP header and the
// client's packet (tun-encap.ts): nothing for IPIP, UDP + GUE for GUE, a GRE header for GRE. Their
// bytes count in the overhead above (the tunnel MTU is the interface MTU minus all of it, as the
// kernel's __ip_vs_get_out_rt subtracts the GUE / GRE header lengths), and the options are read
// from the destination on every packet, as the kernel reads cp->dest->tun_type / tun_flags.
//
// Optionally the MSS of SYNs is clamped so that no ICMP round is needed. The frame is rebuilt in
// place in the slot's headroom: the (vnet and) link-layer header moves to the front by the outer
// header's length, and its EtherType becomes the outer family's. A GSO super-frame cannot be
// described as a tunnelled GSO in a virtio_net_hdr, so TCPv4 super-frames are segmented in
// software first (segment.ts); other GSO types are dropped (counted as gso).

import type { BoundConn } from "../../../core/conn/conn.ts";
import { update16 } from "../codec/checksum.ts";
import { ETH_P_IP, ETH_P_IPV6 } from "../codec/eth.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPV4_HLEN, writeIpv4 } from "../codec/ipv4.ts";
import { IPV6_HLEN, setTrafficClass6, trafficClass6, writeIpv6 } from "../codec/ipv6.ts";
import { l4CsumOffset } from "../codec/l4.ts";
import { clampMss, TCP_SYN, tcpHeaderLen } from "../codec/tcp.ts";
import type { Verdict } from "../counters.ts";
import { finishL4Checksum } from "../finish-checksum.ts";
import { type Pkt, VNET_F_NEEDS_CSUM } from "../pkt.ts";
import { connPlane, decrementTtl, destPlane, type TunContext } from "./context.ts";
import {
  type EncapArgs,
  encapLength,
  finishEncapChecksum,
  fold128,
  gueRemcsum,
  gueSourcePort,
  outerProtocol,
  writeEncap,
} from "./tun-encap.ts";

export type { TunContext } from "./context.ts";

import { canSegment, gsoSize } from "./segment.ts";

const IPV4_MIN_MTU = 68;
const IPV6_MIN_MTU = 1280;

/** What the tunnel method needs besides XmitContext: the outer source towards IPv6 real servers. */

/** Answer a packet that does not fit the tunnel (see the header) and drop it. */
function tooBig(ctx: TunContext, p: Pkt, mtu: number): Verdict {
  const isIcmp = p.proto === IPPROTO_ICMP || p.proto === IPPROTO_ICMPV6;
  const df = p.family === 6 || (p.buf[p.l3 + 6]! & 0x40) !== 0;
  if (df && !isIcmp) ctx.fragNeeded(p, mtu);
  return ctx.drop("mtu");
}

export function tunIn(ctx: TunContext, p: Pkt, conn: BoundConn): Verdict {
  const outer6 = conn.dest.family === 6;
  const inner6 = p.family === 6;
  if (outer6 && ctx.addr6 === undefined) return ctx.drop("unsupported");
  const tun = conn.dest.tun;
  const iplen = outer6 ? IPV6_HLEN : IPV4_HLEN;
  // The remote-checksum option is only there for a packet whose checksum is left to offload.
  const remcsum = !p.gso && p.partial && gueRemcsum(tun, true) && p.l4 >= 0 && l4CsumOffset(p.proto) >= 0;
  const olen = iplen + encapLength(tun, remcsum);
  const buf = p.buf;
  const mtu = ctx.mtu - olen;
  if (mtu < (outer6 ? IPV6_MIN_MTU : IPV4_MIN_MTU)) return ctx.drop("mtu");
  if (p.gso) {
    // A super-frame from TSO/GRO: cut it as the device would have, then tunnel each segment.
    if (!canSegment(p)) return ctx.drop("gso");
    if (p.l4 - p.l3 + tcpHeaderLen(buf, p.l4) + gsoSize(p) > mtu) return tooBig(ctx, p, mtu);
    return ctx.segment(p, (seg) => tunIn(ctx, seg, conn));
  }
  const innerLen = p.ipLen;
  if (ctx.tunClampMss && p.proto === IPPROTO_TCP && p.l4 >= 0 && p.tcpFlags & TCP_SYN) {
    const l4 = p.l4;
    const tcpRoom = mtu - (p.l4 - p.l3) - 20;
    clampMss(buf, l4, tcpHeaderLen(buf, l4), tcpRoom, (_o, from, to) => {
      if (p.partial) return;
      const c = (buf[l4 + 16]! << 8) | buf[l4 + 17]!;
      const v = update16(c, from, to);
      buf[l4 + 16] = v >>> 8;
      buf[l4 + 17] = v & 0xff;
    });
  }
  if (!decrementTtl(p)) return ctx.drop("ttl");
  // IPv4 without DF in an IPv4 tunnel may be fragmented: the outer packet (DF clear, a fresh ID,
  // since the inner IDs of different clients may collide at the real server) leaves the director
  // in fragments (pipeline → xmit/fragment.ts), as the kernel's IPIP output does.
  const fragmentOuter =
    innerLen > mtu && !outer6 && !inner6 && (buf[p.l3 + 6]! & 0x40) === 0 && innerLen + olen <= 0xffff;
  // A datagram the director reassembled is measured by its largest fragment (ipv6-defrag.ts).
  if (p.fragMax > 0 ? p.fragMax > mtu : innerLen > mtu && !fragmentOuter) return tooBig(ctx, p, mtu);
  // GUE remote checksum offload leaves the inner checksum to the real server (tun-encap.ts);
  // otherwise finish it now: past the tunnel nobody has the offload metadata to do it.
  const csumAt: [number, number] | undefined = remcsum ? [p.l4 - p.l3, p.l4 - p.l3 + l4CsumOffset(p.proto)] : undefined;
  if (p.partial) {
    if (!remcsum) finishL4Checksum(p);
    if (p.vnet) p.buf[p.off] = p.buf[p.off]! & ~VNET_F_NEEDS_CSUM;
    p.partial = false;
  }
  const encapLen = olen - iplen;
  const inner = p.l3;
  const ttl = inner6 ? buf[inner + 7]! : buf[inner + 8]!;
  const tos = inner6 ? trafficClass6(buf, inner) : buf[inner + 1]!;
  const df = !inner6 && (buf[inner + 6]! & 0x40) !== 0;
  const id = fragmentOuter ? ctx.nextIpId() : inner6 ? 0 : (buf[inner + 4]! << 8) | buf[inner + 5]!;
  const next = outerProtocol(tun, inner6);
  // Move [vnet][link-layer header, with an 802.1Q tag if any] to the front by the outer header's length.
  buf.copyWithin(p.off - olen, p.off, inner);
  p.off -= olen;
  p.eth -= olen;
  if (p.fragMax > 0) p.fragMax += olen; // cut again with the outer header in every fragment
  const outer = inner - olen;
  const ethertype = outer6 ? ETH_P_IPV6 : ETH_P_IP;
  buf[outer - 2] = ethertype >>> 8;
  buf[outer - 1] = ethertype & 0xff;
  const dp = destPlane(conn.dest);
  let encap: EncapArgs | undefined;
  if (tun.type !== "ipip") {
    encap = { tun, inner6, innerLen, sport: tun.type === "gue" ? flowSourcePort(conn) : 0, remcsum: csumAt };
    writeEncap(buf, outer + iplen, encap);
  }
  if (outer6) {
    writeIpv6(buf, outer, innerLen + encapLen, next, ctx.addr6!, dp.addr6!, ttl);
    setTrafficClass6(buf, outer, tos);
  } else {
    writeIpv4(buf, outer, innerLen + olen, next, ctx.addr4, dp.addr4, { id, ttl, tos, df });
  }
  if (encap) finishEncapChecksum(buf, outer, outer6, outer + iplen, encap);
  // p now describes the outer packet (anything after this, e.g. a size check, sees the outer header).
  p.l3 = outer;
  p.family = outer6 ? 6 : 4;
  p.proto = next;
  p.ipLen = innerLen + olen;
  if (!outer6) {
    p.saddr4 = ctx.addr4;
    p.daddr4 = dp.addr4;
  }
  return ctx.toNeighbour(p, conn.daddr, conn.dest.family);
}

/** The GUE source port of a connection (tun-encap.ts): the same for all its packets. */
function flowSourcePort(conn: BoundConn): number {
  const plane = connPlane(conn);
  const proto = conn.protocol === "tcp" ? 6 : conn.protocol === "udp" ? 17 : 132;
  if (conn.family === 4) return gueSourcePort(plane.caddr4, plane.vaddr4, conn.cport, conn.vport, proto);
  return gueSourcePort(fold128(plane.caddr6!), fold128(plane.vaddr6!), conn.cport, conn.vport, proto);
}
