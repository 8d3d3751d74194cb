// Requests a real server starts (the kernel's __ip_vs_rs_conn_out and ip_vs_new_conn_out, which
// run for services whose persistence engine has conn_out: --pe sip). Behind NAT a SIP real server
// sends requests of its own towards a client (a BYE when the callee hangs up, a re-INVITE), from
// its SIP port to the client's, possibly after the client's entry expired or never existed (with
// -o every entry leaves the table at once). Such a UDP packet from a masquerading real server's
// endpoint of a SIP service, with no entry, gets one here: core's scheduleOut() keys it to the
// template of the client's network and the message's Call-ID (made on this real server when
// missing), and the packet is then translated as a reply (source VIP:vport). Anything else from a
// real server without an entry still passes to the host, as before.

import { formatIpv4 } from "../../core/addr.ts";
import type { BoundConn } from "../../core/conn/conn.ts";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import type { Dest } from "../../core/dest.ts";
import { persistenceKey } from "../../core/pe/persistence-key.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import { ip6Text } from "./codec/ipv6.ts";
import { UDP_HLEN } from "./codec/udp.ts";
import type { Pkt } from "./pkt.ts";

export class RealServerRequests {
  /** "addr|port" of each masquerading UDP real server of a --pe sip service → its destination. */
  readonly #byEndpoint = new Map<string, Dest>();

  /** Re-read the services (after any change). */
  refresh(services: ServiceTable): void {
    this.#byEndpoint.clear();
    for (const svc of services.services()) {
      if (svc.key.kind !== "vip" || svc.key.protocol !== "udp" || svc.options.pe !== "sip") continue;
      for (const d of svc.dests) {
        const k = `${d.addr}|${d.port}`;
        if (d.fwd === "masq" && !this.#byEndpoint.has(k)) this.#byEndpoint.set(k, d);
      }
    }
  }

  /** Whether any service can take real-server-started requests (the kernel's conn_out_counter). */
  get active(): boolean {
    return this.#byEndpoint.size !== 0;
  }

  /** The entry for a UDP packet from a real server to a client that has none, or undefined. */
  open(conns: ConnTable, p: Pkt, now: number): BoundConn | undefined {
    if (p.protocol !== "udp" || p.l4 < 0) return undefined;
    const saddr = p.family === 4 ? formatIpv4(p.saddr4) : ip6Text(p.buf, p.l3 + 8);
    const dest = this.#byEndpoint.get(`${saddr}|${p.sport}`);
    const svc = dest?.svc;
    if (dest === undefined || svc === undefined || !dest.available || svc.key.kind !== "vip") return undefined;
    if (svc.family !== p.family) return undefined;
    const caddr = p.family === 4 ? formatIpv4(p.daddr4) : ip6Text(p.buf, p.l3 + 24);
    const flow = {
      family: p.family,
      protocol: "udp" as const,
      saddr: caddr,
      sport: p.dport,
      daddr: svc.key.addr,
      dport: svc.key.port,
    };
    const key = persistenceKey(svc, "udp", p.buf, p.l4 + UDP_HLEN, p.end);
    try {
      const r = conns.scheduleOut(svc, dest, p.sport, flow, now, key !== undefined ? { peData: key } : undefined);
      return "error" in r ? undefined : r;
    } catch {
      // The client's tuple already has an entry to another real server: leave the packet alone.
      return undefined;
    }
  }
}
