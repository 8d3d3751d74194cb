// The forwarding methods, bound to a connection once (the kernel's ip_vs_bind_xmit sets
// cp->packet_xmit from the connection's method when it is created or bound): afterwards every
// packet of the connection calls its forwarder directly, with no per-packet choice of method.
// "local" (the director itself as a real server) has no packet-plane forwarder: admission refuses
// it, and an entry that has it anyway (synced from a kernel director) drops its packets.

import type { BoundConn } from "../../../core/conn/conn.ts";
import type { FwdMethod } from "../../../core/dest.ts";
import { type ConnPlane, connPlane, type Forwarder } from "./context.ts";
import { drIn } from "./dr.ts";
import { fullnatIn, fullnatOut } from "./fullnat.ts";
import { natIn, natOut } from "./nat.ts";
import { tunIn } from "./tun.ts";

const FORWARDERS: Readonly<Record<FwdMethod, Forwarder>> = {
  masq: { clientDir: "in", in: natIn, out: natOut },
  fullnat: { clientDir: "in", in: fullnatIn, out: fullnatOut },
  droute: { clientDir: "in-only", in: drIn, out: undefined },
  tunnel: { clientDir: "in-only", in: tunIn, out: undefined },
  local: { clientDir: "in", in: (ctx) => ctx.drop("unsupported"), out: undefined },
};

/** The connection's forwarder, bound on first use from its method (fixed once the entry is bound). */
export function forwarderOf(c: BoundConn): Forwarder {
  const plane = connPlane(c);
  return plane.xmit ?? bindForwarder(c, plane);
}

/** Bind the forwarder of the connection's method to its plane state (ip_vs_bind_xmit); once per connection. */
export function bindForwarder(c: BoundConn, plane: ConnPlane): Forwarder {
  const f = FORWARDERS[c.fwd];
  plane.xmit = f;
  return f;
}
