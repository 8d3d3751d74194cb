// The PacketIo seam: something that receives and sends batches of Ethernet frames. The native
// AF_PACKET socket (native-io.ts) and the in-memory fake (memory-io.ts) both implement it, so the
// pipeline and its fixtures run the same way in unit tests and on real interfaces.
//
// A FrameBatch is one preallocated Buffer cut into slots. Received frame i sits in slot i at
// `headroom` bytes from the slot start (room to prepend an IPIP header in place). Slots past the
// receive capacity are scratch space for frames the director generates (ARP replies, ICMP
// errors). The send list is an Int32Array of [offset, length] pairs into the same Buffer, so one
// sendmmsg covers forwarded and generated frames alike. When the io uses PACKET_VNET_HDR, every
// frame (received or sent) starts with a 10-byte virtio_net_hdr before the Ethernet header.

export const VNET_HDR_LEN = 10;
/** Bytes kept free before each received frame: an IPIP/IPv6 outer header and then some. */
export const HEADROOM = 64;

export interface PacketIo {
  /** Frames carry a virtio_net_hdr (checksum offload / GSO metadata). */
  readonly vnetHdr: boolean;
  /** Largest frame the io delivers whole (slot size minus headroom). */
  readonly frameCapacity: number;
  /** Receive up to batch.rxCapacity frames into the batch; returns how many (0 when none waiting). */
  receive(batch: FrameBatch): number;
  /** Send batch.txCount frames listed in batch.tx; returns how many the kernel took. */
  send(batch: FrameBatch): number;
  /** Call `ready` whenever frames may be waiting; returns a function that stops watching. */
  watch(ready: () => void): () => void;
  close(): void;
  /**
   * Frames the kernel dropped for this socket since the last call (its receive queue was full:
   * PACKET_STATISTICS tp_drops, which reading resets); absent where there is no kernel socket.
   */
  socketDrops?(): number;
}

/** Per received frame: [length, pkttype, auxdata status, vlan tci] (see recvBatch in native/). */
export const META_STRIDE = 4;
export const META_LEN = 0;
export const META_PKTTYPE = 1;
export const META_STATUS = 2;

export class FrameBatch {
  readonly buf: Buffer;
  readonly slotSize: number;
  /** Size of the scratch slots (slotSize unless said). */
  readonly genSlotSize: number;
  readonly headroom: number;
  readonly rxCapacity: number;
  readonly genCapacity: number;
  readonly meta: Int32Array;
  /** Frames to send: [offset, length] pairs. */
  readonly tx: Int32Array;
  rxCount = 0;
  txCount = 0;
  genCount = 0;

  constructor(
    rxCapacity: number,
    slotSize: number,
    genCapacity = rxCapacity,
    headroom = HEADROOM,
    genSlotSize = slotSize,
  ) {
    this.rxCapacity = rxCapacity;
    this.genCapacity = genCapacity;
    this.slotSize = slotSize;
    this.genSlotSize = genSlotSize;
    this.headroom = headroom;
    this.buf = Buffer.alloc(rxCapacity * slotSize + genCapacity * genSlotSize);
    this.meta = new Int32Array(rxCapacity * META_STRIDE);
    this.tx = new Int32Array((rxCapacity + genCapacity) * 2);
  }

  /** Offset of received frame i. */
  rxOffset(i: number): number {
    return i * this.slotSize + this.headroom;
  }

  rxLength(i: number): number {
    return this.meta[i * META_STRIDE + META_LEN]!;
  }

  /** A scratch slot for a generated frame, or -1 when none is left in this round. */
  allocGen(): number {
    if (this.genCount >= this.genCapacity) return -1;
    return this.rxCapacity * this.slotSize + this.genCount++ * this.genSlotSize + this.headroom;
  }

  queue(offset: number, length: number): void {
    const i = this.txCount++;
    this.tx[i * 2] = offset;
    this.tx[i * 2 + 1] = length;
  }

  reset(): void {
    this.rxCount = 0;
    this.txCount = 0;
    this.genCount = 0;
  }
}
