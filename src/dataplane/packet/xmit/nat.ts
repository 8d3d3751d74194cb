// Masquerading (ipvsadm -m, the kernel's ip_vs_nat_xmit and handle_response): client → VIP:vport
// packets get the real server's address and port as destination (port mapping allowed); replies
// from the real server (whose default gateway is the director) get VIP:vport back as source and
// go to the client's next hop, whose MAC the director learned from the client's packets.
// Checksums are updated incrementally; a UDP checksum of 0 stays 0. SCTP's CRC32c covers no
// pseudo-header, so only a port change moves it (updated in O(log n), codec/crc32c.ts).

import type { BoundConn } from "../../../core/conn/conn.ts";
import { rewriteAddr4, rewriteAddr6, rewritePort } from "../codec/l4.ts";
import { IPPROTO_SCTP, readSctpPorts, updateSctpChecksumForPorts } from "../codec/sctp.ts";
import type { Verdict } from "../counters.ts";
import type { Pkt } from "../pkt.ts";
import { connPlane, decrementTtl, destPlane, toClient, type XmitContext } from "./context.ts";

/** Rewrite the destination of a client packet to the real server (also used by FULLNAT). */
export function toRealServer(p: Pkt, conn: BoundConn): void {
  const dp = destPlane(conn.dest);
  if (p.family === 4) rewriteAddr4(p.buf, p.l3, 16, p.l4, p.proto, dp.addr4, p.partial);
  else rewriteAddr6(p.buf, p.l3, 24, p.l4, p.proto, dp.addr6!, p.partial);
  if (p.l4 >= 0) rewritePort(p.buf, p.l4, p.proto, 2, conn.dport, p.partial, p.family === 6);
}

/** Rewrite the source of a real server's reply to VIP:vport (also used by FULLNAT). */
export function fromVirtual(p: Pkt, conn: BoundConn): void {
  const plane = connPlane(conn);
  if (p.family === 4) rewriteAddr4(p.buf, p.l3, 12, p.l4, p.proto, plane.vaddr4, p.partial);
  else rewriteAddr6(p.buf, p.l3, 8, p.l4, p.proto, plane.vaddr6!, p.partial);
  if (p.l4 >= 0) rewritePort(p.buf, p.l4, p.proto, 0, conn.vport, p.partial, p.family === 6);
}

/** Before an SCTP packet's ports are rewritten: the ports as they are (0 for other protocols). */
export function sctpPortsBefore(p: Pkt): number {
  return p.proto === IPPROTO_SCTP && p.l4 >= 0 ? readSctpPorts(p.buf, p.l4) : 0;
}

/** After the rewrite: carry the SCTP checksum over the port change. */
export function sctpPortsAfter(p: Pkt, before: number): void {
  if (p.proto === IPPROTO_SCTP && p.l4 >= 0) updateSctpChecksumForPorts(p.buf, p.l4, p.end - p.l4, before);
}

export function natIn(ctx: XmitContext, p: Pkt, conn: BoundConn): Verdict {
  if (!decrementTtl(p)) return ctx.drop("ttl");
  const ports = sctpPortsBefore(p);
  toRealServer(p, conn);
  sctpPortsAfter(p, ports);
  return ctx.toNeighbour(p, conn.daddr, conn.dest.family);
}

export function natOut(ctx: XmitContext, p: Pkt, conn: BoundConn): Verdict {
  if (!decrementTtl(p)) return ctx.drop("ttl");
  const ports = sctpPortsBefore(p);
  fromVirtual(p, conn);
  sctpPortsAfter(p, ports);
  return toClient(ctx, p, conn, connPlane(conn));
}
