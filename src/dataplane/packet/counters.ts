// Counters of the packet pipeline: every received frame ends in exactly one verdict (forwarded,
// replied to, consumed, ignored or dropped), and every drop has exactly one reason, so
// rx = forwarded + replied + consumed + ignored + dropped and dropped = the sum of the reasons.
// An IPv6 datagram reassembled from fragments (each fragment a "consume") is received once more,
// whole, with its own verdict, and an IPv6 packet handed to its flow's worker (extHandoffs, a
// "consume" where it arrived) is received again there: summed over workers, rx = frames from the
// wire + datagrams reassembled + extHandoffs.
// The fuzz test checks those sums; tvsd reports them.

export const DROP_REASONS = [
  "truncated", // longer than the receive slot (GRO without PACKET_VNET_HDR, or a jumbo frame)
  "malformed", // a header that does not parse or verify
  "fragment", // an IP fragment for a virtual service (no ports to look up)
  "noService", // to a VIP:port with no virtual service
  "noConn", // not a connection start and no entry (TCP without SYN, reply without entry)
  "noDest", // the scheduler found no destination
  "tableFull", // the connection table refused a new entry
  "destGone", // the entry's destination was removed from its service
  "drPort", // DR with a real-server port different from the virtual port (configuration error)
  "ttl", // TTL/hop limit exhausted
  "mtu", // too big for the link or tunnel and not to be fragmented (ICMP fragmentation needed / packet too big sent)
  "gso", // GSO super-frame the method cannot carry (tunnel)
  "neighbour", // the next hop's MAC is unknown and its queue is full
  "unsupported", // a method/family combination this plane does not implement
  "localPort", // FULLNAT could not find a free local port
  "error", // an exception while handling the frame (a bug; the frame is dropped)
  "dropPacket", // a new connection refused by the drop_packet defence (core/conn/defense.ts)
  "peData", // a new flow of a --pe service whose packet has no key for the engine (SIP: no Call-ID), dropped as the kernel does
  "synproxy", // a segment the SYN proxy holds back while the real server has not answered, or does not fit its handshake
  "fragOverlap", // an IPv6 fragment overlapping another of its datagram, or of a datagram dropped for that (RFC 5722)
  "fragMalformed", // an IPv6 fragment that cannot be part of a datagram (length, offset, end; ipv6-reassembly.ts)
  "fragTooMany", // an IPv6 datagram in more pieces than the reassembler allows
] as const;

export type DropReason = (typeof DROP_REASONS)[number];

export type Verdict = "forward" | "reply" | "consume" | "ignore" | "drop";

export class PlaneCounters {
  rx = 0;
  rxBytes = 0;
  forwarded = 0;
  replied = 0;
  consumed = 0;
  ignored = 0;
  dropped = 0;
  /** Frames handed to the io (forwarded, replies, ARP/NS probes, queued frames flushed). */
  tx = 0;
  txErrors = 0;
  arpReplies = 0;
  neighbourAdverts = 0;
  neighbourProbes = 0;
  icmpSent = 0;
  /** Fragments sent: IPv4 datagrams larger than the link (reassembled by the kernel on receipt), IPv6 datagrams reassembled here. */
  fragmentsOut = 0;
  /** Frames the kernel dropped before the pipeline saw them: the socket's receive queue was full. */
  rxSocketDrops = 0;
  /** SYN proxy (synproxy/): SYN-ACKs sent with a cookie, ACKs whose cookie was valid, and not. */
  synCookiesSent = 0;
  synCookiesValid = 0;
  synCookiesBad = 0;
  /** IPv6 fragments taken into reassembly (ipv6-defrag.ts); each is also a "consume" verdict. */
  fragmentsIn = 0;
  /** IPv6 datagrams reassembled (each then handled as one more received frame, here or on its flow's worker). */
  reassembled = 0;
  /** Reassembled datagrams passed to the worker that owns their flow. */
  reassemblyHandoffs = 0;
  /** Unfragmented IPv6 packets with extension headers passed to the worker that owns their flow. */
  extHandoffs = 0;
  /** IPv6 datagrams that did not complete in time (ip6frag_time), or were evicted for memory. */
  reassemblyTimeouts = 0;
  reassemblyEvicted = 0;
  /** Bytes the IPv6 reassembler holds now (a gauge; summed over workers). */
  reassemblyMemory = 0;
  drops: Record<DropReason, number>;

  constructor() {
    this.drops = Object.fromEntries(DROP_REASONS.map((r) => [r, 0])) as Record<DropReason, number>;
  }

  snapshot(): PlaneCounterSnapshot {
    return { ...this, drops: { ...this.drops } };
  }

  /** Add another worker's snapshot (the main thread's aggregate). */
  add(s: PlaneCounterSnapshot): void {
    for (const k of Object.keys(s) as (keyof PlaneCounterSnapshot)[]) {
      if (k === "drops") continue;
      (this as unknown as Record<string, number>)[k] = ((this as unknown as Record<string, number>)[k] ?? 0) + s[k];
    }
    for (const r of DROP_REASONS) this.drops[r] += s.drops[r] ?? 0;
  }
}

export interface PlaneCounterSnapshot {
  rx: number;
  rxBytes: number;
  forwarded: number;
  replied: number;
  consumed: number;
  ignored: number;
  dropped: number;
  tx: number;
  txErrors: number;
  arpReplies: number;
  neighbourAdverts: number;
  neighbourProbes: number;
  icmpSent: number;
  fragmentsOut: number;
  rxSocketDrops: number;
  synCookiesSent: number;
  synCookiesValid: number;
  synCookiesBad: number;
  fragmentsIn: number;
  reassembled: number;
  reassemblyHandoffs: number;
  extHandoffs: number;
  reassemblyTimeouts: number;
  reassemblyEvicted: number;
  reassemblyMemory: number;
  drops: Record<DropReason, number>;
}
