// Full NAT (two-arm-free NAT, as in the out-of-tree FULLNAT patches): client packets get the real
// server as destination and one of the director's local addresses and ports as source, so the
// real server replies to the director whatever its gateway; replies get VIP:vport as source and
// the client as destination. The local endpoint is chosen per connection from a pool: a port is
// taken from a per-address cursor and skipped while another entry to the same real server uses it.

import type { BoundConn } from "../../../core/conn/conn.ts";
import { rewriteAddr4, rewriteAddr6, rewritePort } from "../codec/l4.ts";
import type { Verdict } from "../counters.ts";
import type { Pkt } from "../pkt.ts";
import { connPlane, decrementTtl, toClient, type XmitContext } from "./context.ts";
import { fromVirtual, sctpPortsAfter, sctpPortsBefore, toRealServer } from "./nat.ts";

export function fullnatIn(ctx: XmitContext, p: Pkt, conn: BoundConn): Verdict {
  if (!decrementTtl(p)) return ctx.drop("ttl");
  const plane = connPlane(conn);
  const ports = sctpPortsBefore(p);
  toRealServer(p, conn);
  if (p.family === 4) rewriteAddr4(p.buf, p.l3, 12, p.l4, p.proto, plane.laddr4, p.partial);
  else rewriteAddr6(p.buf, p.l3, 8, p.l4, p.proto, plane.laddr6!, p.partial);
  if (p.l4 >= 0) rewritePort(p.buf, p.l4, p.proto, 0, conn.lport, p.partial, p.family === 6);
  sctpPortsAfter(p, ports);
  return ctx.toNeighbour(p, conn.daddr, conn.dest.family);
}

export function fullnatOut(ctx: XmitContext, p: Pkt, conn: BoundConn): Verdict {
  if (!decrementTtl(p)) return ctx.drop("ttl");
  const plane = connPlane(conn);
  const ports = sctpPortsBefore(p);
  fromVirtual(p, conn);
  if (p.family === 4) rewriteAddr4(p.buf, p.l3, 16, p.l4, p.proto, plane.caddr4, p.partial);
  else rewriteAddr6(p.buf, p.l3, 24, p.l4, p.proto, plane.caddr6!, p.partial);
  if (p.l4 >= 0) rewritePort(p.buf, p.l4, p.proto, 2, conn.cport, p.partial, p.family === 6);
  sctpPortsAfter(p, ports);
  return toClient(ctx, p, conn, plane);
}

/**
 * Local address pool with a port cursor per address (ports 1024..65535). With several packet
 * workers each allocates only the ports it owns (port % share.of === share.index), because the
 * fanout steering program sends a reply to laddr:lport to worker lport % workers.
 */
export class LocalPool {
  readonly addrs: string[];
  readonly #stride: number;
  readonly #first: number;
  readonly #count: number;
  #next = 0;
  readonly #cursor = new Map<string, number>();

  constructor(addrs: readonly string[], share: { index: number; of: number } = { index: 0, of: 1 }) {
    this.addrs = [...addrs];
    this.#stride = Math.max(1, share.of);
    let first = 1024;
    while (first % this.#stride !== share.index % this.#stride) first++;
    this.#first = first;
    this.#count = Math.floor((65535 - first) / this.#stride) + 1;
  }

  /**
   * Pick a local endpoint for a connection to dest: `inUse(laddr, lport)` says whether another
   * entry already uses it. Returns undefined when every port of every address was tried.
   */
  pick(family: 4 | 6, inUse: (laddr: string, lport: number) => boolean): { laddr: string; lport: number } | undefined {
    const cands = this.addrs.filter((a) => a.includes(":") === (family === 6));
    if (cands.length === 0) return undefined;
    for (let k = 0; k < cands.length; k++) {
      const laddr = cands[(this.#next + k) % cands.length]!;
      let port = this.#cursor.get(laddr) ?? this.#first;
      for (let tries = 0; tries < this.#count; tries++) {
        port = port + this.#stride > 65535 ? this.#first : port + this.#stride;
        if (!inUse(laddr, port)) {
          this.#cursor.set(laddr, port);
          this.#next = (this.#next + k + 1) % cands.length;
          return { laddr, lport: port };
        }
      }
    }
    return undefined;
  }
}
