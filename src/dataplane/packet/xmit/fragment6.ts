// IPv6 fragmentation on the way out, for datagrams the director itself reassembled
// (ipv6-reassembly.ts). IPv6 routers never fragment (RFC 8200 §5): a packet too big for the next
// link is answered with ICMPv6 "packet too big" and the source cuts it smaller. A director in
// front of a reassembler is in between: the kernel's nf_defrag_ipv6 records the largest fragment
// it received (frag_max_size) and the output path (ip6_fragment) cuts the forwarded datagram
// again into fragments no larger than that, so the director sends what the source sent, just
// rewritten; if even that largest fragment does not fit the outgoing link, it answers "packet too
// big" instead. This does the cutting: the unfragmentable part (the fixed header and any
// hop-by-hop or routing header, with destination options before a routing header) is repeated in
// every fragment, followed by a fragment header (the original next header, the offset, M on all
// but the last, one identification for all) and a piece of the rest; every piece but the last is a
// multiple of 8 bytes. A datagram the director did not reassemble is never cut here: egress
// answers it with "packet too big" when it does not fit.

import { FRAG_HLEN, IPV6_HLEN } from "../ipv6-reassembly.ts";

const ETH_ZLEN = 60;
const NEXTHDR_HOP = 0;
const NEXTHDR_ROUTING = 43;
const NEXTHDR_DEST = 60;
const NEXTHDR_FRAGMENT = 44;

/**
 * Length of the unfragmentable part of the IPv6 packet at buf[l3..end) and the offset (from l3)
 * of the next-header byte that the fragment header is to be linked from (the kernel's
 * ip6_find_1stfragopt): hop-by-hop, routing, and destination options that precede a routing header.
 */
export function unfragmentablePart(buf: Uint8Array, l3: number, end: number): { len: number; nextAt: number } {
  let nextAt = 6;
  let len = IPV6_HLEN;
  for (let hops = 0; hops < 8; hops++) {
    const next = buf[l3 + nextAt]!;
    if (l3 + len + 8 > end) break;
    if (next === NEXTHDR_HOP || next === NEXTHDR_ROUTING) {
      // take it
    } else if (next === NEXTHDR_DEST) {
      // Destination options count as unfragmentable only when a routing header follows them.
      if (buf[l3 + len]! !== NEXTHDR_ROUTING) break;
    } else break;
    nextAt = len;
    len += (buf[l3 + len + 1]! + 1) * 8;
  }
  return { len, nextAt };
}

/**
 * Cut the IPv6 packet at buf[l3..l3+40+payloadLength) of the frame starting at `frame` (vnet
 * header when `vnetLen` is 10, then the link header up to l3) into frames whose IPv6 packet is at
 * most `size` bytes, each with fragment identification `id`. `alloc` gives the offset of a free
 * slot in `out` (-1 when none is left); `emit(offset, length)` queues each fragment frame. Returns
 * how many fragments were emitted, 0 when the packet cannot be cut (no room for data, or already
 * a fragment), and fewer than needed when slots ran out.
 */
export function fragmentIpv6(
  buf: Uint8Array,
  frame: number,
  l3: number,
  vnetLen: number,
  size: number,
  id: number,
  out: Uint8Array,
  alloc: () => number,
  emit: (offset: number, length: number) => void,
): number {
  const end = l3 + IPV6_HLEN + ((buf[l3 + 4]! << 8) | buf[l3 + 5]!);
  const { len: unfrag, nextAt } = unfragmentablePart(buf, l3, end);
  const next = buf[l3 + nextAt]!;
  if (next === NEXTHDR_FRAGMENT) return 0;
  const room = (size - unfrag - FRAG_HLEN) & ~7;
  if (room <= 0) return 0;
  const linkLen = l3 - frame - vnetLen;
  const dataLen = end - l3 - unfrag;
  let pos = 0;
  let made = 0;
  while (pos < dataLen) {
    const n = Math.min(room, dataLen - pos);
    const last = pos + n >= dataLen;
    const slot = alloc();
    if (slot < 0) break;
    out.fill(0, slot, slot + vnetLen);
    out.set(buf.subarray(frame + vnetLen, l3), slot + vnetLen);
    const o3 = slot + vnetLen + linkLen;
    out.set(buf.subarray(l3, l3 + unfrag), o3);
    out[o3 + nextAt] = NEXTHDR_FRAGMENT;
    const plen = unfrag - IPV6_HLEN + FRAG_HLEN + n;
    out[o3 + 4] = plen >>> 8;
    out[o3 + 5] = plen & 0xff;
    const fh = o3 + unfrag;
    out[fh] = next;
    out[fh + 1] = 0;
    const fo = pos | (last ? 0 : 1);
    out[fh + 2] = fo >>> 8;
    out[fh + 3] = fo & 0xff;
    out[fh + 4] = id >>> 24;
    out[fh + 5] = (id >>> 16) & 0xff;
    out[fh + 6] = (id >>> 8) & 0xff;
    out[fh + 7] = id & 0xff;
    out.set(buf.subarray(l3 + unfrag + pos, l3 + unfrag + pos + n), fh + FRAG_HLEN);
    let linkFrame = linkLen + IPV6_HLEN + plen;
    if (linkFrame < ETH_ZLEN) {
      out.fill(0, slot + vnetLen + linkFrame, slot + vnetLen + ETH_ZLEN);
      linkFrame = ETH_ZLEN;
    }
    emit(slot, vnetLen + linkFrame);
    made++;
    pos += n;
  }
  return made;
}
