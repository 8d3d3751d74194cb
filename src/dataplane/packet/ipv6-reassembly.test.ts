// The IPv6 reassembler on its own: in-order, reversed and shuffled pieces rebuild the datagram
// byte for byte (the fragment header gone, the next header and payload length right, hop-by-hop
// headers kept); exact duplicates are ignored; an overlap kills the datagram and swallows the
// rest of it (RFC 5722); atomic fragments are not queued and do not disturb a queue with the same
// identification (RFC 6946); malformed pieces, too many pieces, the timeout (from the first
// fragment, not extended) and the memory limit (oldest queue evicted) do what they say.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { ipv6, udp } from "./frame-builder.ts";
import { findFragmentHeader, Ipv6Reassembler, PIECE_OVERHEAD, QUEUE_OVERHEAD } from "./ipv6-reassembly.ts";

const SRC = "2001:db8:1::1";
const DST = "2001:db8::10";

/** A UDP datagram of `size` payload bytes as an IPv6 packet (optionally behind a hop-by-hop header). */
function datagram(size: number, hopByHop = false, seed = 1): Buffer {
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 31 + seed) & 0xff;
  const u = udp(SRC, DST, 40000, 53, payload);
  if (!hopByHop) return ipv6(SRC, DST, 17, u);
  return ipv6(SRC, DST, 0, Buffer.concat([Buffer.from([17, 0, 1, 4, 0, 0, 0, 0]), u]));
}

/** Cut `packet` (unfragmentable part `unfrag` bytes) into fragments carrying `room` data bytes each. */
function cut(packet: Buffer, unfrag: number, room: number, id: number): Buffer[] {
  const data = packet.subarray(unfrag);
  const nextAt = unfrag === 40 ? 6 : 40; // the hop-by-hop header's next header is its first byte
  const out: Buffer[] = [];
  for (let off = 0; off < data.length; off += room) {
    const piece = data.subarray(off, Math.min(data.length, off + room));
    const f = Buffer.alloc(unfrag + 8 + piece.length);
    packet.copy(f, 0, 0, unfrag);
    f[nextAt] = 44;
    f[unfrag] = packet[nextAt]!;
    f.writeUInt16BE(off | (off + room < data.length ? 1 : 0), unfrag + 2);
    f.writeUInt32BE(id, unfrag + 4);
    piece.copy(f, unfrag + 8);
    f.writeUInt16BE(f.length - 40, 4);
    out.push(f);
  }
  return out;
}

function feed(r: Ipv6Reassembler, frags: Buffer[], now = 0) {
  return frags.map((f) => r.add(f, 0, f.length, now));
}

function shuffled<T>(xs: T[], seed: number): T[] {
  const out = [...xs];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) & 0x7fffffff;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("reassembly", () => {
  for (const [name, order] of [
    ["in order", (xs: Buffer[]) => xs],
    ["reversed", (xs: Buffer[]) => [...xs].reverse()],
    ["shuffled", (xs: Buffer[]) => shuffled(xs, 7)],
  ] as const) {
    test(`${name}: a 4000-byte datagram in 1232-byte pieces comes back byte for byte`, () => {
      const r = new Ipv6Reassembler();
      const d = datagram(4000);
      const frags = order(cut(d, 40, 1232, 0xabcd));
      const results = feed(r, frags);
      for (const x of results.slice(0, -1)) assert.deepEqual(x, { kind: "held" });
      const last = results.at(-1)!;
      assert.equal(last.kind, "done");
      if (last.kind !== "done") return;
      assert.deepEqual(Buffer.from(last.datagram.packet), d);
      assert.equal(last.datagram.fragments, 4);
      assert.equal(last.datagram.maxFragmentSize, 40 + 8 + 1232);
      assert.equal(r.queues, 0);
      assert.equal(r.memory, 0);
      assert.equal(r.stats.reassembled, 1);
    });
  }

  test("pieces are copied: fragments received one after another into the same Buffer slot", () => {
    const r = new Ipv6Reassembler();
    const d = datagram(4000);
    const slot = Buffer.alloc(2048);
    let last: ReturnType<Ipv6Reassembler["add"]> | undefined;
    for (const f of cut(d, 40, 1232, 21)) {
      slot.fill(0xee);
      f.copy(slot, 14);
      last = r.add(slot, 14, 14 + f.length, 0, 0);
    }
    assert.equal(last?.kind, "done");
    if (last?.kind === "done") {
      assert.deepEqual(Buffer.from(last.datagram.packet), d);
      assert.deepEqual(Buffer.from(last.datagram.link), Buffer.alloc(14, 0xee));
    }
  });

  test("a hop-by-hop header stays in front; its next header names UDP again", () => {
    const r = new Ipv6Reassembler();
    const d = datagram(3000, true);
    const last = feed(r, shuffled(cut(d, 48, 1000, 5), 3)).at(-1)!;
    assert.equal(last.kind, "done");
    if (last.kind === "done") assert.deepEqual(Buffer.from(last.datagram.packet), d);
  });

  test("datagrams with the same id from different sources, or different ids, do not mix", () => {
    const r = new Ipv6Reassembler();
    const a = cut(datagram(3000, false, 1), 40, 1448, 9);
    const b = cut(datagram(3000, false, 2), 40, 1448, 10);
    const c = cut(datagram(3000, false, 3), 40, 1448, 9);
    for (const f of c) f[23] = 2; // another source address (2001:db8:1::2), same id as a
    const out = feed(r, [a[0]!, b[0]!, c[0]!, a[1]!, b[1]!, c[1]!, c[2]!, b[2]!, a[2]!]);
    const done = out.filter((x) => x.kind === "done");
    assert.equal(done.length, 3);
    assert.equal(r.queues, 0);
  });

  test("the link header of the first fragment comes with the datagram", () => {
    const r = new Ipv6Reassembler();
    const frags = cut(datagram(2000), 40, 1232, 1);
    const link0 = Buffer.from("aabbccddeeff1122334455667788", "hex");
    const f1 = Buffer.concat([Buffer.alloc(14, 9), frags[1]!]);
    r.add(f1, 14, f1.length, 0, 0);
    const f0 = Buffer.concat([link0, frags[0]!]);
    const x = r.add(f0, 14, f0.length, 0, 0);
    assert.equal(x.kind, "done");
    if (x.kind === "done") {
      assert.deepEqual(Buffer.from(x.datagram.link), link0);
      assert.deepEqual(Buffer.from(x.datagram.frame), Buffer.concat([link0, x.datagram.packet]));
    }
  });

  test("fragments found behind a frame's link header (l3 > 0) and with Ethernet padding after them", () => {
    const r = new Ipv6Reassembler();
    const d = datagram(1500);
    const frags = cut(d, 40, 1232, 77).map((f) => Buffer.concat([Buffer.alloc(14, 1), f, Buffer.alloc(6)]));
    const out = frags.map((f) => r.add(f, 14, f.length, 0));
    const last = out.at(-1)!;
    assert.equal(last.kind, "done");
    if (last.kind === "done") assert.deepEqual(Buffer.from(last.datagram.packet), d);
  });
});

describe("refusals", () => {
  test("an exact duplicate is ignored; an overlap kills the datagram and swallows what follows (RFC 5722)", () => {
    const r = new Ipv6Reassembler();
    const frags = cut(datagram(4000), 40, 1232, 3);
    assert.deepEqual(feed(r, [frags[0]!, frags[0]!]), [{ kind: "held" }, { kind: "held" }]);
    assert.equal(r.stats.duplicates, 1);
    // A piece at offset 8 (overlapping the first piece's 1232 bytes).
    const overlap = Buffer.from(frags[1]!);
    overlap.writeUInt16BE(8 | 1, 42);
    assert.deepEqual(r.add(overlap, 0, overlap.length, 0), { kind: "drop", reason: "overlap" });
    assert.equal(r.memory, QUEUE_OVERHEAD, "pieces freed, a tombstone kept");
    // The rest of the datagram, even the pieces that would have completed it, is dropped.
    for (const f of frags.slice(1)) assert.deepEqual(r.add(f, 0, f.length, 0), { kind: "drop", reason: "overlap" });
    assert.equal(r.stats.reassembled, 0);
    // Once the tombstone expires, the same id may be used again.
    r.expire(60_000);
    assert.equal(r.queues, 0);
    assert.equal(feed(r, frags, 60_001).at(-1)!.kind, "done");
  });

  test("overlap with the previous piece's tail and with the next piece's head both count", () => {
    for (const off of [1224, 2456]) {
      const r = new Ipv6Reassembler();
      const frags = cut(datagram(4000), 40, 1232, 4);
      feed(r, [frags[0]!, frags[2]!]);
      const bad = Buffer.from(frags[1]!);
      bad.writeUInt16BE(off | 1, 42);
      assert.deepEqual(r.add(bad, 0, bad.length, 0), { kind: "drop", reason: "overlap" }, `offset ${off}`);
    }
  });

  test("atomic fragments (offset 0, M = 0) are not queued and leave a queue with the same id alone (RFC 6946)", () => {
    const r = new Ipv6Reassembler();
    const frags = cut(datagram(3000), 40, 1232, 42);
    r.add(frags[0]!, 0, frags[0]!.length, 0);
    const atomic = cut(datagram(100), 40, 1232, 42)[0]!;
    assert.equal(atomic.readUInt16BE(42), 0);
    assert.deepEqual(r.add(atomic, 0, atomic.length, 0), { kind: "atomic" });
    assert.equal(r.stats.atomic, 1);
    assert.equal(feed(r, frags.slice(1)).at(-1)!.kind, "done");
  });

  test("malformed: a non-last piece not a multiple of 8, a piece past 65535, past the known end, two different ends", () => {
    const base = () => cut(datagram(4000), 40, 1232, 8);
    const r = new Ipv6Reassembler();
    const odd = Buffer.from(base()[0]!.subarray(0, base()[0]!.length - 3));
    odd.writeUInt16BE(odd.length - 40, 4);
    assert.deepEqual(r.add(odd, 0, odd.length, 0), { kind: "drop", reason: "malformed" });
    const far = Buffer.from(base()[1]!);
    far.writeUInt16BE(65528 | 1, 42);
    assert.deepEqual(r.add(far, 0, far.length, 0), { kind: "drop", reason: "malformed" });
    const r2 = new Ipv6Reassembler();
    const fs = base();
    r2.add(fs[3]!, 0, fs[3]!.length, 0); // the last piece fixes the end at 4008
    const past = Buffer.from(fs[1]!);
    past.writeUInt16BE(3696 | 1, 42);
    assert.deepEqual(r2.add(past, 0, past.length, 0), { kind: "drop", reason: "malformed" });
    const r3 = new Ipv6Reassembler();
    r3.add(fs[3]!, 0, fs[3]!.length, 0);
    const otherEnd = Buffer.from(fs[2]!);
    otherEnd.writeUInt16BE(2464, 42); // M = 0 at another place
    assert.deepEqual(r3.add(otherEnd, 0, otherEnd.length, 0), { kind: "drop", reason: "malformed" });
    // A header chain that does not reach a fragment header, or is cut short.
    const plain = datagram(100);
    assert.deepEqual(r3.add(plain, 0, plain.length, 0), { kind: "drop", reason: "malformed" });
    assert.deepEqual(r3.add(fs[0]!, 0, 45, 0), { kind: "drop", reason: "malformed" });
    assert.equal(r.stats.malformed + r2.stats.malformed + r3.stats.malformed, 6);
  });

  test("too many pieces kills the datagram", () => {
    const r = new Ipv6Reassembler({ maxFragments: 4 });
    const frags = cut(datagram(1000), 40, 200, 11); // 6 pieces
    const out = feed(r, frags);
    assert.deepEqual(out.slice(0, 4), Array(4).fill({ kind: "held" }));
    assert.deepEqual(out[4], { kind: "drop", reason: "tooManyFragments" });
    assert.deepEqual(out[5], { kind: "drop", reason: "overlap" }, "the rest is swallowed");
  });
});

describe("bounds", () => {
  test("a datagram times out 60 s after its first fragment, however late its other fragments come", () => {
    const r = new Ipv6Reassembler();
    const frags = cut(datagram(4000), 40, 1232, 12);
    r.add(frags[0]!, 0, frags[0]!.length, 1000);
    r.add(frags[1]!, 0, frags[1]!.length, 59_000);
    r.add(frags[2]!, 0, frags[2]!.length, 60_999);
    assert.equal(r.expire(60_999), 0);
    assert.equal(r.expire(61_000), 1);
    assert.equal(r.stats.timeouts, 1);
    assert.equal(r.queues, 0);
    assert.equal(r.memory, 0);
    // The last piece alone now starts a new queue that cannot complete.
    assert.deepEqual(r.add(frags[3]!, 0, frags[3]!.length, 61_001), { kind: "held" });
    assert.equal(new Ipv6Reassembler({ timeoutMs: 30_000 }).limits.timeoutMs, 30_000);
  });

  test("memory: each piece costs its bytes plus overhead; past the limit the oldest queues are evicted", () => {
    const limit = 200_000;
    const r = new Ipv6Reassembler({ memoryLimit: limit });
    // 100 datagrams that never complete (the last piece missing), 2 × 1232 bytes each held.
    for (let id = 0; id < 100; id++) {
      const frags = cut(datagram(4000), 40, 1232, id);
      feed(r, frags.slice(0, 2), id);
      assert.ok(r.memory <= limit, `memory ${r.memory} after ${id + 1}`);
    }
    const perQueue = QUEUE_OVERHEAD + 2 * (1232 + PIECE_OVERHEAD) + 40;
    assert.equal(r.queues, Math.floor(limit / perQueue));
    assert.equal(r.stats.evicted, 100 - r.queues);
    // The newest are kept: a late piece of datagram 99 completes it (with its third and fourth).
    const last = cut(datagram(4000), 40, 1232, 99);
    assert.equal(feed(r, last.slice(2), 100).at(-1)!.kind, "done");
    // The oldest are gone: datagram 0's remaining pieces start over.
    const first = cut(datagram(4000), 40, 1232, 0);
    assert.equal(feed(r, first.slice(2), 101).at(-1)!.kind, "held");
  });

  test("a flood of never-completed fragments: queues evicted oldest first, expired in age order, completed ones out of the way", () => {
    const r = new Ipv6Reassembler();
    // One-piece queues: a last piece (offset 8, M = 0, no data) whose first piece never comes.
    const lone = (id: number): Buffer => {
      const f = Buffer.alloc(48);
      f[0] = 0x60;
      f.writeUInt16BE(8, 4);
      f[6] = 44;
      f[40] = 17;
      f.writeUInt16BE(8, 42);
      f.writeUInt32BE(id, 44);
      return f;
    };
    const perQueue = QUEUE_OVERHEAD + PIECE_OVERHEAD;
    const fits = Math.floor(r.limits.memoryLimit / perQueue);
    const flood = 3 * fits;
    for (let id = 0; id < flood; id++) {
      assert.deepEqual(r.add(lone(id), 0, 48, id), { kind: "held" });
      // Datagrams that complete among the flood leave no queue behind.
      if (id % 1000 === 0) {
        const whole = cut(datagram(100), 40, 64, 0x8000_0000 + id);
        assert.equal(feed(r, whole, id).at(-1)!.kind, "done");
      }
    }
    assert.equal(r.queues, fits);
    assert.equal(r.memory, fits * perQueue);
    assert.equal(r.stats.evicted, flood - fits);
    // The survivors are the newest: the oldest of them expires first, one a millisecond.
    const firstKept = flood - fits;
    assert.equal(r.expire(firstKept + 60_000), 1);
    assert.equal(r.expire(firstKept + 60_009), 9);
    assert.equal(r.queues, fits - 10);
    // A kept queue is still found: its first piece completes it.
    const head = Buffer.alloc(56);
    head[0] = 0x60;
    head.writeUInt16BE(16, 4);
    head[6] = 44;
    head[40] = 17;
    head.writeUInt16BE(1, 42);
    head.writeUInt32BE(flood - 1, 44);
    assert.equal(r.add(head, 0, 56, flood).kind, "done");
    assert.equal(r.expire(flood + 60_000), fits - 11);
    assert.equal(r.queues, 0);
    assert.equal(r.memory, 0);
    assert.equal(r.stats.timeouts, fits - 1);
  });

  test("limits are checked", () => {
    assert.throws(() => new Ipv6Reassembler({ memoryLimit: 1000 }), /Invalid reassembly memory limit "1000"/);
    assert.throws(() => new Ipv6Reassembler({ timeoutMs: 0 }), /Invalid reassembly timeout "0"/);
    assert.throws(() => new Ipv6Reassembler({ maxFragments: 1 }), /Invalid reassembly fragment limit "1"/);
  });

  test("findFragmentHeader walks hop-by-hop, routing and destination options headers", () => {
    const f = cut(datagram(3000, true), 48, 1232, 0x01020304)[1]!;
    assert.deepEqual(findFragmentHeader(f, 0, f.length), {
      nextHeaderAt: 40,
      at: 48,
      next: 17,
      offset: 1232,
      more: true,
      id: 0x01020304,
    });
    assert.equal(findFragmentHeader(datagram(10), 0, 80), undefined);
  });
});
