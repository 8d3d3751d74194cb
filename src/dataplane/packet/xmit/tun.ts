// IP tunnelling (ipvsadm -i, the kernel's ip_vs_tunnel_xmit): the client's IPv4 packet is
// wrapped in an outer IPv4 header (protocol 4, IPIP) from the director's own address on the
// interface to the real server, which decapsulates it and answers the client directly. The outer
// header copies the inner TOS, TTL, DF bit and IP ID (the outer packet is never fragmented here, so
// reusing the inner ID is safe, RFC 6864, and keeps output deterministic). The packet grows by 20 bytes: when it no longer
// fits the MTU and DF is set, the client gets ICMP "fragmentation needed" with MTU - 20 (as IPVS
// does) and the packet is dropped; without DF, the kernel would fragment the outer packet — here
// it is dropped as well (counted as mtu). Optionally the MSS of SYNs is clamped so that no
// ICMP round is needed. The frame is rebuilt in place in the slot's headroom: the Ethernet (and
// vnet) header moves 20 bytes to the front. A GSO super-frame cannot be described as IPIP GSO in
// a virtio_net_hdr, so TCPv4 super-frames are segmented in software first (segment.ts); other
// GSO types are dropped (counted as gso).

import type { Conn } from "../../../core/conn/conn.ts";
import { update16 } from "../codec/checksum.ts";
import { ETH_HLEN } from "../codec/eth.ts";
import { IPPROTO_IPIP, IPPROTO_TCP, IPV4_HLEN, writeIpv4 } from "../codec/ipv4.ts";
import { clampMss, TCP_SYN, tcpHeaderLen } from "../codec/tcp.ts";
import type { Verdict } from "../counters.ts";
import { finishL4Checksum } from "../finish-checksum.ts";
import { type Pkt, setVnetU16, VNET_F_NEEDS_CSUM, vnetU16 } from "../pkt.ts";
import { decrementTtl, destPlane, type XmitContext } from "./context.ts";
import { canSegment, gsoSize } from "./segment.ts";

export function tunIn(ctx: XmitContext, p: Pkt, conn: Conn): Verdict {
  if (p.family !== 4 || conn.dest.family !== 4) return ctx.drop("unsupported");
  const buf = p.buf;
  const mtu = ctx.mtu - IPV4_HLEN;
  const df = (buf[p.l3 + 6]! & 0x40) !== 0;
  if (p.gso) {
    // A super-frame from TSO/GRO: cut it as the device would have, then tunnel each segment.
    if (!canSegment(p)) return ctx.drop("gso");
    if (p.l4 - p.l3 + tcpHeaderLen(buf, p.l4) + gsoSize(p) > mtu) {
      if (df) ctx.fragNeeded(p, mtu);
      return ctx.drop("mtu");
    }
    return ctx.segment(p, (seg) => tunIn(ctx, seg, conn));
  }
  const innerLen = p.ipLen;
  if (ctx.tunClampMss && p.proto === IPPROTO_TCP && p.l4 >= 0 && p.tcpFlags & TCP_SYN) {
    const l4 = p.l4;
    clampMss(buf, l4, tcpHeaderLen(buf, l4), mtu - IPV4_HLEN - 20, (_o, from, to) => {
      if (p.partial) return;
      const c = (buf[l4 + 16]! << 8) | buf[l4 + 17]!;
      const v = update16(c, from, to);
      buf[l4 + 16] = v >>> 8;
      buf[l4 + 17] = v & 0xff;
    });
  }
  if (innerLen > mtu) {
    if (df) ctx.fragNeeded(p, mtu);
    return ctx.drop("mtu");
  }
  if (!decrementTtl(p)) return ctx.drop("ttl");
  if (p.partial) {
    // Finish the inner checksum now: past the tunnel nobody has the offload metadata to do it.
    finishL4Checksum(p);
    if (p.vnet) p.buf[p.off] = p.buf[p.off]! & ~VNET_F_NEEDS_CSUM;
    p.partial = false;
  }
  // Move [vnet][ethernet] 20 bytes to the front, leaving room for the outer header.
  const head = p.eth - p.off + ETH_HLEN;
  buf.copyWithin(p.off - IPV4_HLEN, p.off, p.off + head);
  p.off -= IPV4_HLEN;
  p.eth -= IPV4_HLEN;
  const outer = p.eth + ETH_HLEN;
  const inner = outer + IPV4_HLEN;
  // An 802.1Q tag, if any, stays in the moved Ethernet header; l3 is now the outer header.
  const innerTos = buf[inner + 1]!;
  const innerTtl = buf[inner + 8]!;
  writeIpv4(buf, outer, innerLen + IPV4_HLEN, IPPROTO_IPIP, ctx.addr4, destPlane(conn.dest).addr4, {
    id: (buf[inner + 4]! << 8) | buf[inner + 5]!,
    ttl: innerTtl,
    tos: innerTos,
    df,
  });
  if (p.vnet && p.partial) {
    // csum_start counts from the Ethernet header: the inner transport header moved 20 bytes on.
    setVnetU16(buf, p.off + 6, vnetU16(buf, p.off + 6) + IPV4_HLEN);
  }
  p.l3 = outer;
  return ctx.toNeighbour(p, conn.daddr, 4);
}
