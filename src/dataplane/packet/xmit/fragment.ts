// IPv4 fragmentation on the way out (RFC 791 §3.2, what the kernel's ip_fragment does when a
// forwarded packet is larger than the outgoing link's MTU and may be fragmented).
//
// Why the director needs it: its packet sockets join their fanout group with
// PACKET_FANOUT_FLAG_DEFRAG, so the kernel reassembles IPv4 fragments before the pipeline sees them
// (the pipeline then schedules on the ports in the first fragment and every fragment follows the
// same connection, as IPVS does behind the kernel's defrag hook). A reassembled datagram is larger
// than the link, so whatever the method did to it (MACs, addresses, ports, an IPIP header) it goes
// out cut again here. A packet with DF set is not cut: the caller answers "fragmentation needed".
//
// The pieces: every fragment carries the Ethernet header and an IP header; the first keeps all
// options, later ones only the options whose "copied" flag (0x80) is set (the rest are dropped and
// the header padded with end-of-options to a 4-byte multiple). Each fragment's data is a multiple of
// 8 bytes except the last; offsets continue from the packet's own offset and MF is set on all but
// the last (which keeps the packet's own MF, for a fragment that is itself being cut). The IP ID
// is kept, the header checksum recomputed. The transport checksum must already be complete (it
// covers the whole datagram and no fragment can finish it); the caller ensures that.

import { checksum } from "../codec/checksum.ts";
import { IP_MF, IP_OFFMASK } from "../codec/ipv4.ts";

const ETH_ZLEN = 60;

const OPT_EOL = 0;
const OPT_NOP = 1;
const OPT_COPIED = 0x80;

/** Options of the header at l3 that later fragments carry, padded to a 4-byte multiple. */
function copiedOptions(buf: Uint8Array, l3: number, hlen: number): Uint8Array {
  const kept: number[] = [];
  let i = l3 + 20;
  const end = l3 + hlen;
  while (i < end) {
    const type = buf[i]!;
    if (type === OPT_EOL) break;
    if (type === OPT_NOP) {
      i++;
      continue;
    }
    const len = i + 1 < end ? buf[i + 1]! : 0;
    if (len < 2 || i + len > end) break; // malformed: keep what was valid
    if (type & OPT_COPIED) for (let k = 0; k < len; k++) kept.push(buf[i + k]!);
    i += len;
  }
  while (kept.length % 4 !== 0) kept.push(OPT_EOL);
  return Uint8Array.from(kept);
}

/**
 * Cut the IPv4 packet at buf[l3..l3+totalLength) of the frame starting at `frame` (vnet header
 * when `vnetLen` is 10, then the link header up to l3) into frames whose IP part fits `mtu`.
 * `alloc` gives the offset of a free slot in `out` (-1 when none is left); `emit(offset, length)`
 * queues each fragment frame. Returns how many fragments were emitted, 0 when the packet cannot
 * be cut (MTU too small for any data), and fewer than needed when slots ran out.
 */
export function fragmentIpv4(
  buf: Buffer,
  frame: number,
  l3: number,
  vnetLen: number,
  mtu: number,
  out: Buffer,
  alloc: () => number,
  emit: (offset: number, length: number) => void,
): number {
  const hlen = (buf[l3]! & 15) * 4;
  const total = (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
  const frag = (buf[l3 + 6]! << 8) | buf[l3 + 7]!;
  const baseOffset = (frag & IP_OFFMASK) * 8;
  const lastMf = (frag & IP_MF) !== 0;
  const linkLen = l3 - frame - vnetLen;
  const later = copiedOptions(buf, l3, hlen);
  const laterHlen = 20 + later.length;
  const firstRoom = (mtu - hlen) & ~7;
  const laterRoom = (mtu - laterHlen) & ~7;
  if (firstRoom <= 0 || laterRoom <= 0) return 0;
  const data = l3 + hlen;
  const dataLen = total - hlen;
  let pos = 0;
  let made = 0;
  while (pos < dataLen) {
    const first = pos === 0;
    const h = first ? hlen : laterHlen;
    const room = first ? firstRoom : laterRoom;
    const n = Math.min(room, dataLen - pos);
    const last = pos + n >= dataLen;
    const slot = alloc();
    if (slot < 0) break;
    out.fill(0, slot, slot + vnetLen);
    buf.copy(out, slot + vnetLen, frame + vnetLen, l3);
    const o3 = slot + vnetLen + linkLen;
    if (first) buf.copy(out, o3, l3, l3 + hlen);
    else {
      buf.copy(out, o3, l3, l3 + 20);
      out.set(later, o3 + 20);
      out[o3] = 0x40 | (laterHlen / 4);
    }
    const offset = (baseOffset + pos) / 8;
    const flags = (frag & ~(IP_MF | IP_OFFMASK)) | (!last || lastMf ? IP_MF : 0);
    out.writeUInt16BE(h + n, o3 + 2);
    out.writeUInt16BE(flags | offset, o3 + 6);
    out.writeUInt16BE(0, o3 + 10);
    buf.copy(out, o3 + h, data + pos, data + pos + n);
    out.writeUInt16BE(checksum(out, o3, h), o3 + 10);
    let linkFrame = linkLen + h + n;
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
