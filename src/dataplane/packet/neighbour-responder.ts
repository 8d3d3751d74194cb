// The director's neighbourhood: which addresses it owns on the link, and everything ARP and
// IPv6 neighbour discovery do for them. It answers ARP requests and neighbour solicitations for
// owned addresses, announces them (gratuitous ARP, unsolicited neighbour advertisements), learns
// neighbours from what it hears (real servers, gateways, clients) and resolves the ones the
// forwarding path needs (probes; frames held until the answer comes, then sent).
//
// Owned addresses are every service VIP, the extra VIPs the plane was given and the FULLNAT local
// addresses (owned-addresses.ts), minus the ones explicitly released. own(addr) / release(addr)
// is the switch VRRP drives: a released address is never answered for, and frames to it are not
// the director's (the pipeline leaves them to the host); owning it again announces it at once.
// Every address starts owned (a director without VRRP owns all its VIPs). A release is kept for
// the address itself, so a VIP configured after its release stays released.

import { canonicalIp, formatIpv4, parseIpv4, parseIpv6Groups } from "../../core/addr.ts";
import { ARP_REPLY, ARP_REQUEST, type ArpInfo, parseArp, readU32, writeArpFrame } from "./codec/arp.ts";
import { BROADCAST_MAC, setMacs } from "./codec/eth.ts";
import { writeNeighbourAdvert, writeNeighbourSolicit } from "./codec/icmp.ts";
import { bytesEqual, ip6Bytes, ip6Text } from "./codec/ipv6.ts";
import type { DropReason, PlaneCounters, Verdict } from "./counters.ts";
import { type FrameBatch, VNET_HDR_LEN } from "./io.ts";
import { Neighbours } from "./neighbours.ts";
import type { OwnedAddresses } from "./owned-addresses.ts";
import type { Pkt } from "./pkt.ts";

const ALL_NODES = Uint8Array.of(0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1);
const ALL_NODES_MAC = Uint8Array.of(0x33, 0x33, 0, 0, 0, 1);

/** Write a zero vnet header at off when the io uses them; returns its length. */
export function vnetHead(buf: Buffer, off: number, vnet: boolean): number {
  if (!vnet) return 0;
  buf.fill(0, off, off + VNET_HDR_LEN);
  return VNET_HDR_LEN;
}

function v6Bytes(text: string): Uint8Array | undefined {
  const g = parseIpv6Groups(text);
  return g ? ip6Bytes(g) : undefined;
}

export interface ResponderOptions {
  /** Our MAC on the interface. */
  mac: Uint8Array;
  /** The director's own IPv4 address (ARP probes' sender), 0 for none. */
  addr4: number;
  /** The director's own IPv6 address (neighbour solicitations' source). */
  addr6: Uint8Array | undefined;
  counters: PlaneCounters;
  /** Count a drop (the pipeline's). */
  drop: (reason: DropReason) => Verdict;
}

export class NeighbourResponder {
  readonly neighbours = new Neighbours();
  readonly #o: ResponderOptions;
  readonly #arp: ArpInfo = { op: 0, sha: 0, spa: 0, tha: 0, tpa: 0 };
  /** Configured addresses (VIPs and local addresses) as text, owned or not. */
  #configured: OwnedAddresses = { vips: [], locals: [] };
  /** Addresses released by release(), canonical text. */
  readonly #released = new Set<string>();
  // Owned addresses by family and kind, refilled in place (the pipeline keeps these references
  // and tests them on every frame).
  readonly #vip4 = new Set<number>();
  readonly #vip6 = new Set<string>();
  readonly #local4 = new Set<number>();
  readonly #local6 = new Set<string>();
  #owned6: Uint8Array[] = [];

  constructor(o: ResponderOptions) {
    this.#o = o;
  }

  /** The configured addresses changed (services added or removed). */
  configure(addrs: OwnedAddresses): void {
    this.#configured = { vips: [...addrs.vips], locals: [...addrs.locals] };
    this.#rebuild();
  }

  /**
   * Answer for `addr` again and, when `batch` is given, announce it there; returns whether it was
   * released.
   */
  own(addr: string, batch: FrameBatch | undefined, vnet: boolean): boolean {
    const a = canonicalIp(addr) ?? addr;
    if (!this.#released.delete(a)) return false;
    this.#rebuild();
    if (batch !== undefined && this.#isConfigured(a)) this.#announceOne(batch, a, vnet);
    return true;
  }

  /** Stop answering for `addr` and stop taking its traffic; returns whether it was owned. */
  release(addr: string): boolean {
    const a = canonicalIp(addr) ?? addr;
    if (this.#released.has(a)) return false;
    this.#released.add(a);
    this.#rebuild();
    return true;
  }

  /** Whether `addr` is released (not answered for). */
  released(addr: string): boolean {
    return this.#released.has(canonicalIp(addr) ?? addr);
  }

  /** The owned sets themselves (live: refilled in place when ownership changes), for the per-frame tests. */
  ownedSets(): {
    vip4: ReadonlySet<number>;
    local4: ReadonlySet<number>;
    vip6: ReadonlySet<string>;
    local6: ReadonlySet<string>;
  } {
    return { vip4: this.#vip4, local4: this.#local4, vip6: this.#vip6, local6: this.#local6 };
  }

  /** Owned (not released) IPv4 VIP, as a 32-bit integer. */
  isVip4(a: number): boolean {
    return this.#vip4.has(a);
  }
  isLocal4(a: number): boolean {
    return this.#local4.has(a);
  }
  /** Owned IPv6 VIP, as canonical text. */
  isVip6(a: string): boolean {
    return this.#vip6.has(a);
  }
  isLocal6(a: string): boolean {
    return this.#local6.has(a);
  }

  /** Every address answered for (owned VIPs and local addresses), as text. */
  answered(): string[] {
    return [...[...this.#vip4, ...this.#local4].map((n) => formatIpv4(n)), ...this.#vip6, ...this.#local6];
  }

  /** Every configured address, owned or released (the host guard keeps the kernel off all of them). */
  configured(): string[] {
    return [...this.#configured.vips, ...this.#configured.locals];
  }

  /** An ARP frame: learn the sender; answer a request for an owned address. */
  arp(batch: FrameBatch, p: Pkt, l3: number, end: number, now: number): Verdict {
    const a = this.#arp;
    const buf = p.buf;
    if (!parseArp(buf, l3, end, a)) return this.#o.drop("malformed");
    const spa = readU32(buf, a.spa);
    const tpa = readU32(buf, a.tpa);
    const owned = this.#vip4.has(tpa) || this.#local4.has(tpa);
    const sha = buf.subarray(a.sha, a.sha + 6);
    if (spa !== 0) {
      const waiting = this.neighbours.learn(formatIpv4(spa), sha, now, owned || a.op === ARP_REPLY);
      if (waiting.length > 0) this.flush(batch, waiting, sha, p.vnet);
    }
    if (a.op === ARP_REQUEST && owned && spa !== tpa) {
      const off = batch.allocGen();
      if (off < 0) return "consume";
      const h = vnetHead(batch.buf, off, p.vnet);
      const len = writeArpFrame(batch.buf, off + h, ARP_REPLY, sha, this.#o.mac, tpa, sha, spa);
      batch.queue(off, h + len);
      this.#o.counters.arpReplies++;
      return "reply";
    }
    return "ignore";
  }

  /** A neighbour solicitation (ICMPv6 at l4): learn the solicitor; advertise an owned target. */
  solicit(batch: FrameBatch, p: Pkt, l4: number, now: number): Verdict {
    const buf = p.buf;
    const target = buf.subarray(l4 + 8, l4 + 24);
    if (buf[p.l3 + 7] !== 255) return this.#o.drop("malformed");
    const owned = this.#owned6.some((a) => bytesEqual(target, 0, a));
    const src = buf.subarray(p.l3 + 8, p.l3 + 24);
    const unspecified = src.every((b) => b === 0);
    // Learn the solicitor from its source link-layer address option.
    if (!unspecified && p.end - l4 >= 32 && buf[l4 + 24] === 1 && buf[l4 + 25] === 1) {
      const waiting = this.neighbours.learn(ip6Text(src, 0), buf.subarray(l4 + 26, l4 + 32), now, owned);
      if (waiting.length > 0) this.flush(batch, waiting, buf.subarray(l4 + 26, l4 + 32), p.vnet);
    }
    if (!owned) return "ignore";
    const off = batch.allocGen();
    if (off < 0) return "consume";
    const h = vnetHead(batch.buf, off, p.vnet);
    const ethDst = Uint8Array.from(buf.subarray(p.eth + 6, p.eth + 12));
    const len = writeNeighbourAdvert(
      batch.buf,
      off + h,
      unspecified ? ALL_NODES_MAC : ethDst,
      this.#o.mac,
      Uint8Array.from(target),
      unspecified ? ALL_NODES : Uint8Array.from(src),
      !unspecified,
    );
    batch.queue(off, h + len);
    this.#o.counters.neighbourAdverts++;
    return "reply";
  }

  /** A neighbour advertisement: learn the target's MAC and send what waited for it. */
  advert(batch: FrameBatch, p: Pkt, l4: number, now: number): void {
    const buf = p.buf;
    if (p.end - l4 < 32 || buf[l4 + 24] !== 2 || buf[l4 + 25] !== 1) return;
    const mac = buf.subarray(l4 + 26, l4 + 32);
    const waiting = this.neighbours.learn(ip6Text(buf, l4 + 8), mac, now, true);
    if (waiting.length > 0) this.flush(batch, waiting, mac, p.vnet);
  }

  /** Gratuitous ARPs (IPv6: unsolicited advertisements) for every owned address, into `batch`. */
  announce(batch: FrameBatch, vnet: boolean): void {
    for (const a of this.answered()) this.#announceOne(batch, a, vnet);
  }

  /** A neighbour another worker learned: record it and send the frames that waited for it. */
  learnFromPeer(batch: FrameBatch, addr: string, mac: Uint8Array, now: number, vnet: boolean): void {
    const waiting = this.neighbours.learn(addr, mac, now, true, true);
    if (waiting.length > 0) this.flush(batch, waiting, mac, vnet);
  }

  /** Send probes for addresses not yet resolved (e.g. every real server when services change). */
  resolve(batch: FrameBatch, addrs: readonly string[], now: number, vnet: boolean): void {
    for (const a of addrs) if (this.neighbours.wantsProbe(a, now)) this.probe(batch, a, vnet);
  }

  /** ARP request / neighbour solicitation for addr. */
  probe(batch: FrameBatch, addr: string, vnet: boolean): void {
    const off = batch.allocGen();
    if (off < 0) return;
    const h = vnetHead(batch.buf, off, vnet);
    const o = this.#o;
    const v4 = parseIpv4(addr);
    let len: number;
    if (v4 !== undefined) {
      len = writeArpFrame(batch.buf, off + h, ARP_REQUEST, BROADCAST_MAC, o.mac, o.addr4, new Uint8Array(6), v4);
    } else {
      const target = v6Bytes(addr);
      if (!target || !o.addr6) return;
      len = writeNeighbourSolicit(batch.buf, off + h, o.mac, o.addr6, target);
    }
    batch.queue(off, h + len);
    o.counters.neighbourProbes++;
  }

  /** Send frames that were waiting for a neighbour's MAC. */
  flush(batch: FrameBatch, frames: Buffer[], mac: Uint8Array, vnet: boolean): void {
    const ethOff = vnet ? VNET_HDR_LEN : 0;
    for (const f of frames) {
      const off = batch.allocGen();
      if (off < 0 || f.length > batch.genSlotSize - batch.headroom) {
        this.#o.counters.drops.neighbour++;
        continue;
      }
      batch.buf.set(f, off);
      setMacs(batch.buf, off + ethOff, mac, this.#o.mac);
      batch.queue(off, f.length);
    }
  }

  #isConfigured(a: string): boolean {
    return this.#configured.vips.includes(a) || this.#configured.locals.includes(a);
  }

  #announceOne(batch: FrameBatch, a: string, vnet: boolean): void {
    const off = batch.allocGen();
    if (off < 0) return;
    const h = vnetHead(batch.buf, off, vnet);
    const mac = this.#o.mac;
    const v4 = parseIpv4(a);
    let len: number;
    if (v4 !== undefined) {
      len = writeArpFrame(batch.buf, off + h, ARP_REQUEST, BROADCAST_MAC, mac, v4, BROADCAST_MAC, v4);
    } else {
      const target = v6Bytes(a);
      if (target === undefined) return;
      len = writeNeighbourAdvert(batch.buf, off + h, ALL_NODES_MAC, mac, target, ALL_NODES, false);
    }
    batch.queue(off, h + len);
    this.#o.counters.tx++;
  }

  #rebuild(): void {
    const fill = (list: readonly string[], s4: Set<number>, s6: Set<string>) => {
      for (const a of list) {
        if (this.#released.has(a)) continue;
        const n = parseIpv4(a);
        if (n !== undefined) s4.add(n);
        else {
          const b = v6Bytes(a);
          if (b) s6.add(ip6Text(b, 0));
        }
      }
    };
    for (const set of [this.#vip4, this.#vip6, this.#local4, this.#local6]) set.clear();
    fill(this.#configured.vips, this.#vip4, this.#vip6);
    fill(this.#configured.locals, this.#local4, this.#local6);
    this.#owned6 = [...this.#vip6, ...this.#local6].flatMap((t) => v6Bytes(t) ?? []);
  }
}
