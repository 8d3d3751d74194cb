// Drives a Pipeline over a PacketIo: receive a batch, process it, send what it queued, repeat
// while frames keep coming (bounded per wake-up so one busy interface cannot starve the event
// loop). The same engine runs over the native AF_PACKET io and over the memory io of the tests.
// IPv6 datagrams the pipeline reassembled during a batch go through it after that batch, one at
// a time, in a batch of their own whose receive slot holds a whole 64 KB datagram.

import { FrameBatch, HEADROOM, META_LEN, META_PKTTYPE, META_STATUS, type PacketIo, VNET_HDR_LEN } from "./io.ts";
import type { ReassembledFrame } from "./ipv6-defrag.ts";
import { QUEUE_MAX } from "./neighbours.ts";
import type { Pipeline } from "./pipeline.ts";

export interface BatchingIo extends PacketIo {
  readonly slotSize: number;
}

/** Batches handled per wake-up before yielding to the event loop. */
const ROUNDS_PER_WAKE = 32;
/** A reassembled IPv6 datagram's slot: the largest packet, its link header, vnet header and headroom. */
const REASSEMBLED_SLOT = 65536 + 256;
/** Scratch slots of that batch: the fragments it is cut back into (65535 / (1280 - 48) → 54) and probes. */
const REASSEMBLED_GEN = 64;

export class PacketEngine {
  readonly io: BatchingIo;
  readonly pipeline: Pipeline;
  readonly batch: FrameBatch;
  /** A separate small batch for frames sent outside the receive path (announcements, probes). */
  readonly control: FrameBatch;
  readonly #now: () => number;
  #unwatch: (() => void) | undefined;
  #scheduled = false;

  constructor(io: BatchingIo, pipeline: Pipeline, now: () => number, batchSize = 64) {
    this.io = io;
    this.pipeline = pipeline;
    this.#now = now;
    this.batch = new FrameBatch(batchSize, io.slotSize, batchSize, HEADROOM);
    this.control = new FrameBatch(1, 256, 256, HEADROOM);
  }

  /** One receive → process → send round; returns the number of frames received. */
  runOnce(): number {
    const b = this.batch;
    b.reset();
    const n = this.io.receive(b);
    if (n === 0) return 0;
    const now = this.#now();
    this.pipeline.process(b, now, this.io.vnetHdr);
    if (b.txCount > 0) this.#send(b);
    const defrag = this.pipeline.defrag6;
    while (defrag.ready.length > 0) this.processReassembled(defrag.ready.shift()!);
    defrag.expire(now);
    return n;
  }

  /** Run a reassembled IPv6 datagram (this worker's, or handed over by another) through the pipeline. */
  processReassembled(d: ReassembledFrame): void {
    this.#reassembled ??= new FrameBatch(1, REASSEMBLED_SLOT, REASSEMBLED_GEN, HEADROOM, this.io.slotSize);
    const b = this.#reassembled;
    b.reset();
    const vnet = this.io.vnetHdr;
    const h = vnet ? VNET_HDR_LEN : 0;
    const off = b.rxOffset(0);
    if (h + d.frame.length > REASSEMBLED_SLOT - HEADROOM) return;
    b.buf.fill(0, off, off + h);
    b.buf.set(d.frame, off + h);
    b.meta[META_LEN] = h + d.frame.length;
    b.meta[META_PKTTYPE] = 0; // PACKET_HOST
    b.meta[META_STATUS] = 0;
    b.meta[3] = 0;
    b.rxCount = 1;
    this.pipeline.processReassembled(b, this.#now(), vnet, d.maxFragmentSize, d.id);
    if (b.txCount > 0) this.#send(b);
  }

  #reassembled: FrameBatch | undefined;

  /** Run rounds until nothing is waiting (at most `maxRounds`). */
  drain(maxRounds = ROUNDS_PER_WAKE): number {
    let total = 0;
    for (let r = 0; r < maxRounds; r++) {
      const n = this.runOnce();
      total += n;
      if (n === 0) break;
    }
    return total;
  }

  /** Start handling frames whenever the io says some are waiting. */
  start(): void {
    if (this.#unwatch) return;
    this.#unwatch = this.io.watch(() => this.#wake());
    this.#wake();
  }

  stop(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }

  /** Gratuitous ARP / unsolicited NA for every owned address (a VIP came up). */
  announce(): void {
    const c = this.control;
    c.reset();
    this.pipeline.announce(c, this.io.vnetHdr);
    this.#send(c);
  }

  /**
   * Own an address again (announced at once when `announce`) or release it: released addresses
   * are not answered for and their frames are left to the host (NeighbourResponder).
   */
  setOwned(addr: string, owned: boolean, announce = true): void {
    const c = this.control;
    c.reset();
    this.pipeline.setOwned(addr, owned, announce ? c : undefined, this.io.vnetHdr);
    if (c.txCount > 0) this.#send(c);
  }

  /** Probe the given next hops (e.g. every real server) so their MACs are known before traffic. */
  resolve(addrs: readonly string[]): void {
    const c = this.control;
    c.reset();
    this.pipeline.resolve(c, addrs, this.#now(), this.io.vnetHdr);
    this.pipeline.counters.tx += c.txCount;
    this.#send(c);
  }

  /** A neighbour another worker learned; frames held for it go out now. */
  learnFromPeer(addr: string, mac: Uint8Array): void {
    // Held frames can be full-size: a batch with this io's slots, made on first use.
    this.#flushBatch ??= new FrameBatch(1, this.io.slotSize, QUEUE_MAX, HEADROOM);
    const b = this.#flushBatch;
    b.reset();
    this.pipeline.learnFromPeer(b, addr, mac, this.#now(), this.io.vnetHdr);
    this.pipeline.counters.tx += b.txCount;
    if (b.txCount > 0) this.#send(b);
  }

  #flushBatch: FrameBatch | undefined;

  #send(b: FrameBatch): void {
    const sent = this.io.send(b);
    if (sent < b.txCount) this.pipeline.counters.txErrors += b.txCount - sent;
  }

  #wake(): void {
    const n = this.drain();
    // Still busy: continue after other callbacks had their turn.
    if (n > 0 && !this.#scheduled && this.#unwatch) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (this.#unwatch) this.#wake();
      });
    }
  }
}
