// Direct routing (ipvsadm -g, the kernel's ip_vs_dr_xmit): the frame goes unchanged to the real
// server's MAC on the same L2 segment; the real server owns the VIP on a non-ARPing interface and
// replies straight to the client, so the director sees only the client's side ("in-only" TCP
// transitions). The real-server port cannot differ from the virtual port: nothing rewrites it,
// so such an entry is a configuration error and its packets are dropped.

import type { BoundConn } from "../../../core/conn/conn.ts";
import type { Verdict } from "../counters.ts";
import type { Pkt } from "../pkt.ts";
import { decrementTtl, type XmitContext } from "./context.ts";

export function drIn(ctx: XmitContext, p: Pkt, conn: BoundConn): Verdict {
  if (p.l4 >= 0 && conn.dport !== p.dport) return ctx.drop("drPort");
  if (!decrementTtl(p)) return ctx.drop("ttl");
  return ctx.toNeighbour(p, conn.daddr, conn.dest.family);
}
