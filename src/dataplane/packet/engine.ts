// Drives a Pipeline over a PacketIo: receive a batch, process it, send what it queued, repeat
// while frames keep coming (bounded per wake-up so one busy interface cannot starve the event
// loop). The same engine runs over the native AF_PACKET io and over the memory io of the tests.

import { FrameBatch, HEADROOM, type PacketIo } from "./io.ts";
import { QUEUE_MAX } from "./neighbours.ts";
import type { Pipeline } from "./pipeline.ts";

export interface BatchingIo extends PacketIo {
  readonly slotSize: number;
}

/** Batches handled per wake-up before yielding to the event loop. */
const ROUNDS_PER_WAKE = 32;

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
    this.pipeline.process(b, this.#now(), this.io.vnetHdr);
    if (b.txCount > 0) this.#send(b);
    return n;
  }

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
