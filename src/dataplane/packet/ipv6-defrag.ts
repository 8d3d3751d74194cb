// The pipeline's IPv6 fragment stage: which fragments the director reassembles, what becomes of
// each one (a verdict), and where a completed datagram goes next.
//
// Which: fragments to an owned VIP or FULLNAT local address (client requests, FULLNAT replies)
// and fragments from a NAT real server (replies the host guard keeps from the kernel: see
// host-guard.ts). Anything else is the host's and is left to it, fragments and all.
//
// Verdicts: a fragment kept or completing a datagram is consumed; a refused one is dropped with a
// reason of its own (fragOverlap, fragMalformed, fragTooMany), so tvs_dataplane_drops_total says
// why; an atomic fragment (RFC 6946) is handled by the pipeline as the unfragmented packet it is.
// Datagrams lost without a frame to blame (timed out, evicted for memory) are counted apart
// (reassemblyTimeouts, reassemblyEvicted), with the bytes held (reassemblyMemory).
//
// Where a datagram goes: the steering program sends fragments by addresses alone (steering.ts),
// which need not be the worker that owns the flow (address and port); so does an unfragmented
// packet with an extension header first, which passOn hands over the same way. `handoff`, set by a packet
// worker, passes the datagram to the right worker and says so; otherwise (one worker, or this one
// owns the flow) it waits in `ready` until the engine runs it through the pipeline as one more
// received frame, with the size of its largest fragment, which egress cuts it back to
// (xmit/fragment6.ts).

import type { ServiceTable } from "../../core/service-table.ts";
import type { DropReason, PlaneCounterSnapshot, PlaneCounters, Verdict } from "./counters.ts";
import type { DropRecord } from "./egress.ts";
import { Ipv6Reassembler, type ReassemblyLimits } from "./ipv6-reassembly.ts";
import type { Pkt } from "./pkt.ts";

/** A reassembled datagram as a frame: the first fragment's link header, then the whole IPv6 packet. */
export interface ReassembledFrame {
  frame: Uint8Array;
  maxFragmentSize: number;
  /** The fragments' identification (kept when the datagram leaves from the same source). */
  id: number;
}

const DROP: Record<"overlap" | "malformed" | "tooManyFragments", DropReason> = {
  overlap: "fragOverlap",
  malformed: "fragMalformed",
  tooManyFragments: "fragTooMany",
};

export class Ipv6Defrag {
  readonly reassembler: Ipv6Reassembler;
  /** Datagrams completed and not handed off, for the engine to run through the pipeline. */
  readonly ready: ReassembledFrame[] = [];
  /** Pass a datagram to the worker that owns its flow; true when it did (set by a packet worker). */
  handoff: ((d: ReassembledFrame) => boolean) | undefined = undefined;
  readonly #counters: PlaneCounters;
  /** Addresses of masq destinations (text), whose fragments are NAT replies to reassemble. */
  #natDests = new Set<string>();

  constructor(counters: PlaneCounters, limits: Partial<ReassemblyLimits> = {}) {
    this.#counters = counters;
    this.reassembler = new Ipv6Reassembler(limits);
  }

  /** Recompute the NAT destinations from the service table (after services change). */
  refresh(services: ServiceTable): void {
    const s = new Set<string>();
    for (const svc of services.services())
      for (const d of svc.dests) if (d.fwd === "masq" && d.addr.includes(":")) s.add(d.addr);
    this.#natDests = s;
  }

  /** Whether a fragment from `saddr` (text) to an address not owned is a NAT reply to reassemble. */
  fromNatDest(saddr: string): boolean {
    return this.#natDests.has(saddr);
  }

  /**
   * Take the fragment p (p.l3 .. p.end, its link header from p.eth): consumed, dropped (through
   * `drops`, with its reason), or "atomic" for the pipeline to handle as an unfragmented packet.
   */
  absorb(p: Pkt, now: number, drops: DropRecord): Verdict | "atomic" {
    const r = this.reassembler.add(p.buf, p.l3, p.end, now, p.eth);
    this.#sync();
    switch (r.kind) {
      case "atomic":
        return "atomic";
      case "held":
        this.#counters.fragmentsIn++;
        return "consume";
      case "drop":
        return drops.drop(DROP[r.reason]);
      case "done": {
        this.#counters.fragmentsIn++;
        this.#counters.reassembled++;
        const { frame, maxFragmentSize, id } = r.datagram;
        const d = { frame, maxFragmentSize, id };
        if (this.handoff?.(d)) this.#counters.reassemblyHandoffs++;
        else this.ready.push(d);
        return "consume";
      }
    }
  }

  /**
   * An unfragmented packet with an extension header first: the program steered it by addresses
   * alone, so its flow may be another worker's. Hand it there (true) or keep it (false).
   */
  passOn(p: Pkt): boolean {
    if (this.handoff === undefined) return false;
    const frame = Uint8Array.prototype.slice.call(p.buf, p.eth, p.end);
    if (!this.handoff({ frame, maxFragmentSize: 0, id: 0 })) return false;
    this.#counters.extHandoffs++;
    return true;
  }

  /** Expire datagrams whose time is up (cheap when none are held). */
  expire(now: number): void {
    if (this.reassembler.queues === 0) return;
    this.reassembler.expire(now);
    this.#sync();
  }

  #sync(): void {
    const c = this.#counters;
    const s = this.reassembler.stats;
    c.reassemblyTimeouts = s.timeouts;
    c.reassemblyEvicted = s.evicted;
    c.reassemblyMemory = this.reassembler.memory;
  }
}

/** The `tvs status` line about IPv6 reassembly. */
export function reassemblyNote(c: PlaneCounterSnapshot): string {
  const d = c.drops;
  return (
    `IPv6 reassembly: ${c.fragmentsIn} fragments, ${c.reassembled} datagrams (${c.reassemblyHandoffs} handed to their flow's worker), ` +
    `${c.fragmentsOut} fragments out; lost: ${c.reassemblyTimeouts} timed out, ${c.reassemblyEvicted} evicted, ` +
    `${d.fragOverlap} overlapping, ${d.fragMalformed} malformed, ${d.fragTooMany} too many pieces; ${c.reassemblyMemory} bytes held; ` +
    `${c.extHandoffs} packets with extension headers handed to their flow's worker`
  );
}
