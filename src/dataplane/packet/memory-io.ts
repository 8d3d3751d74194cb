// An in-memory PacketIo for tests, fixtures, the fuzz test and benchmarks: frames pushed with
// inject() are received in batches exactly as from an AF_PACKET socket (optionally with a
// virtio_net_hdr in front), and every frame the pipeline sends is copied into `sent`.

import { FrameBatch, META_LEN, META_PKTTYPE, META_STATUS, META_STRIDE, type PacketIo, VNET_HDR_LEN } from "./io.ts";

export const PACKET_HOST = 0;
export const PACKET_OUTGOING = 4;

export interface InjectOptions {
  /** sockaddr_ll pkttype to report (PACKET_HOST unless said). */
  pkttype?: number;
  /** auxdata tp_status to report. */
  status?: number;
  /** virtio_net_hdr to put in front when the io uses vnet headers (zeroes unless given). */
  vnet?: Uint8Array;
}

export class MemoryPacketIo implements PacketIo {
  readonly vnetHdr: boolean;
  readonly frameCapacity: number;
  readonly slotSize: number;
  readonly #inbox: { frame: Uint8Array; opts: InjectOptions }[] = [];
  readonly sent: Buffer[] = [];
  #ready: (() => void) | undefined;

  constructor(opts: { vnetHdr?: boolean; slotSize?: number } = {}) {
    this.vnetHdr = opts.vnetHdr ?? false;
    this.slotSize = opts.slotSize ?? 2048 + 128;
    this.frameCapacity = this.slotSize - 64 - (this.vnetHdr ? VNET_HDR_LEN : 0);
  }

  newBatch(size = 64): FrameBatch {
    return new FrameBatch(size, this.slotSize, size);
  }

  inject(frame: Uint8Array, opts: InjectOptions = {}): void {
    this.#inbox.push({ frame, opts });
    this.#ready?.();
  }

  get pending(): number {
    return this.#inbox.length;
  }

  receive(batch: FrameBatch): number {
    let n = 0;
    while (n < batch.rxCapacity && this.#inbox.length > 0) {
      const { frame, opts } = this.#inbox.shift()!;
      const off = batch.rxOffset(n);
      const room = batch.slotSize - batch.headroom;
      let len = frame.length;
      if (this.vnetHdr) {
        const v = opts.vnet ?? new Uint8Array(VNET_HDR_LEN);
        batch.buf.set(v.subarray(0, VNET_HDR_LEN), off);
        batch.buf.set(frame.subarray(0, Math.max(0, Math.min(frame.length, room - VNET_HDR_LEN))), off + VNET_HDR_LEN);
        len += VNET_HDR_LEN;
      } else {
        batch.buf.set(frame.subarray(0, Math.min(frame.length, room)), off);
      }
      // As recvmmsg with MSG_TRUNC: the real length, even when it did not fit.
      batch.meta[n * META_STRIDE + META_LEN] = len;
      batch.meta[n * META_STRIDE + META_PKTTYPE] = opts.pkttype ?? PACKET_HOST;
      batch.meta[n * META_STRIDE + META_STATUS] = opts.status ?? 0;
      batch.meta[n * META_STRIDE + 3] = 0;
      n++;
    }
    batch.rxCount = n;
    return n;
  }

  send(batch: FrameBatch): number {
    for (let i = 0; i < batch.txCount; i++) {
      const off = batch.tx[i * 2]!;
      const len = batch.tx[i * 2 + 1]!;
      this.sent.push(Buffer.from(batch.buf.subarray(off, off + len)));
    }
    return batch.txCount;
  }

  /** Take and clear what was sent, without the vnet header when there is one. */
  drain(): Buffer[] {
    const out = this.sent.splice(0);
    return this.vnetHdr ? out.map((b) => b.subarray(VNET_HDR_LEN)) : out;
  }

  watch(ready: () => void): () => void {
    this.#ready = ready;
    return () => {
      if (this.#ready === ready) this.#ready = undefined;
    };
  }

  close(): void {
    this.#ready = undefined;
  }
}
