// The classic LVS set-up mistakes that can be seen from the director, as notes for `tvs status`
// (docs/troubleshooting.md explains each one and its fix). pitfallNotes is pure: it reads a
// snapshot of the table and the host's own addresses and says what looks wrong; it changes nothing.
//
// - A VIP that is the director's own address, on the packet data plane. With DR (and TUN) the real
//   servers carry the VIP on lo, so an ARP request whose sender address is the VIP looks like one
//   of their own addresses talking and is ignored: the director never learns their MACs. And the
//   host's own traffic to that address (ssh, the health checks' answers) goes to the director.
// - NAT real servers that take packets and never answer through the director: with masquerading
//   the replies must come back through the director (its address as their default gateway, or a
//   route to the clients through it). Seen as a destination with incoming packets and no outgoing
//   ones on the packet plane, where both directions are counted from the wire.
//
// - A real server that is the director itself (127.0.0.0/8, ::1 or one of the host's addresses:
//   ldirectord's `fallback=127.0.0.1:80`, a sorry server on the director). The kernel's IPVS hands
//   such packets to its own stack; the packet data plane has no local delivery, so connections
//   scheduled there get no answer.
//
// - On either plane: a persistence engine (--pe sip) on a service without persistence (-p). The
//   kernel and ipvsadm accept it and it does nothing, since the engine keys persistence templates;
//   tvs accepts it the same way and says so here.
//
// A real server answering ARP for the VIP (DR without arp_ignore/arp_announce) is not visible from
// here in general: `tvs realserver status` on the real server shows its settings.

import { networkInterfaces } from "node:os";
import { canonicalIp, formatEndpoint } from "../core/addr.ts";
import type { Snapshot } from "./api/protocol.ts";

/** Incoming packets a NAT destination may have without any reply before it is pointed out. */
export const NAT_SILENT_MIN_PACKETS = 3;

export interface PitfallInput {
  /** The data plane's name ("packet" or "proxy"). */
  plane: string;
  snapshot: Snapshot;
  /** The host's own addresses (every interface), canonical text. */
  hostAddrs: ReadonlySet<string>;
}

export function pitfallNotes(input: PitfallInput): string[] {
  const notes: string[] = [];
  for (const svc of input.snapshot.services) {
    const o = svc.options;
    if (o.pe !== "" && !o.persistent) {
      const k = svc.key;
      const id = k.kind === "vip" ? `${k.protocol} ${formatEndpoint(k.addr, k.port)}` : `FWM ${k.fwmark}`;
      notes.push(`${id}: --pe ${o.pe} has no effect without persistence (-p), as in the kernel`);
    }
  }
  if (input.plane !== "packet") return notes;
  for (const svc of input.snapshot.services) {
    const k = svc.key;
    if (k.kind !== "vip") continue;
    const id = `${k.protocol} ${formatEndpoint(k.addr, k.port)}`;
    if (input.hostAddrs.has(k.addr)) {
      const bypass = svc.dests.some((d) => d.spec.fwd === "droute" || d.spec.fwd === "tunnel");
      notes.push(
        `VIP ${k.addr} of ${id} is also this host's own address: ${
          bypass ? "DR/TUN real servers with the VIP on lo ignore ARP from it, so their MACs never resolve; " : ""
        }give the service an address of its own (see docs/troubleshooting.md)`,
      );
    }
    for (const d of svc.dests) {
      if (isLoopback(d.spec.addr) || input.hostAddrs.has(d.spec.addr)) {
        const rs = formatEndpoint(d.spec.addr, d.spec.port);
        notes.push(
          `Real server ${rs} of ${id} is this director itself: the packet data plane cannot hand packets to its own ` +
            "stack, so connections scheduled to it get no answer; put it (a sorry server, an ldirectord fallback) on a host of its own",
        );
        continue;
      }
      if (d.spec.fwd !== "masq") continue;
      if (d.stats.inPkts >= NAT_SILENT_MIN_PACKETS && d.stats.outPkts === 0) {
        const rs = formatEndpoint(d.spec.addr, d.spec.port);
        notes.push(
          `NAT real server ${rs} of ${id} got ${d.stats.inPkts} packets and no reply came back through this director: ` +
            "unless it is down, make the director its default gateway (or route the clients through it), or use --fullnat",
        );
      }
    }
  }
  return notes;
}

function isLoopback(addr: string): boolean {
  return addr.startsWith("127.") || addr === "::1";
}

/** Every address of this host's interfaces, canonical text. */
export function hostAddresses(): Set<string> {
  const out = new Set<string>();
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      const c = canonicalIp(a.address.replace(/%.*$/, ""));
      if (c !== undefined) out.add(c);
    }
  }
  return out;
}
