// Completing a transport checksum that the sender left to offload (CHECKSUM_PARTIAL: the field
// holds only the pseudo-header sum). The pipeline does it for frames marked CSUMNOTREADY, and the
// tunnel method does it before encapsulating, because after IPIP the only receiver that could
// finish it is the real server's decapsulator, which sees plain bytes with no offload metadata.

import { finish, pseudo4, pseudo6, sumBytes } from "./codec/checksum.ts";
import { IPPROTO_ICMP } from "./codec/ipv4.ts";
import { l4CsumOffset } from "./codec/l4.ts";
import { fillSctpChecksum, IPPROTO_SCTP } from "./codec/sctp.ts";
import type { Pkt } from "./pkt.ts";

const IPPROTO_UDP = 17;

export function finishL4Checksum(p: Pkt): void {
  if (p.proto === IPPROTO_SCTP) {
    // SCTP's CRC32c covers no pseudo-header; the field holds nothing useful until computed.
    if (p.l4 >= 0 && !p.fragment) fillSctpChecksum(p.buf, p.l4, Math.min(p.end, p.l3 + p.ipLen) - p.l4);
    return;
  }
  const off = l4CsumOffset(p.proto);
  if (off < 0 || p.proto === IPPROTO_ICMP || p.l4 < 0) return;
  const buf = p.buf;
  // The transport length from the IP header, so Ethernet padding never enters the sum.
  const len = Math.min(p.end, p.l3 + p.ipLen) - p.l4;
  if (len < off + 2) return;
  buf[p.l4 + off] = 0;
  buf[p.l4 + off + 1] = 0;
  const ph = p.family === 4 ? pseudo4(buf, p.l3 + 12, p.proto, len) : pseudo6(buf, p.l3 + 8, p.proto, len);
  let c = finish(sumBytes(buf, p.l4, len, ph));
  if (c === 0 && p.proto === IPPROTO_UDP) c = 0xffff;
  buf[p.l4 + off] = c >>> 8;
  buf[p.l4 + off + 1] = c & 0xff;
}
