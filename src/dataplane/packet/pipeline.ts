// The packet pipeline: one batch of received frames in, the frames to send out, every received
// frame ending in exactly one verdict. For each frame:
//
//   1. vnet header (offload metadata) and Ethernet; frames we sent ourselves are ignored
//   2. ARP for a VIP or FULLNAT local address → reply with our MAC; ARP replies and requests
//      refresh the neighbour cache (and release frames waiting for that neighbour);
//      IPv6 neighbour solicitations for a VIP → advertisement
//   3. IPv4/IPv6 to a VIP: ICMP echo → reply; ICMP error → relayed to the real server of the
//      connection it quotes; TCP/UDP/SCTP → connection lookup, else schedule (TCP only on SYN,
//      SCTP only on INIT), then the entry's forwarding method (xmit/), TCP state from the
//      segment's flags, SCTP state from the packet's chunks (sctp-flow.ts), counters
//   4. IPv4/IPv6 from a real server (NAT replies to the client, FULLNAT replies to a local
//      address, ICMP errors about them) → reverse translation towards the client
//   5. a frame to an address it does not own that a firewall-mark rule sends to a fwmark
//      service (a rule's wider prefix, routed here) is handled as in 3 (packet-marks.ts)
//   6. anything else is the host's (ignored: the kernel still sees it)
//
// The service of a new flow is looked up in the kernel's order (ip_vs_service_find): the
// fwmark service of the frame's mark first (the mark tvs's own classifier gives it, since a
// packet socket sees frames before iptables could mark them), then protocol + VIP + port.
//
// Its parts: neighbour-responder.ts (step 2, and which addresses are owned: the own/release
// switch), xmit/forwarders.ts (the forwarder bound to each connection), egress.ts (MAC
// resolution, padding, oversize frames, software GSO), echo.ts, transport.ts, icmp*-relay.ts.
//
// The host kernel sees the same frames; tvsd keeps it away from VIP traffic with an nft netdev
// ingress rule (host-guard.ts). Checksums the sender left to offload are either carried on
// through the vnet header (PACKET_VNET_HDR) or finished here (PACKET_AUXDATA CSUMNOTREADY).

import { formatIpv4, parseIpv4, parseIpv6Groups } from "../../core/addr.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import { sctpMaySchedule, tcpMaySchedule } from "../../core/conn/sloppy.ts";
import { TCP_ACK, TCP_RST, TCP_SYN } from "../../core/conn/tcp-states.ts";
import type { FwmarkRule } from "../../core/fwmark/rule.ts";
import type { Protocol } from "../../core/sched/types.ts";
import type { VirtualService } from "../../core/service.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import { ETH_P_ARP, ETH_P_IP, ETH_P_IPV6, isMulticastMac, type L2Info, macEquals, parseEth } from "./codec/eth.ts";
import {
  ICMP_ECHO,
  ICMPV6_ECHO_REQUEST,
  isIcmpError,
  isIcmpv6Error,
  NDISC_NEIGHBOUR_ADVERTISEMENT,
  NDISC_NEIGHBOUR_SOLICITATION,
} from "./codec/icmp.ts";
import { IPPROTO_ICMP, IPPROTO_ICMPV6, type Ipv4Info, parseIpv4 as parseIpv4Header } from "./codec/ipv4.ts";
import { type Ipv6Info, ip6Bytes, ip6Text, parseIpv6 } from "./codec/ipv6.ts";
import { type DropReason, PlaneCounters, type Verdict } from "./counters.ts";
import { echoReply4, echoReply6 } from "./echo.ts";
import { Egress } from "./egress.ts";
import { finishL4Checksum } from "./finish-checksum.ts";
import { relayIcmpIn, relayIcmpOut } from "./icmp-relay.ts";
import { relayIcmp6In, relayIcmp6Out } from "./icmp6-relay.ts";
import { type FrameBatch, META_PKTTYPE, META_STATUS, VNET_HDR_LEN } from "./io.ts";
import { Ipv6Defrag } from "./ipv6-defrag.ts";
import type { ReassemblyLimits } from "./ipv6-reassembly.ts";
import { NeighbourResponder } from "./neighbour-responder.ts";
import type { Neighbours } from "./neighbours.ts";
import { ownedAddresses } from "./owned-addresses.ts";
import { PacketMarks } from "./packet-marks.ts";
import { packetScheduleOptions, scheduleDropReason } from "./persistence-key.ts";
import { Pkt, VNET_F_NEEDS_CSUM } from "./pkt.ts";
import { RealServerRequests } from "./rs-requests.ts";
import { sctpStartsAnew } from "./sctp-flow.ts";
import { statelessSynNoEntry } from "./stateless-syn.ts";
import { randomWord } from "./synproxy/random-word.ts";
import { SynProxy, type SynproxyHost } from "./synproxy/synproxy.ts";
import { transportOk } from "./transport.ts";
import { connPlane, type TunContext } from "./xmit/context.ts";
import { bindForwarder, forwarderOf } from "./xmit/forwarders.ts";
import { LocalPool } from "./xmit/fullnat.ts";

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
  /** Random 32-bit words for the SYN proxy's cookie secrets (default: the system's CSPRNG). */
  random32?: () => number;
  /** Firewall-mark rules (first match wins): the marks fwmark services are looked up by. */
  fwmarkRules?: readonly FwmarkRule[];
  /** Bounds of the IPv6 fragment reassembler (ipv6-reassembly.ts); defaults as the kernel's. */
  reassembly?: Partial<ReassemblyLimits>;
  /** Next hop towards a client whose MAC is not known yet (kernel-routes.ts); default: the client. */
  clientNextHop?: (addr: string) => string;
}

export class Pipeline implements TunContext, SynproxyHost {
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
  /** Requests masquerading SIP real servers start towards clients with no entry (--pe sip's conn_out). */
  readonly rsRequests = new RealServerRequests();
  /** SYN cookies and sequence translation for NAT/FULLNAT (sysctl synproxy; synproxy/synproxy.ts). */
  readonly synproxy: SynProxy;
  /** The firewall-mark classifier and which marks have a service. */
  readonly marks = new PacketMarks();
  /** IPv6 fragments to VIPs, local addresses and from NAT real servers are reassembled here. */
  readonly defrag6: Ipv6Defrag;
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
  readonly #egress: Egress;
  /** The responder's owned-address sets (live), tested on every frame. */
  readonly #owned: ReturnType<NeighbourResponder["ownedSets"]>;
  readonly #l2: L2Info = { ethertype: 0, l3: 0, vlan: -1 };
  readonly #ip4 = {} as Ipv4Info;
  readonly #ip6 = {} as Ipv6Info;
  #batch: FrameBatch | undefined;
  #now = 0;
  /** Set while a reassembled datagram goes through (processReassembled). */
  #fragMax = 0;
  /** Set while a frame another worker handed over goes through: it is never handed on again. */
  #handedOver = false;
  #fragId = 0;
  /** Result of the last reassembled datagram (processReassembled); verdicts/reasons keep the batch's. */
  reassembledVerdict: Verdict | undefined = undefined;
  reassembledReason: DropReason | "" = "";
  /** Drop reason of the frame being handled ("" while none); egress reads and restores it. */
  reason: DropReason | "" = "";

  constructor(o: PipelineOptions) {
    this.services = o.services;
    this.conns = o.conns;
    this.mac = Uint8Array.from(o.mac);
    this.addr4 = o.addr4 ? (parseIpv4(o.addr4) ?? 0) : 0;
    const g6 = o.addr6 ? parseIpv6Groups(o.addr6) : undefined;
    this.addr6 = g6 ? ip6Bytes(g6) : undefined;
    this.mtu = o.mtu ?? 1500;
    this.tunClampMss = o.tunClampMss ?? false;
    this.clientNextHop = o.clientNextHop;
    this.#extraVips = [...(o.vips ?? [])];
    this.localPool = new LocalPool(o.localAddrs ?? [], o.worker);
    this.synproxy = new SynProxy(o.random32 ?? randomWord);
    this.defrag6 = new Ipv6Defrag(this.counters, o.reassembly);
    this.responder = new NeighbourResponder({
      mac: this.mac,
      addr4: this.addr4,
      addr6: this.addr6,
      counters: this.counters,
      drop: (r) => this.drop(r),
    });
    this.#owned = this.responder.ownedSets();
    this.marks.setRules(o.fwmarkRules ?? []);
    for (const a of o.released ?? []) this.responder.release(a);
    this.#egress = new Egress({
      mac: this.mac,
      mtu: this.mtu,
      counters: this.counters,
      responder: this.responder,
      drops: this,
    });
    this.refreshVips();
  }

  /** The neighbour cache (real servers, gateways, clients). */
  get neighbours(): Neighbours {
    return this.responder.neighbours;
  }

  /** Recompute the owned addresses from the service table (call after services change). */
  refreshVips(): void {
    this.marks.refresh(this.services);
    this.rsRequests.refresh(this.services);
    this.responder.configure(ownedAddresses(this.services, this.#extraVips, this.localPool.addrs, this.marks.rules));
    this.defrag6.refresh(this.services);
  }

  /** Replace the firewall-mark rules (their single addresses become owned when a service takes their mark). */
  setFwmarkRules(rules: readonly FwmarkRule[]): void {
    this.marks.setRules(rules);
    this.refreshVips();
  }

  /** Every address this director answers ARP/ND for (owned VIPs and local addresses), as text. */
  ownedAddresses(): string[] {
    return this.responder.answered();
  }

  /** Handle every received frame of the batch; the frames to send are queued in batch.tx. */
  process(batch: FrameBatch, now: number, vnet: boolean): void {
    this.#batch = batch;
    this.#now = now;
    this.#egress.begin(batch, now);
    batch.txCount = 0;
    batch.genCount = 0;
    this.verdicts.length = batch.rxCount;
    this.reasons.length = batch.rxCount;
    const c = this.counters;
    for (let i = 0; i < batch.rxCount; i++) {
      this.reason = "";
      let v: Verdict;
      try {
        v = this.#frame(batch, i, vnet);
      } catch {
        v = this.drop("error");
      }
      this.verdicts[i] = v;
      this.reasons[i] = this.reason;
      c.rx++;
      if (v === "forward") c.forwarded++;
      else if (v === "reply") c.replied++;
      else if (v === "consume") c.consumed++;
      else if (v === "ignore") c.ignored++;
      else c.dropped++;
    }
    c.tx += batch.txCount;
  }

  /**
   * Handle a datagram the IPv6 reassembler completed, placed as received frame 0 of `batch`:
   * like any received frame, except that egress cuts it back to `fragMax` (its largest fragment).
   */
  processReassembled(batch: FrameBatch, now: number, vnet: boolean, fragMax: number, fragId: number): void {
    const verdicts = this.verdicts.slice();
    const reasons = this.reasons.slice();
    this.#fragMax = fragMax;
    this.#fragId = fragId;
    this.#handedOver = true;
    try {
      this.process(batch, now, vnet);
    } finally {
      this.#fragMax = 0;
      this.#handedOver = false;
      this.reassembledVerdict = this.verdicts[0];
      this.reassembledReason = this.reasons[0] ?? "";
      this.verdicts.splice(0, this.verdicts.length, ...verdicts);
      this.reasons.splice(0, this.reasons.length, ...reasons);
    }
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
    this.reason = reason;
    return "drop";
  }

  toMac(p: Pkt, mac: Uint8Array): Verdict {
    return this.#egress.toMac(p, mac);
  }

  readonly clientNextHop: ((addr: string) => string) | undefined;

  toNeighbour(p: Pkt, addr: string, _family: 4 | 6): Verdict {
    return this.#egress.toNeighbour(p, addr);
  }

  fragNeeded(p: Pkt, mtu: number): void {
    this.#egress.fragNeeded(p, mtu);
  }

  segment(p: Pkt, each: (seg: Pkt) => Verdict): Verdict {
    return this.#egress.segment(p, each);
  }

  /** A generated frame slot shaped like `like` (vnet header, untagged Ethernet of its family), for the SYN proxy. */
  scratch(q: Pkt, like: Pkt): boolean {
    const batch = this.#batch;
    const off = batch === undefined ? -1 : batch.allocGen();
    if (batch === undefined || off < 0) return false;
    const buf = batch.buf;
    q.buf = buf;
    q.off = off;
    q.vnet = like.vnet;
    q.eth = off + (like.vnet ? VNET_HDR_LEN : 0);
    if (like.vnet) buf.fill(0, off, q.eth);
    buf[q.eth + 12] = like.family === 4 ? ETH_P_IP >>> 8 : ETH_P_IPV6 >>> 8;
    buf[q.eth + 13] = like.family === 4 ? ETH_P_IP & 0xff : ETH_P_IPV6 & 0xff;
    q.l3 = q.eth + 14;
    q.family = like.family;
    return true;
  }

  /**
   * Schedule the entry for p's flow (client → VIP) on svc and bind its FULLNAT local endpoint;
   * a drop verdict when refused. Used for a SYN and by the SYN proxy for a cookie's ACK.
   */
  newConn(p: Pkt, svc: VirtualService, mark = 0): BoundConn | Verdict {
    const protocol = p.protocol as Protocol;
    const now = this.#now;
    const conns = this.conns;
    const fam = p.family;
    const saddr = fam === 4 ? formatIpv4(p.saddr4) : ip6Text(p.buf, p.l3 + 8);
    const daddr = fam === 4 ? formatIpv4(p.daddr4) : ip6Text(p.buf, p.l3 + 24);
    const flow = { family: fam, protocol, saddr, sport: p.sport, daddr, dport: p.dport };
    const r = conns.schedule(svc, flow, now, packetScheduleOptions(svc, p, mark));
    if ("error" in r) return this.drop(scheduleDropReason(r.error));
    const conn = r;
    if (conn.fwd === "fullnat") {
      const plane = connPlane(conn);
      const picked = this.localPool.pick(
        fam,
        (laddr, lport) => conns.lookupOut(protocol, conn.daddr, conn.dport, laddr, lport) !== undefined,
      );
      if (picked === undefined) {
        conns.remove(conn, now);
        return this.drop("localPort");
      }
      conns.setLocal(conn, picked.laddr, picked.lport);
      if (fam === 4) plane.laddr4 = parseIpv4(picked.laddr) ?? 0;
      else plane.laddr6 = ip6Bytes(parseIpv6Groups(picked.laddr)!);
    }
    return conn;
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
    p.fragMax = this.#fragMax;
    p.fragId = this.#fragId;
    p.fragSrc = undefined;
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
    const toVip = this.#owned.vip4.has(ip.daddr);
    const toLocal = !toVip && this.#owned.local4.has(ip.daddr);
    if (!ip.laterFragment && !transportOk(p, l3 + ip.hlen)) return toVip || toLocal ? this.drop("malformed") : "ignore";
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
    let conn = this.conns.lookupOut4(p.protocol, p.saddr4, p.sport, p.daddr4, p.dport);
    if (conn === undefined && this.rsRequests.active) conn = this.rsRequests.open(this.conns, p, this.#now);
    if (conn === undefined) return toLocal ? this.drop("noConn") : this.#marked(p);
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
    if (p.fragMax > 0) p.fragSrc = Uint8Array.prototype.slice.call(buf, l3 + 8, l3 + 24);
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
    const toVip = this.#owned.vip6.has(daddr);
    const toLocal = !toVip && this.#owned.local6.has(daddr);
    if (ip.fragment) {
      // Reassembled first (ipv6-defrag.ts); an atomic fragment goes on as the packet it is.
      if (!toVip && !toLocal && !this.defrag6.fromNatDest(ip6Text(buf, l3 + 8))) return "ignore";
      const v = this.defrag6.absorb(p, this.#now, this);
      if (v !== "atomic") return v;
      p.fragment = false;
    }
    // An extension header first: steered by addresses, perhaps away from its flow's worker.
    else if (buf[l3 + 6] !== ip.protocol && !this.#handedOver && (toVip || toLocal) && this.defrag6.passOn(p))
      return "consume";
    if (!ip.laterFragment && !transportOk(p, ip.l4)) return toVip || toLocal ? this.drop("malformed") : "ignore";
    if (csumNotReady && p.l4 >= 0) finishL4Checksum(p);
    if (toVip) {
      if (p.proto === IPPROTO_ICMPV6 && p.l4 >= 0 && buf[p.l4] === ICMPV6_ECHO_REQUEST)
        return echoReply6(p, this.mac, this.#egress);
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
    let conn = this.conns.lookupOut(p.protocol, ip6Text(buf, l3 + 8), p.sport, daddr, p.dport);
    if (conn === undefined && this.rsRequests.active) conn = this.rsRequests.open(this.conns, p, this.#now);
    if (conn === undefined) return toLocal ? this.drop("noConn") : this.#marked(p);
    return this.#outbound(p, conn);
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
    // conn_reuse_mode: a fresh SYN on a finished entry (TIME_WAIT, CLOSE; DR's FIN_WAIT with bit 2)
    // gets a newly scheduled one, as the kernel's ip_vs_in does.
    if (
      conn !== undefined &&
      ((protocol === "tcp" && (p.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST)) === TCP_SYN) ||
        (protocol === "sctp" && sctpStartsAnew(p))) &&
      conns.connReuse &&
      conns.reuseExpected(conn)
    ) {
      conns.remove(conn, now);
      conn = undefined;
    }
    if (conn === undefined) {
      if (p.family === 4) {
        saddrText = formatIpv4(p.saddr4);
        daddrText = formatIpv4(p.daddr4);
      }
      // ip_vs_service_find's order: the fwmark service of the frame's mark, then the address.
      const mark = this.marks.active(p.family) ? this.marks.of(p) : 0;
      const svc = this.services.lookup(protocol, daddrText, p.dport, mark);
      if (svc === undefined) return this.drop("noService");
      if (protocol === "tcp") {
        const sv = this.synproxy.noEntry(this, p, svc, now);
        if (sv !== undefined) return sv;
        if (conns.statelessSyn) {
          const st = statelessSynNoEntry(this, p, svc, saddrText, daddrText);
          if (st !== undefined) return st;
        } else if (!tcpMaySchedule(p.tcpFlags, conns.options.sloppyTcp)) return this.drop("noConn");
      }
      if (protocol === "sctp" && !sctpMaySchedule(p.sctp.first, conns.options.sloppySctp)) return this.drop("noConn");
      const made = this.newConn(p, svc, mark);
      if (typeof made === "string") return made;
      conn = made;
    }
    if (!conn.dest.available) return this.drop("destGone");
    const plane = connPlane(conn);
    if (!plane.cmacKnown) {
      plane.cmac.set(p.buf.subarray(p.eth + 6, p.eth + 12));
      plane.cmacKnown = true;
    }
    if (plane.synproxy !== undefined) {
      const sv = this.synproxy.client(this, p, conn, plane.synproxy, now);
      if (sv !== undefined) return sv;
    }
    const xmit = plane.xmit ?? bindForwarder(conn, plane);
    if (protocol === "tcp") conns.tcpPacketTrusted(conn, xmit.clientDir, p.tcpFlags, now);
    else if (protocol === "sctp") conns.sctpPacketTrusted(conn, xmit.clientDir, p.sctp.first, now, p.sctp.next);
    else conns.touch(conn, now);
    const bytes = p.ipLen;
    const v = xmit.in(this, p, conn);
    if (v === "forward") {
      conns.accountTrusted(conn, "in", 1, bytes);
      this.onInbound?.(conn, now);
    }
    return v;
  }

  /** A frame to an address not owned: a fwmark service's when a rule marks it so, else the host's. */
  #marked(p: Pkt): Verdict {
    if (!this.marks.takes(p)) return "ignore";
    if (p.fragment) return this.drop("fragment");
    return this.#inbound(p);
  }

  /** Real server → client through the director (NAT, FULLNAT). */
  #outbound(p: Pkt, conn: BoundConn): Verdict {
    const now = this.#now;
    const sp = connPlane(conn).synproxy;
    if (sp !== undefined && p.protocol === "tcp") {
      const sv = this.synproxy.server(this, p, conn, sp, now);
      if (sv !== undefined) return sv;
    }
    if (p.protocol === "tcp") this.conns.tcpPacketTrusted(conn, "out", p.tcpFlags, now);
    else if (p.protocol === "sctp") this.conns.sctpPacketTrusted(conn, "out", p.sctp.first, now, p.sctp.next);
    else this.conns.touch(conn, now);
    const bytes = p.ipLen;
    const out = forwarderOf(conn).out;
    const v = out === undefined ? this.drop("unsupported") : out(this, p, conn);
    if (v === "forward") this.conns.accountTrusted(conn, "out", 1, bytes);
    return v;
  }

  #icmpToVip(p: Pkt): Verdict {
    const buf = p.buf;
    const type = buf[p.l4]!;
    if (type === ICMP_ECHO) {
      if (p.fragment) return this.drop("fragment");
      return echoReply4(p, this.mac, this.#egress) === "drop" ? this.drop("malformed") : "reply";
    }
    if (isIcmpError(type)) return relayIcmpIn(this, p) ?? this.drop("noConn");
    return "ignore";
  }
}
