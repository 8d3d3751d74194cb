// The transport header of a frame the pipeline handles: TCP and UDP ports and TCP flags read
// into the Pkt, SCTP ports and the chunk types its state machine reads (an SCTP checksum the
// sender left to offload is finished here: no device would compute a CRC32c the vnet header asks
// for as an Internet checksum), ICMP and ICMPv6 checked for their 8-byte header. Other protocols
// pass as they are.

import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from "./codec/ipv4.ts";
import { fillSctpChecksum, IPPROTO_SCTP, readSctpChunks } from "./codec/sctp.ts";
import { TCP_HLEN, tcpHeaderLen } from "./codec/tcp.ts";
import { UDP_HLEN } from "./codec/udp.ts";
import { type Pkt, VNET_F_NEEDS_CSUM } from "./pkt.ts";

/** Read the transport header at l4 into p; false when it is malformed. */
export function transportOk(p: Pkt, l4: number): boolean {
  const buf = p.buf;
  const avail = p.end - l4;
  p.l4 = l4;
  if (p.proto === IPPROTO_TCP) {
    if (avail < TCP_HLEN) return false;
    const hl = tcpHeaderLen(buf, l4);
    if (hl < TCP_HLEN || hl > avail) return false;
    p.protocol = "tcp";
    p.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    p.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    p.tcpFlags = buf[l4 + 13]!;
  } else if (p.proto === IPPROTO_UDP) {
    if (avail < UDP_HLEN) return false;
    const ul = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
    if (!p.fragment && (ul < UDP_HLEN || ul > avail)) return false;
    p.protocol = "udp";
    p.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    p.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    p.tcpFlags = 0;
  } else if (p.proto === IPPROTO_SCTP) {
    if (!readSctpChunks(buf, l4, avail, p.sctp)) return false;
    p.protocol = "sctp";
    p.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
    p.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
    p.tcpFlags = 0;
    if (p.partial && !p.fragment) {
      fillSctpChecksum(buf, l4, avail);
      if (p.vnet) buf[p.off] = buf[p.off]! & ~VNET_F_NEEDS_CSUM;
      p.partial = false;
    }
  } else if (p.proto === IPPROTO_ICMP || p.proto === IPPROTO_ICMPV6) {
    if (avail < 8) return false;
  }
  return true;
}
