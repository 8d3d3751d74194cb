// Software GSO for TCP over IPv4 and IPv6 (what the kernel's tcp_gso_segment does for a device
// without TSO): a super-frame received with a virtio_net_hdr (gso_type TCPV4 or TCPV6, gso_size =
// MSS) is cut into MSS-sized frames, each with its own IP total length and IP ID (incremented), or
// IPv6 payload length, sequence number, flags (FIN/PSH only on the last, CWR only on the first)
// and full checksums. The tunnel method needs this because a virtio_net_hdr cannot describe an
// IPIP-encapsulated GSO packet.

import { checksum, finish, pseudo4, pseudo6, sumBytes } from "../codec/checksum.ts";
import { tcpHeaderLen } from "../codec/tcp.ts";
import { VNET_HDR_LEN } from "../io.ts";
import type { Pkt } from "../pkt.ts";
import { vnetU16 } from "../pkt.ts";

const GSO_TCPV4 = 1;
const GSO_TCPV6 = 4;
const TCP_FIN_PSH = 0x09;
const TCP_CWR = 0x80;

/** Whether p is a GSO super-frame this function can cut. */
export function canSegment(p: Pkt): boolean {
  if (!p.vnet || !p.gso || p.proto !== 6 || p.l4 < 0) return false;
  const type = p.buf[p.off + 1]! & 0x7f;
  return type === (p.family === 4 ? GSO_TCPV4 : GSO_TCPV6) && vnetU16(p.buf, p.off + 4) > 0;
}

export function gsoSize(p: Pkt): number {
  return vnetU16(p.buf, p.off + 4);
}

/**
 * Cut p into segments. `alloc` returns the offset of a free slot in `out` (or -1); each segment is
 * described in `seg` (a reused Pkt) and handed to `each`. Returns how many segments were made.
 */
export function segmentTcp4(p: Pkt, out: Buffer, alloc: () => number, seg: Pkt, each: (seg: Pkt) => void): number {
  const buf = p.buf;
  const mss = gsoSize(p);
  const hdrEnd = p.l4 + tcpHeaderLen(buf, p.l4);
  const hdrLen = hdrEnd - p.eth;
  const payload = p.end - hdrEnd;
  const seq0 = buf.readUInt32BE(p.l4 + 4);
  const flags0 = buf[p.l4 + 13]!;
  const id0 = (buf[p.l3 + 4]! << 8) | buf[p.l3 + 5]!;
  const l3Rel = p.l3 - p.eth;
  const l4Rel = p.l4 - p.eth;
  const ipHdrToEnd = hdrEnd - p.l3;
  let k = 0;
  for (let o = 0; o < payload; o += mss, k++) {
    const n = Math.min(mss, payload - o);
    const slot = alloc();
    if (slot < 0) break;
    out.fill(0, slot, slot + VNET_HDR_LEN);
    const eth = slot + VNET_HDR_LEN;
    buf.copy(out, eth, p.eth, hdrEnd);
    buf.copy(out, eth + hdrLen, hdrEnd + o, hdrEnd + o + n);
    const l3 = eth + l3Rel;
    const l4 = eth + l4Rel;
    const total = ipHdrToEnd + n;
    const v6 = p.family === 6;
    if (v6) out.writeUInt16BE(total - 40, l3 + 4);
    else {
      out.writeUInt16BE(total, l3 + 2);
      out.writeUInt16BE((id0 + k) & 0xffff, l3 + 4);
      out[l3 + 10] = 0;
      out[l3 + 11] = 0;
      out.writeUInt16BE(checksum(out, l3, (out[l3]! & 15) * 4), l3 + 10);
    }
    out.writeUInt32BE((seq0 + o) >>> 0, l4 + 4);
    let f = flags0;
    if (o + n < payload) f &= ~TCP_FIN_PSH;
    if (k > 0) f &= ~TCP_CWR;
    out[l4 + 13] = f;
    out[l4 + 16] = 0;
    out[l4 + 17] = 0;
    const tcpLen = l3 + total - l4;
    const ph = v6 ? pseudo6(out, l3 + 8, 6, tcpLen) : pseudo4(out, l3 + 12, 6, tcpLen);
    out.writeUInt16BE(finish(sumBytes(out, l4, tcpLen, ph)), l4 + 16);
    seg.buf = out;
    seg.off = slot;
    seg.eth = eth;
    seg.end = l3 + total;
    seg.vnet = true;
    seg.partial = false;
    seg.gso = false;
    seg.family = p.family;
    seg.l3 = l3;
    seg.l4 = l4;
    seg.proto = 6;
    seg.protocol = "tcp";
    seg.saddr4 = p.saddr4;
    seg.daddr4 = p.daddr4;
    seg.sport = p.sport;
    seg.dport = p.dport;
    seg.tcpFlags = f;
    seg.ipLen = total;
    seg.fragment = false;
    each(seg);
  }
  return k;
}
