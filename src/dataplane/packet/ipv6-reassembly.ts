// IPv6 fragment reassembly for the packet plane: what the kernel's nf_defrag_ipv6 does in front of
// IPVS, done by the worker that the steering program sends all of a datagram's fragments to
// (steering.ts steers fragments by addresses alone). The packet socket's own defrag
// (PACKET_FANOUT_FLAG_DEFRAG) covers IPv4 only, so without this an IPv6 fragment to a VIP has no
// ports to look a connection up with and is dropped.
//
// How it works. A fragment (RFC 8200 §4.5) is the unfragmentable part (the fixed header and any
// hop-by-hop, routing or destination-options headers before the fragment header), an 8-byte
// fragment header (next header, offset in 8-byte units, M flag, 32-bit identification) and a
// piece of the fragmentable part. Fragments are queued per (source, destination, identification);
// each queue holds its pieces sorted by offset, the number of bytes received, and, once the last
// piece (M = 0) has come, the datagram's total length. When the pieces cover 0..total with no
// gap, the datagram is rebuilt: the first fragment's unfragmentable part, its "next header" field
// that named the fragment header now naming what the fragment header named, the payload length
// recomputed, and the pieces in order. The queue remembers the largest fragment it received
// (IP header included): the forwarder cuts the datagram again to that size on the way out, as the
// kernel does with frag_max_size after netfilter reassembly (see xmit/fragment6.ts).
//
// What is refused, and why:
//   - Overlap (RFC 5722): a piece that overlaps another without being an exact duplicate kills the
//     whole datagram, including fragments still to come: the queue is turned into a tombstone
//     that swallows them until it expires. An exact duplicate (same offset and length) is
//     ignored, as the kernel ignores it.
//   - Malformed: a non-last piece whose length is not a multiple of 8 or is empty, a piece ending
//     past 65535 bytes, a piece past the end the last piece fixed (or a second "last" piece
//     disagreeing about it), a datagram whose rebuilt payload would pass 65535 bytes. The kernel
//     answers some of these with ICMPv6 parameter problems; the director only drops them.
//   - Too many pieces: more than maxFragments per datagram (the kernel counts memory only; a
//     count cap bounds the per-fragment work of a flood of 8-byte pieces).
//   - Atomic fragments (RFC 6946: offset 0 and M = 0) are not queued at all: the caller handles
//     them as the unfragmented packets they are, and they never touch a queue with the same
//     identification.
// Memory: every piece costs its length plus PIECE_OVERHEAD bytes (tiny pieces are not free);
// when a new piece would take the total past memoryLimit, the oldest queues are evicted until it
// fits. The kernel instead refuses new fragments above ip6frag_high_thresh until old queues time
// out, which lets a slow trickle of never-completed fragments block all reassembly for the whole
// timeout; evicting the oldest means only a flood faster than legitimate datagrams complete can
// starve them. Queues expire timeoutMs after their first fragment (ip6frag_time, 60 s by
// default); the timer is not extended by later fragments, as in the kernel. No ICMPv6 "time
// exceeded" is sent for an expired queue (the kernel sends one when it had the first fragment).
//
// Pure: no I/O and no timers; time comes in as `now` (ms), expiry is expire(now).

export const IPV6_HLEN = 40;
export const FRAG_HLEN = 8;
const NEXTHDR_HOP = 0;
const NEXTHDR_ROUTING = 43;
const NEXTHDR_FRAGMENT = 44;
const NEXTHDR_DEST = 60;
const MAX_PAYLOAD = 65535;
/** What a queued piece costs besides its bytes (bookkeeping; keeps floods of tiny pieces bounded). */
export const PIECE_OVERHEAD = 64;
/** What a queue costs besides its pieces (key, unfragmentable part, link header). */
export const QUEUE_OVERHEAD = 256;

export interface ReassemblyLimits {
  /** Bytes all queues may hold together (the kernel's ip6frag_high_thresh is 4 MB). */
  memoryLimit: number;
  /** How long a datagram may take to complete, from its first fragment (ip6frag_time: 60 s). */
  timeoutMs: number;
  /** Pieces one datagram may have. */
  maxFragments: number;
}

export const DEFAULT_REASSEMBLY_LIMITS: ReassemblyLimits = {
  memoryLimit: 4 << 20,
  timeoutMs: 60_000,
  maxFragments: 128,
};

export type ReassemblyDrop = "malformed" | "overlap" | "tooManyFragments";

export type ReassemblyResult =
  /** Kept (or an exact duplicate, ignored); the datagram is not complete yet. */
  | { kind: "held" }
  /** Offset 0 and M = 0: handle the packet as if it were not fragmented (RFC 6946). */
  | { kind: "atomic" }
  /** The fragment was dropped (and with it, for "overlap", the whole datagram). */
  | { kind: "drop"; reason: ReassemblyDrop }
  /** The datagram is complete. */
  | { kind: "done"; datagram: Reassembled };

export interface Reassembled {
  /** The link header of the first fragment (offset 0), then the whole IPv6 packet: one buffer. */
  frame: Uint8Array;
  /** The whole IPv6 packet (a view into frame): the first fragment's headers without the fragment header, then all data. */
  packet: Uint8Array;
  /** The link header (a view into frame). */
  link: Uint8Array;
  /** The largest fragment received, IPv6 header included (the kernel's frag_max_size). */
  maxFragmentSize: number;
  fragments: number;
  /** The fragments' identification. */
  id: number;
}

/** Where the fragment header is in an IPv6 packet, and what it says. */
export interface FragmentHeader {
  /** Offset (from l3) of the byte that holds 44 (the "next header" naming the fragment header). */
  nextHeaderAt: number;
  /** Offset (from l3) of the fragment header itself: the length of the unfragmentable part. */
  at: number;
  next: number;
  /** Byte offset of this piece in the fragmentable part. */
  offset: number;
  more: boolean;
  id: number;
}

/**
 * Find the fragment header of the IPv6 packet at buf[l3..end), walking the extension headers
 * that may precede it (hop-by-hop, routing, destination options); undefined when there is none
 * or the headers are truncated.
 */
export function findFragmentHeader(buf: Uint8Array, l3: number, end: number): FragmentHeader | undefined {
  if (end - l3 < IPV6_HLEN || buf[l3]! >>> 4 !== 6) return undefined;
  let nextAt = 6;
  let at = IPV6_HLEN;
  for (let hops = 0; hops < 8; hops++) {
    const next = buf[l3 + nextAt]!;
    if (next === NEXTHDR_FRAGMENT) {
      if (l3 + at + FRAG_HLEN > end) return undefined;
      const p = l3 + at;
      const fo = (buf[p + 2]! << 8) | buf[p + 3]!;
      return {
        nextHeaderAt: nextAt,
        at,
        next: buf[p]!,
        offset: fo & 0xfff8,
        more: (fo & 1) !== 0,
        id: ((buf[p + 4]! << 24) | (buf[p + 5]! << 16) | (buf[p + 6]! << 8) | buf[p + 7]!) >>> 0,
      };
    }
    if (next !== NEXTHDR_HOP && next !== NEXTHDR_ROUTING && next !== NEXTHDR_DEST) return undefined;
    if (l3 + at + 8 > end) return undefined;
    nextAt = at;
    at += (buf[l3 + at + 1]! + 1) * 8;
  }
  return undefined;
}

interface Piece {
  offset: number;
  end: number;
  data: Uint8Array;
}

interface Queue {
  key: string;
  expiresAt: number;
  /** Kept only to swallow the rest of a datagram killed by an overlap. */
  dead: boolean;
  pieces: Piece[];
  received: number;
  /** Total length of the fragmentable part, once the last piece came (-1 before). */
  total: number;
  /** From the first piece (offset 0): its unfragmentable part, the next-header position and value, its link header. */
  head: Uint8Array | undefined;
  nextHeaderAt: number;
  next: number;
  link: Uint8Array;
  maxFragmentSize: number;
  cost: number;
  id: number;
  /** Taken out of the lookup map (completed, expired or evicted); still in the age list until passed. */
  removed: boolean;
}

export interface ReassemblyStats {
  /** Fragments given to add() (atomic ones included). */
  fragments: number;
  reassembled: number;
  atomic: number;
  duplicates: number;
  /** Datagrams dropped for overlapping pieces (RFC 5722), and fragments swallowed after that. */
  overlaps: number;
  malformed: number;
  tooManyFragments: number;
  /** Queues that expired incomplete. */
  timeouts: number;
  /** Queues evicted to make room (memory limit). */
  evicted: number;
}

export class Ipv6Reassembler {
  readonly limits: ReassemblyLimits;
  readonly stats: ReassemblyStats = {
    fragments: 0,
    reassembled: 0,
    atomic: 0,
    duplicates: 0,
    overlaps: 0,
    malformed: 0,
    tooManyFragments: 0,
    timeouts: 0,
    evicted: 0,
  };
  readonly #queues = new Map<string, Queue>();
  /**
   * Every queue in creation order (age order) from #oldest on; removed ones are skipped when
   * reached and the list is compacted now and then. Expiry and eviction walk this list, not the
   * map: they touch only the queues they remove, so a full reassembler costs a fragment O(1)
   * (a walk over a map with deletions at its front passes every deleted slot each time).
   */
  #age: Queue[] = [];
  #oldest = 0;
  #memory = 0;

  constructor(limits: Partial<ReassemblyLimits> = {}) {
    this.limits = { ...DEFAULT_REASSEMBLY_LIMITS, ...limits };
    const { memoryLimit, timeoutMs, maxFragments } = this.limits;
    if (!(memoryLimit >= 2 * (MAX_PAYLOAD + QUEUE_OVERHEAD)))
      throw new RangeError(`Invalid reassembly memory limit "${memoryLimit}": at least two whole datagrams must fit`);
    if (!(timeoutMs > 0)) throw new RangeError(`Invalid reassembly timeout "${timeoutMs}" ms`);
    if (!Number.isInteger(maxFragments) || maxFragments < 2)
      throw new RangeError(`Invalid reassembly fragment limit "${maxFragments}"`);
  }

  /** Bytes held by all queues. */
  get memory(): number {
    return this.#memory;
  }

  /** Datagrams being reassembled (and tombstones of killed ones). */
  get queues(): number {
    return this.#queues.size;
  }

  /**
   * Take the fragment at buf[l3..end) (an IPv6 packet with a fragment header; buf[linkFrom..l3)
   * is its link header, remembered from the first piece). The bytes are copied: buf may be reused.
   */
  add(buf: Uint8Array, l3: number, end: number, now: number, linkFrom = l3): ReassemblyResult {
    this.stats.fragments++;
    const fh = findFragmentHeader(buf, l3, end);
    if (fh === undefined) return this.#malformed();
    const payloadEnd = l3 + IPV6_HLEN + ((buf[l3 + 4]! << 8) | buf[l3 + 5]!);
    if (payloadEnd > end) return this.#malformed();
    const dataStart = l3 + fh.at + FRAG_HLEN;
    if (dataStart > payloadEnd) return this.#malformed();
    const len = payloadEnd - dataStart;
    if (fh.offset === 0 && !fh.more) {
      this.stats.atomic++;
      return { kind: "atomic" };
    }
    const pieceEnd = fh.offset + len;
    // Non-last pieces are whole multiples of 8 bytes; nothing ends past the largest payload.
    if ((fh.more && (len === 0 || len % 8 !== 0)) || pieceEnd > MAX_PAYLOAD) return this.#malformed();

    this.expire(now);
    const key = queueKey(buf, l3, fh.id);
    let q = this.#queues.get(key);
    if (q?.dead) {
      this.stats.overlaps++;
      return { kind: "drop", reason: "overlap" };
    }
    if (q === undefined) {
      q = {
        key,
        expiresAt: now + this.limits.timeoutMs,
        dead: false,
        pieces: [],
        received: 0,
        total: -1,
        head: undefined,
        nextHeaderAt: 0,
        next: 0,
        link: new Uint8Array(0),
        maxFragmentSize: 0,
        cost: QUEUE_OVERHEAD,
        id: fh.id,
        removed: false,
      };
      this.#queues.set(key, q);
      this.#age.push(q);
      this.#memory += q.cost;
    }

    // The end of the datagram: fixed by the last piece, and no piece may pass it.
    if (!fh.more) {
      if ((q.total >= 0 && q.total !== pieceEnd) || q.pieces.some((p) => p.end > pieceEnd))
        return this.#kill(q, "malformed");
      q.total = pieceEnd;
    } else if (q.total >= 0 && pieceEnd > q.total) return this.#kill(q, "malformed");

    // Sorted insert; an exact duplicate is ignored, any other overlap kills the datagram.
    let at = 0;
    while (at < q.pieces.length && q.pieces[at]!.offset < fh.offset) at++;
    const before = q.pieces[at - 1];
    const after = q.pieces[at];
    if (after !== undefined && after.offset === fh.offset && after.end === pieceEnd) {
      this.stats.duplicates++;
      return { kind: "held" };
    }
    if ((before !== undefined && before.end > fh.offset) || (after !== undefined && after.offset < pieceEnd)) {
      this.stats.overlaps++;
      this.#bury(q);
      return { kind: "drop", reason: "overlap" };
    }
    if (q.pieces.length >= this.limits.maxFragments) return this.#kill(q, "tooManyFragments");

    const cost = len + PIECE_OVERHEAD + (fh.offset === 0 ? fh.at + l3 - linkFrom : 0);
    this.#makeRoom(cost, q);
    q.pieces.splice(at, 0, { offset: fh.offset, end: pieceEnd, data: copy(buf, dataStart, payloadEnd) });
    q.received += len;
    q.cost += cost;
    this.#memory += cost;
    q.maxFragmentSize = Math.max(q.maxFragmentSize, payloadEnd - l3);
    if (fh.offset === 0) {
      q.head = copy(buf, l3, l3 + fh.at);
      q.nextHeaderAt = fh.nextHeaderAt;
      q.next = fh.next;
      q.link = copy(buf, linkFrom, l3);
    }
    if (q.total < 0 || q.received !== q.total || q.head === undefined) return { kind: "held" };
    if (q.head.length - IPV6_HLEN + q.total > MAX_PAYLOAD) return this.#kill(q, "malformed");
    return { kind: "done", datagram: this.#rebuild(q) };
  }

  /**
   * Drop queues whose time is up; returns how many incomplete datagrams expired. Queues are kept
   * in creation order and all live timeoutMs, so they expire in that order: the walk stops at the
   * first queue still alive. (Walking them all cost every fragment a pass over up to memoryLimit /
   * (QUEUE_OVERHEAD + PIECE_OVERHEAD) queues, some 13,000: a flood of never-completed fragments
   * cost a millisecond each.)
   */
  expire(now: number): number {
    let n = 0;
    for (; this.#oldest < this.#age.length; this.#oldest++) {
      const q = this.#age[this.#oldest]!;
      if (q.removed) continue;
      if (q.expiresAt > now) break;
      this.#remove(q);
      if (!q.dead) n++;
    }
    this.#compact();
    this.stats.timeouts += n;
    return n;
  }

  #malformed(): ReassemblyResult {
    this.stats.malformed++;
    return { kind: "drop", reason: "malformed" };
  }

  #kill(q: Queue, reason: "malformed" | "tooManyFragments"): ReassemblyResult {
    this.stats[reason]++;
    this.#bury(q);
    return { kind: "drop", reason };
  }

  /** Free a queue's pieces but keep it until it expires, so the rest of its datagram is swallowed. */
  #bury(q: Queue): void {
    this.#memory -= q.cost - QUEUE_OVERHEAD;
    q.cost = QUEUE_OVERHEAD;
    q.dead = true;
    q.pieces = [];
    q.head = undefined;
    q.link = new Uint8Array(0);
  }

  #remove(q: Queue): void {
    q.removed = true;
    this.#queues.delete(q.key);
    this.#memory -= q.cost;
  }

  /** Evict the oldest queues (never `keep`) until `cost` more bytes fit. */
  #makeRoom(cost: number, keep: Queue): void {
    for (let i = this.#oldest; i < this.#age.length; i++) {
      if (this.#memory + cost <= this.limits.memoryLimit) break;
      const q = this.#age[i]!;
      if (q.removed || q === keep) continue;
      this.#remove(q);
      if (!q.dead) this.stats.evicted++;
    }
    while (this.#oldest < this.#age.length && this.#age[this.#oldest]!.removed) this.#oldest++;
    this.#compact();
  }

  /** Drop the passed front of the age list once it is most of the list. */
  #compact(): void {
    if (this.#oldest === this.#age.length) {
      this.#age = [];
      this.#oldest = 0;
    } else if (this.#oldest > 1024 && this.#oldest * 2 > this.#age.length) {
      this.#age = this.#age.slice(this.#oldest);
      this.#oldest = 0;
    }
  }

  #rebuild(q: Queue): Reassembled {
    const head = q.head!;
    const linkLen = q.link.length;
    const frame = new Uint8Array(linkLen + head.length + q.total);
    frame.set(q.link, 0);
    const packet = frame.subarray(linkLen);
    packet.set(head, 0);
    packet[q.nextHeaderAt] = q.next;
    const plen = head.length - IPV6_HLEN + q.total;
    packet[4] = plen >>> 8;
    packet[5] = plen & 0xff;
    for (const p of q.pieces) packet.set(p.data, head.length + p.offset);
    const datagram: Reassembled = {
      frame,
      packet,
      link: frame.subarray(0, linkLen),
      maxFragmentSize: q.maxFragmentSize,
      fragments: q.pieces.length,
      id: q.id,
    };
    this.#remove(q);
    this.stats.reassembled++;
    return datagram;
  }
}

/** A copy of buf[from..to) (a Buffer's own slice() would be a view of memory the caller reuses). */
function copy(buf: Uint8Array, from: number, to: number): Uint8Array {
  return Uint8Array.prototype.slice.call(buf, from, to);
}

function queueKey(buf: Uint8Array, l3: number, id: number): string {
  // 18 UTF-16 code units: the identification, then the 16 groups of both addresses.
  let k = String.fromCharCode(id >>> 16, id & 0xffff);
  for (let i = 8; i < 40; i += 2) k += String.fromCharCode((buf[l3 + i]! << 8) | buf[l3 + i + 1]!);
  return k;
}
