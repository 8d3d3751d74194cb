// The parsed view of one frame while the pipeline handles it: where each header starts and the
// fields the director decides on. One Pkt object is reused for every frame of a worker, so
// parsing allocates nothing; IPv6 address text is produced only when a lookup needs it.

import type { Protocol } from "../../core/sched/types.ts";
import type { SctpChunks } from "./codec/sctp.ts";

export const VNET_F_NEEDS_CSUM = 1;

export class Pkt {
  buf: Buffer = Buffer.alloc(0);
  /** Start of the frame in buf (the vnet header when there is one). */
  off = 0;
  /** Start of the Ethernet header. */
  eth = 0;
  /** End of the IP packet (Ethernet padding excluded), or of the frame for non-IP. */
  end = 0;
  /** The frame carries a virtio_net_hdr at off. */
  vnet = false;
  /** Transport checksum left for offload (pseudo-header sum only). */
  partial = false;
  /** GSO super-frame (vnet gso_type != 0). */
  gso = false;
  family: 4 | 6 = 4;
  l3 = 0;
  /** Transport header offset, -1 when absent (later fragment). */
  l4 = -1;
  /** IP protocol number of the transport header. */
  proto = 0;
  /** tcp/udp/sctp for the connection table, undefined for other protocols. */
  protocol: Protocol | undefined = undefined;
  saddr4 = 0;
  daddr4 = 0;
  sport = 0;
  dport = 0;
  tcpFlags = 0;
  /** SCTP: the first chunk's type and the one bundled after a COOKIE ECHO / ACK (-1 when none). */
  readonly sctp: SctpChunks = { first: 0, next: -1 };
  /** Bytes from the IP header to the end of the packet (what IPVS counts). */
  ipLen = 0;
  fragment = false;
  /**
   * An IPv6 datagram the director reassembled: the size of its largest fragment (IPv6 header
   * included), which egress cuts it back to; 0 for every received frame.
   */
  fragMax = 0;
  /** With fragMax: the datagram's fragment identification and original source address (16 bytes). */
  fragId = 0;
  fragSrc: Uint8Array | undefined = undefined;

  /** Length of what to send: from off to end, padded to the Ethernet minimum. */
  get frameLength(): number {
    return this.end - this.off;
  }
}

/** Read a little-endian u16 of the vnet header. */
export function vnetU16(buf: Uint8Array, off: number): number {
  return buf[off]! | (buf[off + 1]! << 8);
}

export function setVnetU16(buf: Uint8Array, off: number, v: number): void {
  buf[off] = v & 0xff;
  buf[off + 1] = v >>> 8;
}
