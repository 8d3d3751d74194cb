// The SYN proxy of the packet plane (sysctl synproxy=1; docs/defences.md), for NAT and FULLNAT
// services, in the manner of DPVS's: the director completes the client's handshake itself with a
// SYN cookie and opens the connection to the real server only once the client proved it is real.
//
//   client SYN          → SYN-ACK from the VIP, ISN = cookie (core/synproxy/syn-cookie.ts),
//                         window 0, options: our MSS, SACK-permitted, timestamps, window scale as
//                         the client offered them. No entry, no state.
//   client ACK, no entry→ the cookie (ack - 1) is checked (against ISN = seq - 1, or seq for the
//                         zero-window probe a client sends when its ACK was lost); valid: the entry is scheduled as for a
//                         SYN, and the ACK's frame becomes a SYN to the real server carrying the
//                         client's ISN, the MSS / SACK / timestamp / window-scale options the
//                         cookie kept, and the client's TSval. Invalid: handled as without a proxy
//                         (noConn, or sloppy_tcp).
//   server SYN-ACK      → delta = cookie - server ISN; the handshake's last ACK goes to the server
//                         (a generated frame) and the SYN-ACK's frame becomes a window update to
//                         the client (seq = cookie + 1, the server's window), which lets the client
//                         send the data it has been holding behind the zero window.
//   afterwards          → every segment is translated (seq-adjust.ts): ack, SACK blocks and TSecr
//                         from client to server, seq and TSval back, windows rescaled if needed.
//
// While the server has not answered, client segments are dropped (the zero window keeps a real
// client quiet), except that a retransmission more than a second after our SYN sends the SYN
// again; a client RST removes the entry. A server RST to our SYN goes to the client with the
// sequence number it expects. A service qualifies when all its real servers are NAT or FULLNAT
// (DR and TUN never see the server's SYN-ACK); others are scheduled on the SYN as before.

import type { BoundConn } from "../../../core/conn/conn.ts";
import type { ConnTable } from "../../../core/conn/conn-table.ts";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../../../core/conn/tcp-states.ts";
import type { VirtualService } from "../../../core/service.ts";
import { SynCookies } from "../../../core/synproxy/syn-cookie.ts";
import { update32 } from "../codec/checksum.ts";
import type { PlaneCounters, Verdict } from "../counters.ts";
import { Pkt } from "../pkt.ts";
import { connPlane, type TunContext } from "../xmit/context.ts";
import { forwarderOf } from "../xmit/forwarders.ts";
import { adjustInbound, adjustOutbound, OFFERED_WSCALE, type SynproxyConn, windowShifts } from "./seq-adjust.ts";
import { emptyOptionView, readTcpOptions, readU32, writeTcpPacket, writeU32 } from "./tcp-segment.ts";

/** A client retransmission at least this long after our SYN to the server sends it again. */
const SYN_RETRY_MS = 1000;

/** What the proxy needs from the pipeline beyond forwarding. */
export interface SynproxyHost extends TunContext {
  readonly counters: PlaneCounters;
  /** Schedule the entry for p's flow on svc, as a SYN would (FULLNAT local endpoint included); a drop verdict when refused. */
  newConn(p: Pkt, svc: VirtualService): BoundConn | Verdict;
  /** Point `q` at a fresh generated frame slot shaped like `like` (vnet header, Ethernet type); false when none is left. */
  scratch(q: Pkt, like: Pkt): boolean;
}

/** Whether a service's new connections go through the proxy: every real server is NAT or FULLNAT. */
export function proxiable(svc: VirtualService): boolean {
  if (svc.dests.length === 0) return false;
  for (const d of svc.dests) if (d.fwd !== "masq" && d.fwd !== "fullnat") return false;
  return true;
}

export class SynProxy {
  readonly cookies: SynCookies;
  readonly #tuple = new Int32Array(9);
  readonly #opt = emptyOptionView();
  readonly #src6 = new Uint8Array(16);
  readonly #dst6 = new Uint8Array(16);
  readonly #mac = new Uint8Array(6);

  constructor(random32: () => number) {
    this.cookies = new SynCookies(random32);
  }

  /**
   * A TCP segment to service `svc` that found no entry. A SYN is answered with a cookie when the
   * proxy is on for the service; an ACK carrying a valid cookie opens the connection. Undefined:
   * the pipeline goes on as without a proxy.
   */
  noEntry(h: SynproxyHost, p: Pkt, svc: VirtualService, now: number): Verdict | undefined {
    const f = p.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST | TCP_FIN);
    if (f === TCP_SYN) {
      if (!h.conns.synproxy || !proxiable(svc)) return undefined;
      return this.#answerSyn(h, p, now);
    }
    if ((f & (TCP_SYN | TCP_RST)) === 0 && f & TCP_ACK && this.cookies.mayHaveIssued(now))
      return this.#cookieAck(h, p, svc, now);
    return undefined;
  }

  /** A client segment of a proxied connection: translated in place (undefined: forward it as usual) or handled here. */
  client(h: SynproxyHost, p: Pkt, conn: BoundConn, sp: SynproxyConn, now: number): Verdict | undefined {
    const hlen = (p.buf[p.l4 + 12]! >>> 4) * 4;
    if (sp.phase === 1) {
      if (p.tcpFlags & TCP_SYN) return h.drop("synproxy");
      adjustInbound(p.buf, p.l4, hlen, sp, p.partial);
      return undefined;
    }
    if (p.tcpFlags & TCP_RST) {
      h.conns.remove(conn, now);
      return h.drop("synproxy");
    }
    if (p.tcpFlags & TCP_ACK && !(p.tcpFlags & TCP_SYN) && now - sp.synSentAt >= SYN_RETRY_MS)
      return this.#synToServer(h, p, conn, sp, now);
    return h.drop("synproxy");
  }

  /** A real server's segment of a proxied connection: translated in place (undefined) or handled here. */
  server(h: SynproxyHost, p: Pkt, conn: BoundConn, sp: SynproxyConn, now: number): Verdict | undefined {
    const buf = p.buf;
    const l4 = p.l4;
    const hlen = (buf[l4 + 12]! >>> 4) * 4;
    if (sp.phase === 1) {
      adjustOutbound(buf, l4, hlen, sp, p.partial);
      return undefined;
    }
    const f = p.tcpFlags;
    if (f & TCP_RST) {
      // Refused: the client expects the RST at the sequence number after our cookie.
      const old = readU32(buf, l4 + 4);
      const seq = (sp.cookie + 1) >>> 0;
      writeU32(buf, l4 + 4, seq);
      if (!p.partial) {
        const c = update32((buf[l4 + 16]! << 8) | buf[l4 + 17]!, old, seq);
        buf[l4 + 16] = c >>> 8;
        buf[l4 + 17] = c & 0xff;
      }
      return undefined;
    }
    if ((f & (TCP_SYN | TCP_ACK)) !== (TCP_SYN | TCP_ACK) || readU32(buf, l4 + 8) !== (sp.clientIsn + 1) >>> 0)
      return h.drop("synproxy");
    return this.#serverSynAck(h, p, conn, sp, hlen, now);
  }

  /** The 4-tuple as the cookie hashes it (client address, VIP, ports), from a client → VIP packet. */
  #tupleOf(p: Pkt): number {
    const t = this.#tuple;
    const ports = (p.sport << 16) | p.dport;
    if (p.family === 4) {
      t[0] = p.saddr4;
      t[1] = p.daddr4;
      t[2] = ports;
      return 3;
    }
    for (let i = 0; i < 8; i++) t[i] = readU32(p.buf, p.l3 + 8 + i * 4);
    t[8] = ports;
    return 9;
  }

  #answerSyn(h: SynproxyHost, p: Pkt, now: number): Verdict {
    const buf = p.buf;
    const l4 = p.l4;
    const o = readTcpOptions(buf, l4, (buf[l4 + 12]! >>> 4) * 4, this.#opt);
    const clientIsn = readU32(buf, l4 + 4);
    const clientTsval = o.ts >= 0 ? readU32(buf, o.ts) : 0;
    const n = this.#tupleOf(p);
    const cookie = this.cookies.make(
      this.#tuple,
      n,
      clientIsn,
      { mss: o.mss < 0 ? 536 : o.mss, wscale: o.wscale, sack: o.sackOk, ts: o.ts >= 0 },
      now,
    );
    h.counters.synCookiesSent++;
    const v6 = p.family === 6;
    if (v6) {
      this.#src6.set(buf.subarray(p.l3 + 24, p.l3 + 40));
      this.#dst6.set(buf.subarray(p.l3 + 8, p.l3 + 24));
    }
    const end = writeTcpPacket(buf, p.l3, p.family, v6 ? this.#src6 : p.daddr4, v6 ? this.#dst6 : p.saddr4, {
      sport: p.dport,
      dport: p.sport,
      seq: cookie,
      ack: clientIsn + 1,
      flags: TCP_SYN | TCP_ACK,
      // Zero: the client holds its data until the server has answered and we open the window.
      window: 0,
      options: {
        mss: h.mtu - (v6 ? 60 : 40),
        sackOk: o.sackOk,
        ts: o.ts >= 0 ? [now >>> 0, clientTsval] : undefined,
        wscale: o.wscale >= 0 ? OFFERED_WSCALE : -1,
      },
    });
    this.#reshape(p, end, TCP_SYN | TCP_ACK);
    this.#mac.set(buf.subarray(p.eth + 6, p.eth + 12));
    const v = h.toMac(p, this.#mac);
    return v === "forward" ? "reply" : v;
  }

  #cookieAck(h: SynproxyHost, p: Pkt, svc: VirtualService, now: number): Verdict | undefined {
    const buf = p.buf;
    const l4 = p.l4;
    let clientIsn = (readU32(buf, l4 + 4) - 1) >>> 0;
    const cookie = (readU32(buf, l4 + 8) - 1) >>> 0;
    const n = this.#tupleOf(p);
    let got = this.cookies.check(this.#tuple, n, clientIsn, cookie, now);
    // The handshake's ACK was lost: the client, facing our zero window, probes with seq = ISN.
    if (got === undefined && p.end === l4 + (buf[l4 + 12]! >>> 4) * 4) {
      got = this.cookies.check(this.#tuple, n, (clientIsn + 1) >>> 0, cookie, now);
      if (got !== undefined) clientIsn = (clientIsn + 1) >>> 0;
    }
    if (got === undefined) {
      h.counters.synCookiesBad++;
      return undefined;
    }
    h.counters.synCookiesValid++;
    const o = readTcpOptions(buf, l4, (buf[l4 + 12]! >>> 4) * 4, this.#opt);
    const made = h.newConn(p, svc);
    if (typeof made === "string") return made;
    const conn = made;
    if (conn.fwd !== "masq" && conn.fwd !== "fullnat") {
      // A DR or TUN real server joined after the SYN was answered: it would never show us its SYN-ACK.
      h.conns.remove(conn, now);
      return h.drop("synproxy");
    }
    const plane = connPlane(conn);
    plane.cmac.set(buf.subarray(p.eth + 6, p.eth + 12));
    plane.cmacKnown = true;
    const tsOk = got.ts && o.ts >= 0;
    const sp: SynproxyConn = {
      phase: 0,
      cookie,
      clientIsn,
      delta: 0,
      ts: false,
      tsDelta: 0,
      clientTsval: tsOk ? readU32(buf, o.ts) : 0,
      ourTsval: tsOk ? readU32(buf, o.ts + 4) : 0,
      mss: got.mss,
      clientWscale: got.wscale,
      sackOk: got.sack,
      tsOk,
      clientWindow: (buf[l4 + 14]! << 8) | buf[l4 + 15]!,
      shiftIn: 0,
      shiftOut: 0,
      synSentAt: now,
    };
    plane.synproxy = sp;
    return this.#synToServer(h, p, conn, sp, now);
  }

  /** Rewrite the client's segment p (client → VIP) into our SYN to the real server and forward it. */
  #synToServer(h: SynproxyHost, p: Pkt, conn: BoundConn, sp: SynproxyConn, now: number): Verdict {
    const buf = p.buf;
    const v6 = p.family === 6;
    if (v6) {
      this.#src6.set(buf.subarray(p.l3 + 8, p.l3 + 24));
      this.#dst6.set(buf.subarray(p.l3 + 24, p.l3 + 40));
    }
    const clientShift = sp.clientWscale >= 0 ? sp.clientWscale : 0;
    const end = writeTcpPacket(buf, p.l3, p.family, v6 ? this.#src6 : p.saddr4, v6 ? this.#dst6 : p.daddr4, {
      sport: p.sport,
      dport: p.dport,
      seq: sp.clientIsn,
      ack: 0,
      flags: TCP_SYN,
      window: Math.min(0xffff, sp.clientWindow * 2 ** clientShift),
      options: {
        mss: sp.mss,
        sackOk: sp.sackOk,
        ts: sp.tsOk ? [sp.clientTsval, 0] : undefined,
        wscale: sp.clientWscale,
      },
    });
    this.#reshape(p, end, TCP_SYN);
    sp.synSentAt = now;
    return this.#forwardIn(h, p, conn, TCP_SYN, now);
  }

  #serverSynAck(h: SynproxyHost, p: Pkt, conn: BoundConn, sp: SynproxyConn, hlen: number, now: number): Verdict {
    const buf = p.buf;
    const l4 = p.l4;
    const o = readTcpOptions(buf, l4, hlen, this.#opt);
    const serverIsn = readU32(buf, l4 + 4);
    const serverTsval = o.ts >= 0 ? readU32(buf, o.ts) : 0;
    const serverWindow = (buf[l4 + 14]! << 8) | buf[l4 + 15]!;
    const s = windowShifts(sp.clientWscale, o.wscale);
    sp.delta = (sp.cookie - serverIsn) >>> 0;
    sp.ts = sp.tsOk && o.ts >= 0;
    sp.tsDelta = (sp.ourTsval - serverTsval) >>> 0;
    sp.shiftIn = s.shiftIn;
    sp.shiftOut = s.shiftOut;
    sp.phase = 1;
    const conns: ConnTable = h.conns;
    conns.tcpPacketTrusted(conn, "out", TCP_SYN | TCP_ACK, now);
    conns.accountTrusted(conn, "out", 1, p.ipLen);
    const plane = connPlane(conn);
    const v6 = conn.family === 6;

    // The handshake's last ACK to the server, in a generated frame (client → VIP, then the method's rewrite).
    const q = this.#scratchPkt;
    if (h.scratch(q, p)) {
      const end = writeTcpPacket(
        q.buf,
        q.l3,
        conn.family,
        v6 ? plane.caddr6! : plane.caddr4,
        v6 ? plane.vaddr6! : plane.vaddr4,
        {
          sport: conn.cport,
          dport: conn.vport,
          seq: sp.clientIsn + 1,
          ack: serverIsn + 1,
          flags: TCP_ACK,
          window: Math.min(0xffff, sp.clientWindow * 2 ** s.shiftIn),
          options: sp.ts ? { mss: -1, sackOk: false, ts: [sp.clientTsval, serverTsval], wscale: -1 } : undefined,
        },
      );
      q.family = conn.family;
      q.saddr4 = plane.caddr4;
      q.daddr4 = plane.vaddr4;
      q.sport = conn.cport;
      q.dport = conn.vport;
      this.#reshape(q, end, TCP_ACK);
      this.#forwardIn(h, q, conn, TCP_ACK, now);
    }

    // The SYN-ACK's frame becomes the window update the client waits for (server → client view).
    if (v6) {
      this.#src6.set(buf.subarray(p.l3 + 8, p.l3 + 24));
      this.#dst6.set(buf.subarray(p.l3 + 24, p.l3 + 40));
    }
    const clientExpects = sp.clientWscale >= 0 ? OFFERED_WSCALE : 0;
    const end = writeTcpPacket(buf, p.l3, p.family, v6 ? this.#src6 : p.saddr4, v6 ? this.#dst6 : p.daddr4, {
      sport: p.sport,
      dport: p.dport,
      seq: sp.cookie + 1,
      ack: sp.clientIsn + 1,
      flags: TCP_ACK,
      window: Math.min(0xffff, Math.floor(serverWindow / 2 ** clientExpects)),
      options: sp.ts
        ? { mss: -1, sackOk: false, ts: [serverTsval + sp.tsDelta, sp.clientTsval], wscale: -1 }
        : undefined,
    });
    this.#reshape(p, end, TCP_ACK);
    const out = forwarderOf(conn).out;
    if (out === undefined) return h.drop("unsupported");
    const v = out(h, p, conn);
    if (v === "forward") conns.accountTrusted(conn, "out", 1, p.ipLen);
    return v;
  }

  readonly #scratchPkt = new Pkt();

  /** Update p's view after its IP packet was rewritten to end at `end` with fresh checksums. */
  #reshape(p: Pkt, end: number, flags: number): void {
    p.l4 = p.l3 + (p.family === 4 ? 20 : 40);
    p.end = end;
    p.ipLen = end - p.l3;
    p.tcpFlags = flags;
    p.partial = false;
    p.gso = false;
    p.fragment = false;
    p.proto = 6;
    p.protocol = "tcp";
    if (p.vnet) p.buf.fill(0, p.off, p.eth);
  }

  #forwardIn(h: SynproxyHost, p: Pkt, conn: BoundConn, flags: number, now: number): Verdict {
    h.conns.tcpPacketTrusted(conn, "in", flags, now);
    const v = forwarderOf(conn).in(h, p, conn);
    if (v === "forward") h.conns.accountTrusted(conn, "in", 1, p.ipLen);
    return v;
  }
}
