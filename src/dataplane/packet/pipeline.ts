// The packet pipeline: one batch of received frames in, the frames to send out, every received
// frame ending in exactly one verdict. For each frame:
//
//   1. vnet header (offload metadata) and Ethernet; frames we sent ourselves are ignored
//   2. ARP for a VIP or FULLNAT local address → reply with our MAC; ARP replies and requests
//      refresh the neighbour cache (and release frames waiting for that neighbour);
//      IPv6 neighbour solicitations for a VIP → advertisement
//   3. IPv4/IPv6 to a VIP: ICMP echo → reply; ICMP error → relayed to the real server of the
//      connection it quotes; TCP/UDP → connection lookup, else schedule (TCP only on SYN), then
//      the entry's forwarding method (xmit/), TCP state from the segment's flags, counters
//   4. IPv4/IPv6 from a real server (NAT replies to the client, FULLNAT replies to a local
//      address, ICMP errors about them) → reverse translation towards the client
//   5. anything else is the host's (ignored: the kernel still sees it)
//
// The host kernel sees the same frames; tvsd keeps it away from VIP traffic with an nft netdev
// ingress rule (host-guard.ts). Checksums the sender left to offload are either carried on
// through the vnet header (PACKET_VNET_HDR) or finished here (PACKET_AUXDATA CSUMNOTREADY).

import { formatIpv4, parseIpv4, parseIpv6Groups } from "../../core/addr.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import type { Protocol } from "../../core/sched/types.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import { finish, pseudo6, sumBytes } from "./codec/checksum.ts";
import {
  ETH_P_ARP,
  ETH_P_IP,
  ETH_P_IPV6,
  ETH_ZLEN,
  isMulticastMac,
  type L2Info,
  macEquals,
  parseEth,
  setMacs,
} from "./codec/eth.ts";
import {
  ICMP_ECHO,
  ICMPV6_ECHO_REQUEST,
  isIcmpError,
  isIcmpv6Error,
  NDISC_NEIGHBOUR_ADVERTISEMENT,
  NDISC_NEIGHBOUR_SOLICITATION,
  writeFragNeeded,
  writePacketTooBig,
} from "./codec/icmp.ts";
import {
  IPPROTO_ICMP,
  IPPROTO_ICMPV6,
  IPPROTO_TCP,
  IPPROTO_UDP,
  type Ipv4Info,
  parseIpv4 as parseIpv4Header,
} from "./codec/ipv4.ts";
import { type Ipv6Info, ip6Bytes, ip6Text, parseIpv6 } from "./codec/ipv6.ts";
import { TCP_HLEN, TCP_RST, TCP_SYN, tcpHeaderLen } from "./codec/tcp.ts";
import { UDP_HLEN } from "./codec/udp.ts";
import { type DropReason, PlaneCounters, type Verdict } from "./counters.ts";
import { finishL4Checksum } from "./finish-checksum.ts";
import { relayIcmpIn, relayIcmpOut } from "./icmp-relay.ts";
import { relayIcmp6In, relayIcmp6Out } from "./icmp6-relay.ts";
import { type FrameBatch, META_PKTTYPE, META_STATUS, VNET_HDR_LEN } from "./io.ts";
import { NeighbourResponder, vnetHead } from "./neighbour-responder.ts";
import type { Neighbours } from "./neighbours.ts";
import { ownedAddresses } from "./owned-addresses.ts";
import { Pkt, VNET_F_NEEDS_CSUM } from "./pkt.ts";
import { connPlane, type XmitContext } from "./xmit/context.ts";
import { drIn } from "./xmit/dr.ts";
import { fragmentIpv4 } from "./xmit/fragment.ts";
import { fullnatIn, fullnatOut, LocalPool } from "./xmit/fullnat.ts";
import { natIn, natOut } from "./xmit/nat.ts";
import { segmentTcp4 } from "./xmit/segment.ts";
import { tunIn } from "./xmit/tun.ts";

const PACKET_OUTGOING = 4;
const TP_STATUS_CSUMNOTREADY = 8;

export interface PipelineOptions {
  services: ServiceTable;
  conns: ConnTable;
  /** Our MAC on the interface. */
  mac: Uint8Array;
  /** The director's own IPv4 address on the interface: ARP probes and the tunnel's outer source. */
  addr4?: string;
  /** The director's own IPv6 address (neighbour solicitations). */
  addr6?: string;
  /** Interface MTU (default 1500). */
  mtu?: number;
  /** Addresses to own besides every service VIP (answered in ARP/ND). */
  vips?: readonly string[];
  /** FULLNAT local address pool (also answered in ARP/ND). */
  localAddrs?: readonly string[];
  /** Clamp the MSS of tunnelled SYNs (IPVS does not; default false). */
  tunClampMss?: boolean;
  /** Addresses released (not answered for, traffic not taken) from the start; see NeighbourResponder. */
  released?: readonly string[];
  /** Packet worker `index` of `of`: FULLNAT local ports are allocated from this worker's share. */
  worker?: { index: number; of: number };
}

export class Pipeline implements XmitContext {
  readonly services: ServiceTable;
  readonly conns: ConnTable;
  readonly mac: Uint8Array;
  readonly addr4: number;
  readonly addr6: Uint8Array | undefined;
  readonly mtu: number;
  readonly tunClampMss: boolean;
  readonly counters = new PlaneCounters();
  /** ARP/ND answers, announcements and resolution, and the own/release switch per address. */
  readonly responder: NeighbourResponder;
  readonly localPool: LocalPool;
  /**
   * Called after a client packet of `conn` was forwarded (where the kernel's ip_vs_in asks
   * whether to sync the entry); set while a sync master runs.
   */
  onInbound: ((conn: BoundConn, now: number) => void) | undefined = undefined;
  /** Verdict of each frame of the last batch (tests and fixtures read it). */
  readonly verdicts: Verdict[] = [];
  /** Drop reason of each dropped frame of the last batch ("" otherwise). */
  readonly reasons: (DropReason | "")[] = [];

  readonly #extraVips: string[];
  readonly #p = new Pkt();
  readonly #seg = new Pkt();
  readonly #l2: L2Info = { ethertype: 0, l3: 0, vlan: -1 };
  readonly #ip4 = {} as Ipv4Info;
  readonly #ip6 = {} as Ipv6Info;
  #batch: FrameBatch | undefined;
  #now = 0;
  #reason: DropReason | "" = "";

  constructor(o: PipelineOptions) {
    this.services = o.services;
    this.conns = o.conns;
    this.mac = Uint8Array.from(o.mac);
    this.addr4 = o.addr4 ? (parseIpv4(o.addr4) ?? 0) : 0;
    const g6 = o.addr6 ? parseIpv6Groups(o.addr6) : undefined;
    this.addr6 = g6 ? ip6Bytes(g6) : undefined;
    this.mtu = o.mtu ?? 1500;
    this.tunClampMss = o.tunClampMss ?? false;
    this.#extraVips = [...(o.vips ?? [])];
    this.localPool = new LocalPool(o.localAddrs ?? [], o.worker);
    this.responder = new NeighbourResponder({
      mac: this.mac,
      addr4: this.addr4,
      addr6: this.addr6,
      counters: this.counters,
      drop: (r) => this.drop(r),
    });
    for (const a of o.released ?? []) this.responder.release(a);
    this.refreshVips();
  }

  /** The neighbour cache (real servers, gateways, clients). */
  get neighbours(): Neighbours {
    return this.responder.neighbours;
  }

  /** Recompute the owned addresses from the service table (call after services change). */
  refreshVips(): void {
    this.responder.configure(ownedAddresses(this.services, this.#extraVips, this.localPool.addrs));
  }

  /** Every address this director answers ARP/ND for (owned VIPs and local addresses), as text. */
  ownedAddresses(): string[] {
    return this.responder.answered();
  }

  /** Handle every received frame of the batch; the frames to send are queued in batch.tx. */
  process(batch: FrameBatch, now: number, vnet: boolean): void {
    this.#batch = batch;
    this.#now = now;
    batch.txCount = 0;
    batch.genCount = 0;
    this.verdicts.length = batch.rxCount;
    this.reasons.length = batch.rxCount;
    const c = this.counters;
    for (let i = 0; i < batch.rxCount; i++) {
      this.#reason = "";
      let v: Verdict;
      try {
        v = this.#frame(batch, i, vnet);
      } catch {
        v = this.drop("error");
      }
      this.verdicts[i] = v;
      this.reasons[i] = this.#reason;
      c.rx++;
      if (v === "forward") c.forwarded++;
      else if (v === "reply") c.replied++;
      else if (v === "consume") c.consumed++;
      else if (v === "ignore") c.ignored++;
      else c.dropped++;
    }
    c.tx += batch.txCount;
  }

  /** Gratuitous ARPs (IPv6: unsolicited advertisements) for every owned address, into `batch`. */
  announce(batch: FrameBatch, vnet: boolean): void {
    this.responder.announce(batch, vnet);
  }

  /** Own (announcing it into `batch` when given) or release an address; see NeighbourResponder. */
  setOwned(addr: string, owned: boolean, batch: FrameBatch | undefined, vnet: boolean): void {
    if (owned) this.responder.own(addr, batch, vnet);
    else this.responder.release(addr);
  }

  /** A neighbour another worker learned: record it and send the frames that waited for it. */
  learnFromPeer(batch: FrameBatch, addr: string, mac: Uint8Array, now: number, vnet: boolean): void {
    this.responder.learnFromPeer(batch, addr, mac, now, vnet);
  }

  /** Send probes for addresses not yet resolved (e.g. every real server when services change). */
  resolve(batch: FrameBatch, addrs: readonly string[], now: number, vnet: boolean): void {
    this.responder.resolve(batch, addrs, now, vnet);
  }

  // ----------------------------------------------------------------------------- XmitContext

  nextIpId(): number {
    this.#ipId = (this.#ipId + 1) & 0xffff;
    return this.#ipId;
  }

  #ipId = Math.floor(Math.random() * 0x10000);

  drop(reason: DropReason): Verdict {
    this.counters.drops[reason]++;
    this.#reason = reason;
    return "drop";
  }

  toMac(p: Pkt, mac: Uint8Array): Verdict {
    setMacs(p.buf, p.eth, mac, this.mac);
    if (!p.gso && ipPacketLength(p.buf, p.l3) > this.mtu) return this.#oversize(p);
    this.#emit(p);
    return "forward";
  }

  /**
   * A packet larger than the link (a datagram the kernel reassembled before the packet socket, see
   * xmit/fragment.ts): IPv4 without DF is cut into fragments; anything else gets "fragmentation
   * needed" / "packet too big" and is dropped.
   */
  #oversize(p: Pkt): Verdict {
    const buf = p.buf;
    if (buf[p.l3]! >>> 4 === 4 && (buf[p.l3 + 6]! & 0x40) === 0) {
      if (p.partial) finishL4Checksum(p);
      const batch = this.#batch!;
      const made = fragmentIpv4(
        buf,
        p.off,
        p.l3,
        p.vnet ? VNET_HDR_LEN : 0,
        this.mtu,
        batch.buf,
        () => batch.allocGen(),
        (off, len) => batch.queue(off, len),
      );
      if (made === 0) return this.drop("mtu");
      this.counters.fragmentsOut += made;
      return "forward";
    }
    this.fragNeeded(p, this.mtu);
    return this.drop("mtu");
  }

  toNeighbour(p: Pkt, addr: string, _family: 4 | 6): Verdict {
    const n = this.neighbours;
    const e = n.entry(addr);
    if (n.probeDue(e, this.#now)) this.responder.probe(this.#batch!, addr, p.vnet);
    const mac = e.mac;
    if (mac !== undefined) return this.toMac(p, mac);
    const len = this.#padded(p);
    if (!n.hold(addr, p.buf.subarray(p.off, p.off + len))) return this.drop("neighbour");
    return "forward";
  }

  fragNeeded(p: Pkt, mtu: number): void {
    const batch = this.#batch!;
    const off = batch.allocGen();
    if (off < 0) return;
    const h = vnetHead(batch.buf, off, p.vnet);
    const srcMac = p.buf.subarray(p.eth + 6, p.eth + 12);
    if (p.family === 6) {
      // IPv6: ICMPv6 packet too big, from the packet's destination (the VIP) to its source.
      const src = p.buf.subarray(p.l3 + 24, p.l3 + 40);
      const dst = p.buf.subarray(p.l3 + 8, p.l3 + 24);
      const n = writePacketTooBig(batch.buf, off + h, srcMac, this.mac, src, dst, mtu, p.buf, p.l3, p.end - p.l3);
      batch.queue(off, h + n);
      this.counters.icmpSent++;
      return;
    }
    const len = writeFragNeeded(
      batch.buf,
      off + h,
      srcMac,
      this.mac,
      p.daddr4,
      p.saddr4,
      mtu,
      p.buf,
      p.l3,
      p.end - p.l3,
    );
    batch.queue(off, h + len);
    this.counters.icmpSent++;
  }

  segment(p: Pkt, each: (seg: Pkt) => Verdict): Verdict {
    const batch = this.#batch!;
    let forwarded = 0;
    let reason: DropReason | "" = "";
    const saved = this.#reason;
    const made = segmentTcp4(
      p,
      batch.buf,
      () => batch.allocGen(),
      this.#seg,
      (seg) => {
        this.#reason = "";
        const v = each(seg);
        if (v === "forward") forwarded++;
        else if (v === "drop") {
          // Segments are not frames of their own: undo the per-segment drop count.
          this.counters.drops[this.#reason as DropReason]--;
          reason = this.#reason;
        }
      },
    );
    this.#reason = saved;
    if (forwarded > 0) return "forward";
    return this.drop(made === 0 ? "gso" : reason === "" ? "gso" : reason);
  }

  // ----------------------------------------------------------------------------- frames

  #frame(batch: FrameBatch, i: number, vnet: boolean): Verdict {
    const buf = batch.buf;
    const off = batch.rxOffset(i);
    const len = batch.rxLength(i);
    this.counters.rxBytes += len;
    const cap = batch.slotSize - batch.headroom;
    if (len > cap) return this.drop("truncated");
    if (batch.meta[i * 4 + META_PKTTYPE] === PACKET_OUTGOING) return "ignore";
    const p = this.#p;
    p.buf = buf;
    p.off = off;
    p.vnet = vnet;
    p.partial = false;
    p.gso = false;
    p.l4 = -1;
    p.protocol = undefined;
    p.fragment = false;
    let eth = off;
    if (vnet) {
      if (len < VNET_HDR_LEN) return this.drop("malformed");
      p.partial = (buf[off]! & VNET_F_NEEDS_CSUM) !== 0;
      p.gso = buf[off + 1] !== 0;
      eth += VNET_HDR_LEN;
    }
    p.eth = eth;
    const end = off + len;
    p.end = end;
    const l2 = this.#l2;
    if (!parseEth(buf, eth, end - eth, l2)) return this.drop("malformed");
    const forUs = macEquals(buf, eth, this.mac);
    if (!forUs && !isMulticastMac(buf, eth)) return "ignore";
    if (l2.ethertype === ETH_P_ARP) return this.responder.arp(batch, p, l2.l3, end, this.#now);
    if (!forUs && l2.ethertype !== ETH_P_IPV6) return "ignore";
    if (l2.ethertype === ETH_P_IP) {
      const csumNotReady = !vnet && (batch.meta[i * 4 + META_STATUS]! & TP_STATUS_CSUMNOTREADY) !== 0;
      return this.#ipv4(p, l2.l3, end, csumNotReady);
    }
    if (l2.ethertype === ETH_P_IPV6) {
      const csumNotReady = !vnet && (batch.meta[i * 4 + META_STATUS]! & TP_STATUS_CSUMNOTREADY) !== 0;
      return this.#ipv6(p, l2.l3, end, forUs, csumNotReady);
    }
    return "ignore";
  }

  #ipv4(p: Pkt, l3: number, end: number, csumNotReady: boolean): Verdict {
    const ip = this.#ip4;
    const buf = p.buf;
    if (!parseIpv4Header(buf, l3, end, ip)) return this.drop("malformed");
    p.family = 4;
    p.l3 = l3;
    p.end = l3 + ip.totalLen;
    p.ipLen = ip.totalLen;
    p.proto = ip.protocol;
    p.saddr4 = ip.saddr;
    p.daddr4 = ip.daddr;
    p.fragment = ip.fragment;
    const toVip = this.responder.isVip4(ip.daddr);
    const toLocal = !toVip && this.responder.isLocal4(ip.daddr);
    if (!ip.laterFragment && !this.#l4(p, l3 + ip.hlen)) return toVip || toLocal ? this.drop("malformed") : "ignore";
    if (csumNotReady && p.l4 >= 0) finishL4Checksum(p);
    if (toVip) {
      if (p.proto === IPPROTO_ICMP) return this.#icmpToVip(p);
      if (p.protocol === undefined) return "ignore";
      if (p.fragment) return this.drop("fragment");
      return this.#inbound(p);
    }
    // From a real server: NAT replies to the client, FULLNAT replies to a local address.
    if (p.proto === IPPROTO_ICMP) {
      const v = relayIcmpOut(this, p);
      if (v !== undefined) return v;
      return toLocal ? this.drop("noConn") : "ignore";
    }
    if (p.protocol === undefined || p.l4 < 0) return toLocal ? this.drop("noConn") : "ignore";
    const conn = this.conns.lookupOut4(p.protocol, p.saddr4, p.sport, p.daddr4, p.dport);
    if (conn === undefined) return toLocal ? this.drop("noConn") : "ignore";
    return this.#outbound(p, conn);
  }

  #ipv6(p: Pkt, l3: number, end: number, forUs: boolean, csumNotReady: boolean): Verdict {
    const ip = this.#ip6;
    const buf = p.buf;
    if (!parseIpv6(buf, l3, end, ip)) return this.drop("malformed");
    p.family = 6;
    p.l3 = l3;
    p.end = l3 + 40 + ip.payloadLen;
    p.ipLen = 40 + ip.payloadLen;
    p.proto = ip.protocol;
    p.fragment = ip.fragment;
    if (ip.protocol === IPPROTO_ICMPV6 && !ip.laterFragment && end - ip.l4 >= 24) {
      const type = buf[ip.l4]!;
      if (type === NDISC_NEIGHBOUR_SOLICITATION) return this.responder.solicit(this.#batch!, p, ip.l4, this.#now);
      if (type === NDISC_NEIGHBOUR_ADVERTISEMENT) {
        this.responder.advert(this.#batch!, p, ip.l4, this.#now);
        return "ignore";
      }
    }
    if (!forUs) return "ignore";
    const daddr = ip6Text(buf, l3 + 24);
    const toVip = this.responder.isVip6(daddr);
    const toLocal = !toVip && this.responder.isLocal6(daddr);
    if (!ip.laterFragment && !this.#l4(p, ip.l4)) return toVip || toLocal ? this.drop("malformed") : "ignore";
    if (csumNotReady && p.l4 >= 0) finishL4Checksum(p);
    if (toVip) {
      if (p.proto === IPPROTO_ICMPV6 && p.l4 >= 0 && buf[p.l4] === ICMPV6_ECHO_REQUEST) return this.#echo6(p);
      if (p.proto === IPPROTO_ICMPV6 && p.l4 >= 0 && isIcmpv6Error(buf[p.l4]!))
        return relayIcmp6In(this, p) ?? this.drop("noConn");
      if (p.protocol === undefined) return "ignore";
      if (p.fragment) return this.drop("fragment");
      return this.#inbound(p);
    }
    // From a real server: ICMPv6 errors about a client's packet (NAT, FULLNAT).
    if (p.proto === IPPROTO_ICMPV6 && p.l4 >= 0) {
      const v = relayIcmp6Out(this, p);
      if (v !== undefined) return v;
      return toLocal ? this.drop("noConn") : "ignore";
    }
    if (p.protocol === undefined || p.l4 < 0) return toLocal ? this.drop("noConn") : "ignore";
    const conn = this.conns.lookupOut(p.protocol, ip6Text(buf, l3 + 8), p.sport, daddr, p.dport);
    if (conn === undefined) return toLocal ? this.drop("noConn") : "ignore";
    return this.#outbound(p, conn);
  }

  /** Parse the transport header at l4; false when it is malformed. */
  #l4(p: Pkt, l4: number): boolean {
    const buf = p.buf;
    const avail = p.end - l4;
    p.l4 = l4;
    if (p.proto === IPPROTO_TCP) {
      if (avail < TCP_HLEN) return false;
      const hl = tcpHeaderLen(buf, l4);
      if (hl < TCP_HLEN || hl > avail) return false;
      p.protocol = "tcp";
      p.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
      p.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
      p.tcpFlags = buf[l4 + 13]!;
    } else if (p.proto === IPPROTO_UDP) {
      if (avail < UDP_HLEN) return false;
      const ul = (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
      if (!p.fragment && (ul < UDP_HLEN || ul > avail)) return false;
      p.protocol = "udp";
      p.sport = (buf[l4]! << 8) | buf[l4 + 1]!;
      p.dport = (buf[l4 + 2]! << 8) | buf[l4 + 3]!;
      p.tcpFlags = 0;
    } else if (p.proto === IPPROTO_ICMP || p.proto === IPPROTO_ICMPV6) {
      if (avail < 8) return false;
    }
    return true;
  }

  /** Client → VIP: find or create the connection, then forward with its method. */
  #inbound(p: Pkt): Verdict {
    const protocol = p.protocol as Protocol;
    const now = this.#now;
    const conns = this.conns;
    let conn: BoundConn | undefined;
    let daddrText = "";
    let saddrText = "";
    if (p.family === 4) conn = conns.lookupIn4(protocol, p.saddr4, p.sport, p.daddr4, p.dport);
    else {
      saddrText = ip6Text(p.buf, p.l3 + 8);
      daddrText = ip6Text(p.buf, p.l3 + 24);
      conn = conns.lookupIn(protocol, saddrText, p.sport, daddrText, p.dport);
    }
    if (conn === undefined) {
      if (p.family === 4) {
        saddrText = formatIpv4(p.saddr4);
        daddrText = formatIpv4(p.daddr4);
      }
      const svc = this.services.lookup(protocol, daddrText, p.dport);
      if (svc === undefined) return this.drop("noService");
      if (protocol === "tcp" && ((p.tcpFlags & TCP_SYN) === 0 || (p.tcpFlags & TCP_RST) !== 0))
        return this.drop("noConn");
      const r = conns.schedule(
        svc,
        { family: p.family, protocol, saddr: saddrText, sport: p.sport, daddr: daddrText, dport: p.dport },
        now,
      );
      if ("error" in r) return this.drop(r.error === "no-destination" ? "noDest" : "tableFull");
      conn = r;
      const cp = connPlane(conn);
      if (conn.fwd === "fullnat") {
        const fam = p.family;
        const c = conn;
        const picked = this.localPool.pick(
          fam,
          (laddr, lport) => conns.lookupOut(protocol, c.daddr, c.dport, laddr, lport) !== undefined,
        );
        if (picked === undefined) {
          conns.remove(conn, now);
          return this.drop("localPort");
        }
        conns.setLocal(conn, picked.laddr, picked.lport);
        if (fam === 4) cp.laddr4 = parseIpv4(picked.laddr) ?? 0;
        else cp.laddr6 = ip6Bytes(parseIpv6Groups(picked.laddr)!);
      }
    }
    if (!conn.dest.available) return this.drop("destGone");
    const cpl = connPlane(conn);
    if (!cpl.cmacKnown) {
      cpl.cmac.set(p.buf.subarray(p.eth + 6, p.eth + 12));
      cpl.cmacKnown = true;
    }
    const fwd = conn.fwd;
    if (protocol === "tcp")
      conns.tcpPacket(conn, fwd === "droute" || fwd === "tunnel" ? "in-only" : "in", p.tcpFlags, now);
    else conns.touch(conn, now);
    const bytes = p.ipLen;
    let v: Verdict;
    if (fwd === "droute") v = drIn(this, p, conn);
    else if (fwd === "masq") v = natIn(this, p, conn);
    else if (fwd === "tunnel") v = tunIn(this, p, conn);
    else if (fwd === "fullnat") v = fullnatIn(this, p, conn);
    else v = this.drop("unsupported");
    if (v === "forward") {
      conns.account(conn, "in", 1, bytes);
      this.onInbound?.(conn, now);
    }
    return v;
  }

  /** Real server → client through the director (NAT, FULLNAT). */
  #outbound(p: Pkt, conn: BoundConn): Verdict {
    const now = this.#now;
    if (p.protocol === "tcp") this.conns.tcpPacket(conn, "out", p.tcpFlags, now);
    else this.conns.touch(conn, now);
    const bytes = p.ipLen;
    const v = conn.fwd === "fullnat" ? fullnatOut(this, p, conn) : natOut(this, p, conn);
    if (v === "forward") this.conns.account(conn, "out", 1, bytes);
    return v;
  }

  #icmpToVip(p: Pkt): Verdict {
    const buf = p.buf;
    const type = buf[p.l4]!;
    if (type === ICMP_ECHO) {
      if (p.fragment) return this.drop("fragment");
      return this.#echo4(p);
    }
    if (isIcmpError(type)) return relayIcmpIn(this, p) ?? this.drop("noConn");
    return "ignore";
  }

  /** Answer an echo request to a VIP in place (the VIP is ours, as on a kernel director). */
  #echo4(p: Pkt): Verdict {
    const buf = p.buf;
    const l3 = p.l3;
    const l4 = p.l4;
    const icmpLen = p.end - l4;
    if (finish(sumBytes(buf, l4, icmpLen)) !== 0) return this.drop("malformed");
    const s = buf.readUInt32BE(l3 + 12);
    buf.writeUInt32BE(buf.readUInt32BE(l3 + 16), l3 + 12);
    buf.writeUInt32BE(s, l3 + 16);
    buf[l3 + 8] = 64;
    buf[l3 + 10] = 0;
    buf[l3 + 11] = 0;
    const hc = finish(sumBytes(buf, l3, (buf[l3]! & 15) * 4));
    buf[l3 + 10] = hc >>> 8;
    buf[l3 + 11] = hc & 0xff;
    buf[l4] = 0;
    buf[l4 + 2] = 0;
    buf[l4 + 3] = 0;
    const c = finish(sumBytes(buf, l4, icmpLen));
    buf[l4 + 2] = c >>> 8;
    buf[l4 + 3] = c & 0xff;
    const src = Uint8Array.from(buf.subarray(p.eth + 6, p.eth + 12));
    setMacs(buf, p.eth, src, this.mac);
    this.#emit(p);
    return "reply";
  }

  #echo6(p: Pkt): Verdict {
    const buf = p.buf;
    const l3 = p.l3;
    const l4 = p.l4;
    const icmpLen = p.end - l4;
    const tmp = Uint8Array.from(buf.subarray(l3 + 8, l3 + 24));
    buf.copyWithin(l3 + 8, l3 + 24, l3 + 40);
    buf.set(tmp, l3 + 24);
    buf[l3 + 7] = 64;
    buf[l4] = 129;
    buf[l4 + 2] = 0;
    buf[l4 + 3] = 0;
    const c = finish(sumBytes(buf, l4, icmpLen, pseudo6(buf, l3 + 8, IPPROTO_ICMPV6, icmpLen)));
    buf[l4 + 2] = c >>> 8;
    buf[l4 + 3] = c & 0xff;
    const src = Uint8Array.from(buf.subarray(p.eth + 6, p.eth + 12));
    setMacs(buf, p.eth, src, this.mac);
    this.#emit(p);
    return "reply";
  }

  // ----------------------------------------------------------------------------- output

  /** Length of the frame from p.off when padded to the Ethernet minimum; zero-fills the pad. */
  #padded(p: Pkt): number {
    const ethLen = p.end - p.eth;
    if (ethLen < ETH_ZLEN) {
      p.buf.fill(0, p.end, p.eth + ETH_ZLEN);
      return p.eth - p.off + ETH_ZLEN;
    }
    return p.end - p.off;
  }

  #emit(p: Pkt): void {
    this.#batch!.queue(p.off, this.#padded(p));
  }
}

/** Length of the IP packet at l3 (IPv4 total length, or IPv6's 40 + payload length). */
function ipPacketLength(buf: Uint8Array, l3: number): number {
  const v = buf[l3]! >>> 4;
  const field = (buf[l3 + (v === 4 ? 2 : 4)]! << 8) | buf[l3 + (v === 4 ? 3 : 5)]!;
  return v === 4 ? field : 40 + field;
}
