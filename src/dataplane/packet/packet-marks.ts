// Firewall marks on the packet plane. The kernel's ip_vs reads skb->mark, which iptables' MARK
// target set in mangle PREROUTING; a packet socket sees the frame before netfilter, so no mark
// ever reaches tvs. The plane therefore classifies the frame itself with the operator's rules
// (core/fwmark: `tcp 10.0.0.1 80,443 mark 1`, first match wins) and hands the mark to the
// service lookup, which tries the fwmark service first, as ip_vs_service_find does.
//
// Classification runs only where the kernel would consult the mark: on a packet with no
// connection entry (a new flow), and for a frame to an address the director does not own (a
// rule's wider prefix, routed to the director's MAC), to decide whether it is the plane's at all.

import type { Family } from "../../core/addr.ts";
import { FwmarkClassifier } from "../../core/fwmark/classifier.ts";
import type { FwmarkRule } from "../../core/fwmark/rule.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import type { Pkt } from "./pkt.ts";

export class PacketMarks {
  #rules: readonly FwmarkRule[] = [];
  #classifier: FwmarkClassifier | undefined;
  /** Marks some fwmark service takes, per family. */
  readonly #served4 = new Set<number>();
  readonly #served6 = new Set<number>();

  get rules(): readonly FwmarkRule[] {
    return this.#rules;
  }

  /** Replace the rules (compiled once here). */
  setRules(rules: readonly FwmarkRule[]): void {
    this.#rules = rules;
    this.#classifier = rules.length > 0 ? new FwmarkClassifier(rules) : undefined;
  }

  /** Note which marks the fwmark services of `services` take (after every service change). */
  refresh(services: ServiceTable): void {
    this.#served4.clear();
    this.#served6.clear();
    for (const s of services.services())
      if (s.key.kind === "fwmark") (s.key.family === 4 ? this.#served4 : this.#served6).add(s.key.fwmark);
  }

  /** Whether the rules and services can mark anything at all (nothing to do otherwise). */
  active(family: Family): boolean {
    const c = this.#classifier;
    return c !== undefined && (family === 4 ? this.#served4.size > 0 : this.#served6.size > 0) && c.hasFamily(family);
  }

  /** The frame's mark: the first matching rule's, 0 when none matches (needs ports parsed). */
  of(p: Pkt): number {
    const c = this.#classifier;
    if (c === undefined || p.protocol === undefined || p.l4 < 0) return 0;
    return p.family === 4
      ? c.classify4(p.protocol, p.saddr4, p.daddr4, p.dport)
      : c.classify6(p.protocol, p.buf, p.l3 + 8, p.l3 + 24, p.dport);
  }

  /** A frame to an address the director does not own: does a rule send it to a fwmark service? */
  takes(p: Pkt): boolean {
    if (!this.active(p.family)) return false;
    const mark = this.of(p);
    return mark !== 0 && (p.family === 4 ? this.#served4 : this.#served6).has(mark);
  }
}
