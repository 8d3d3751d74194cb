// Stateless SYN forwarding for DR services (sysctl stateless_syn=1, tvs's own; docs/defences.md),
// in the manner of Katran's and Maglev's: a director whose scheduler is a pure function of the
// flow does not need an entry to forward a SYN. A SYN that finds no entry is hashed to a real
// server and sent to its MAC as DR always does, and nothing is remembered; the first segment with
// ACK (the client's third handshake segment) finds no entry either, is scheduled by the same pure
// function onto the same real server, and creates the entry there (from NONE with ACK: the TCP
// state table's ESTABLISHED, as sloppy_tcp gives). A spoofed SYN flood then leaves no entries and
// costs a hash and a MAC lookup per SYN instead of an entry's allocation and timer.
//
// A service qualifies only when the pick is stable between the SYN and its ACK without state:
//   - scheduler mh or sh (hashes of the flow over the live server list; rr, wlc and the others
//     depend on what was scheduled before, so the ACK could land elsewhere);
//   - not persistent (a template may send a client elsewhere than the hash; the SYN would have to
//     read templates and the ACK could race a template's expiry: such services keep the stateful
//     path rather than half-honour persistence);
//   - every real server direct routing (NAT and FULLNAT rewrite addresses and must see the reply,
//     so they need the entry from the SYN on; they have the SYN proxy instead; TUN is not yet
//     carried statelessly);
//   - no one-packet scheduling (ops is UDP-only anyway).
// Services that do not qualify are scheduled on the SYN exactly as with the switch off. With the
// switch off nothing here runs. The pick can still differ between SYN and ACK when the server list
// or weights change in between, or sh/mh skip a server that became overloaded: the client's ACK
// then reaches a server without the half-open connection and is answered with a RST, the same
// outcome sloppy_tcp directors behind ECMP accept.

import { tcpMaySchedule } from "../../core/conn/sloppy.ts";
import { TCP_ACK, TCP_RST, TCP_SYN } from "../../core/conn/tcp-states.ts";
import type { Dest } from "../../core/dest.ts";
import type { Flow } from "../../core/sched/types.ts";
import type { VirtualService } from "../../core/service.ts";
import type { Verdict } from "./counters.ts";
import type { Pkt } from "./pkt.ts";
import { decrementTtl, type XmitContext } from "./xmit/context.ts";

/** Schedulers whose pick is a pure function of the flow and the live server list. */
export const STATELESS_SCHEDULERS: ReadonlySet<string> = new Set(["mh", "sh"]);

/** Why `svc` cannot take SYNs without an entry; undefined when it can. */
export function statelessSynProblem(svc: VirtualService): string | undefined {
  const o = svc.options;
  if (!STATELESS_SCHEDULERS.has(o.scheduler))
    return `scheduler ${o.scheduler} is not a pure function of the flow (stateless_syn needs mh or sh)`;
  if (o.persistent) return "the service is persistent (its templates need the entry from the SYN on)";
  if (svc.dests.length === 0) return "the service has no real server";
  for (const d of svc.dests)
    if (d.fwd !== "droute") return `real server ${d.addr} is not direct routing (stateless_syn is for DR services)`;
  return undefined;
}

/** statelessSynProblem(svc) === undefined, without building the reason: asked per segment. */
export function statelessSynQualifies(svc: VirtualService): boolean {
  const o = svc.options;
  if (!STATELESS_SCHEDULERS.has(o.scheduler) || o.persistent || svc.dests.length === 0) return false;
  for (const d of svc.dests) if (d.fwd !== "droute") return false;
  return true;
}

/**
 * A TCP segment to `svc` that found no entry, with stateless_syn on. A bare SYN to a qualifying
 * service is forwarded without an entry (the verdict); a segment with ACK (no SYN, no RST) to one
 * may be scheduled (undefined: the caller makes the entry); anything else is decided as with the
 * switch off (sloppy_tcp's rule), a drop or undefined.
 */
export function statelessSynNoEntry(
  ctx: XmitContext,
  p: Pkt,
  svc: VirtualService,
  saddr: string,
  daddr: string,
): Verdict | undefined {
  const f = p.tcpFlags & (TCP_SYN | TCP_ACK | TCP_RST);
  if (f === TCP_SYN) {
    const flow: Flow = { family: p.family, protocol: "tcp", saddr, sport: p.sport, daddr, dport: p.dport };
    const v = forwardSynStateless(ctx, p, svc, flow);
    if (v !== undefined) return v;
  } else if (f === TCP_ACK && statelessSynQualifies(svc)) return undefined;
  return tcpMaySchedule(p.tcpFlags, ctx.conns.options.sloppyTcp) ? undefined : ctx.drop("noConn");
}

/**
 * Forward a SYN that found no entry to the real server the scheduler picks, creating nothing.
 * Undefined when the service does not qualify (the caller schedules the SYN as usual).
 */
export function forwardSynStateless(ctx: XmitContext, p: Pkt, svc: VirtualService, flow: Flow): Verdict | undefined {
  if (!statelessSynQualifies(svc)) return undefined;
  const dest: Dest | undefined = svc.sched.schedule(flow);
  if (dest === undefined || !dest.available) return ctx.drop("noDest");
  if (dest.port !== p.dport) return ctx.drop("drPort");
  if (!decrementTtl(p)) return ctx.drop("ttl");
  return ctx.toNeighbour(p, dest.addr, dest.family);
}

/**
 * Turning stateless_syn on while services exist that could carry TCP but none of which qualifies
 * does nothing but open entry-less ACK scheduling to no one: refused, naming each service and why.
 * Undefined (accepted) when one qualifies, or when there are no such services yet (tvsd's --sysctl
 * is read before services exist; the switch then applies to those added later that qualify).
 */
export function statelessSynRefusal(services: readonly VirtualService[]): string | undefined {
  const tcp = services.filter((s) => s.protocol === "tcp" || s.protocol === undefined);
  if (tcp.length === 0) return undefined;
  const why: string[] = [];
  for (const s of tcp) {
    const p = statelessSynProblem(s);
    if (p === undefined) return undefined;
    why.push(`${s.id}: ${p}`);
  }
  return `sysctl stateless_syn=1: no service qualifies (a DR service scheduled by mh or sh, not persistent): ${why.join("; ")}`;
}
