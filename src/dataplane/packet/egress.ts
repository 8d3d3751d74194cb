// The way out of the director: a rewritten frame leaves towards its on-link next hop. Egress
// resolves the next hop's MAC (through the neighbour responder: a probe, and the frame held
// until the answer), pads short frames to the Ethernet minimum, and handles frames larger than
// the link: IPv4 without DF is cut into fragments (a datagram the kernel reassembled before the
// packet socket, see xmit/fragment.ts), anything else gets ICMP "fragmentation needed" / ICMPv6
// "packet too big" and is dropped. Software GSO cuts a TCPv4 super-frame into MSS-sized frames
// for a method that cannot pass it on whole (xmit/segment.ts).

import { ETH_ZLEN, setMacs } from "./codec/eth.ts";
import { writeFragNeeded, writePacketTooBig } from "./codec/icmp.ts";
import { bytesEqual } from "./codec/ipv6.ts";
import type { DropReason, PlaneCounters, Verdict } from "./counters.ts";
import { finishL4Checksum } from "./finish-checksum.ts";
import { FrameBatch, VNET_HDR_LEN } from "./io.ts";
import { type NeighbourResponder, vnetHead } from "./neighbour-responder.ts";
import { Pkt } from "./pkt.ts";
import { fragmentIpv4 } from "./xmit/fragment.ts";
import { fragmentIpv6 } from "./xmit/fragment6.ts";
import { segmentTcp4 } from "./xmit/segment.ts";

/** Where drops are counted and the current frame's drop reason kept (the pipeline). */
export interface DropRecord {
  drop(reason: DropReason): Verdict;
  /** Drop reason of the frame being handled ("" while none). */
  reason: DropReason | "";
}

export interface EgressOptions {
  mac: Uint8Array;
  mtu: number;
  counters: PlaneCounters;
  responder: NeighbourResponder;
  drops: DropRecord;
}

/** Length of the IP packet at l3 (IPv4 total length, or IPv6's 40 + payload length). */
function ipPacketLength(buf: Uint8Array, l3: number): number {
  const v = buf[l3]! >>> 4;
  const field = (buf[l3 + (v === 4 ? 2 : 4)]! << 8) | buf[l3 + (v === 4 ? 3 : 5)]!;
  return v === 4 ? field : 40 + field;
}

export class Egress {
  readonly #o: EgressOptions;
  readonly #seg = new Pkt();
  /** Where frames go; replaced by begin() for every batch (a placeholder until the first). */
  #batch: FrameBatch = new FrameBatch(1, 64, 1, 0);
  #now = 0;

  constructor(o: EgressOptions) {
    this.#o = o;
  }

  /** Frames from now on go into `batch`; `now` dates neighbour probes. */
  begin(batch: FrameBatch, now: number): void {
    this.#batch = batch;
    this.#now = now;
  }

  /** Send the frame to a known MAC. */
  toMac(p: Pkt, mac: Uint8Array): Verdict {
    setMacs(p.buf, p.eth, mac, this.#o.mac);
    if (!p.gso && (p.fragMax > 0 || ipPacketLength(p.buf, p.l3) > this.#o.mtu)) return this.#oversize(p);
    this.emit(p);
    return "forward";
  }

  /** Send the frame to the on-link next hop `addr`, resolving its MAC (held until known). */
  toNeighbour(p: Pkt, addr: string): Verdict {
    const r = this.#o.responder;
    const n = r.neighbours;
    const e = n.entry(addr);
    if (n.probeDue(e, this.#now)) r.probe(this.#batch, addr, p.vnet);
    const mac = e.mac;
    if (mac !== undefined) return this.toMac(p, mac);
    const len = this.#padded(p);
    if (!n.hold(addr, p.buf.subarray(p.off, p.off + len))) return this.#o.drops.drop("neighbour");
    return "forward";
  }

  /** Queue the frame as it is (after padding). */
  emit(p: Pkt): void {
    this.#batch.queue(p.off, this.#padded(p));
  }

  /** ICMP "fragmentation needed" (ICMPv6 "packet too big") back to the sender of p, from p's destination. */
  fragNeeded(p: Pkt, mtu: number): void {
    const batch = this.#batch;
    const off = batch.allocGen();
    if (off < 0) return;
    const h = vnetHead(batch.buf, off, p.vnet);
    const mac = this.#o.mac;
    const srcMac = p.buf.subarray(p.eth + 6, p.eth + 12);
    let len: number;
    if (p.family === 6) {
      const src = p.buf.subarray(p.l3 + 24, p.l3 + 40);
      const dst = p.buf.subarray(p.l3 + 8, p.l3 + 24);
      len = writePacketTooBig(batch.buf, off + h, srcMac, mac, src, dst, mtu, p.buf, p.l3, p.end - p.l3);
    } else {
      len = writeFragNeeded(batch.buf, off + h, srcMac, mac, p.daddr4, p.saddr4, mtu, p.buf, p.l3, p.end - p.l3);
    }
    batch.queue(off, h + len);
    this.#o.counters.icmpSent++;
  }

  /**
   * Cut a TCPv4 GSO super-frame into MSS-sized frames in scratch slots, each sent by `each`.
   * Forwarded when any segment was; otherwise one drop with the segments' reason ("gso" when
   * none could be made). Segments are not frames of their own: their drops are not counted.
   */
  segment(p: Pkt, each: (seg: Pkt) => Verdict): Verdict {
    const batch = this.#batch;
    const drops = this.#o.drops;
    let forwarded = 0;
    let reason: DropReason | "" = "";
    const saved = drops.reason;
    const made = segmentTcp4(
      p,
      batch.buf,
      () => batch.allocGen(),
      this.#seg,
      (seg) => {
        drops.reason = "";
        const v = each(seg);
        if (v === "forward") forwarded++;
        else if (v === "drop" && drops.reason !== "") {
          this.#o.counters.drops[drops.reason]--;
          reason = drops.reason;
        }
      },
    );
    drops.reason = saved;
    if (forwarded > 0) return "forward";
    return drops.drop(made === 0 || reason === "" ? "gso" : reason);
  }

  /** A packet larger than the link: fragments for IPv4 without DF, else an ICMP error and a drop. */
  #oversize(p: Pkt): Verdict {
    if (p.fragMax > 0) return this.#refragment(p);
    const buf = p.buf;
    const mtu = this.#o.mtu;
    if (buf[p.l3]! >>> 4 === 4 && (buf[p.l3 + 6]! & 0x40) === 0) {
      if (p.partial) finishL4Checksum(p);
      const batch = this.#batch;
      const made = fragmentIpv4(
        buf,
        p.off,
        p.l3,
        p.vnet ? VNET_HDR_LEN : 0,
        mtu,
        batch.buf,
        () => batch.allocGen(),
        (off, len) => batch.queue(off, len),
      );
      if (made === 0) return this.#o.drops.drop("mtu");
      this.#o.counters.fragmentsOut += made;
      return "forward";
    }
    this.fragNeeded(p, mtu);
    return this.#o.drops.drop("mtu");
  }

  /**
   * An IPv6 datagram the director reassembled leaves in fragments no larger than the largest it
   * arrived in (the kernel's frag_max_size, honoured by ip6_fragment); if that largest fragment
   * does not fit the link, the sender gets "packet too big" and the datagram is dropped, as IPVS's
   * __mtu_check_toobig_v6 does. A tunnel's outer IPv4 header (DF clear) is cut the IPv4 way.
   */
  #refragment(p: Pkt): Verdict {
    const buf = p.buf;
    const mtu = this.#o.mtu;
    if (p.fragMax > mtu) {
      this.fragNeeded(p, mtu);
      return this.#o.drops.drop("mtu");
    }
    const batch = this.#batch;
    const vnetLen = p.vnet ? VNET_HDR_LEN : 0;
    const alloc = () => batch.allocGen();
    const emit = (off: number, len: number) => batch.queue(off, len);
    const made =
      buf[p.l3]! >>> 4 === 6
        ? fragmentIpv6(buf, p.off, p.l3, vnetLen, p.fragMax, this.#fragIdFor(p), batch.buf, alloc, emit)
        : (buf[p.l3 + 6]! & 0x40) === 0
          ? fragmentIpv4(buf, p.off, p.l3, vnetLen, p.fragMax, batch.buf, alloc, emit)
          : 0;
    if (made === 0) return this.#o.drops.drop("mtu");
    this.#o.counters.fragmentsOut += made;
    return "forward";
  }

  /**
   * The identification of the fragments: the datagram's own while it leaves from the source that
   * chose it (NAT, DR: that source keeps its identifications unique), a fresh one when the
   * director rewrote the source or wrapped it in its own header (FULLNAT, replies from the VIP,
   * tunnels), since the identifications of different sources would collide there.
   */
  #fragIdFor(p: Pkt): number {
    if (p.fragSrc !== undefined && bytesEqual(p.buf, p.l3 + 8, p.fragSrc)) return p.fragId;
    this.#fragId = (this.#fragId + 1) >>> 0;
    return this.#fragId;
  }

  #fragId = Math.floor(Math.random() * 0x100000000);

  /** Length of the frame from p.off when padded to the Ethernet minimum; zero-fills the pad. */
  #padded(p: Pkt): number {
    const ethLen = p.end - p.eth;
    if (ethLen < ETH_ZLEN) {
      p.buf.fill(0, p.end, p.eth + ETH_ZLEN);
      return p.eth - p.off + ETH_ZLEN;
    }
    return p.end - p.off;
  }
}
