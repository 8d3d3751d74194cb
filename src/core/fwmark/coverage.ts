// How the firewall-mark rules and the fwmark services meet: which marks a service waits for that no
// rule ever sets (its traffic can never arrive: the operator is warned), which rules set a mark no
// service takes (their packets fall through to the address services, then to the host, as in
// the kernel), and which single destination addresses the director must own (answer ARP/ND for,
// keep away from the host) because a rule sends their traffic to a service.

import type { Family } from "../addr.ts";
import type { ServiceKey } from "../service.ts";
import { type FwmarkRule, hostAddress } from "./rule.ts";

/** "mark/family", the key of a fwmark service. */
function markKey(mark: number, family: Family): string {
  return `${mark}/${family}`;
}

/** The (mark, family) pairs of the fwmark services among `keys`. */
export function fwmarkServiceSet(keys: Iterable<ServiceKey>): Set<string> {
  const s = new Set<string>();
  for (const k of keys) if (k.kind === "fwmark") s.add(markKey(k.fwmark, k.family));
  return s;
}

/** Whether some fwmark service takes what this rule marks. */
export function ruleReachesService(rule: FwmarkRule, services: ReadonlySet<string>): boolean {
  return services.has(markKey(rule.mark, rule.dst.family));
}

/** fwmark services no rule feeds: (mark, family) with no rule of that mark and family. */
export function marksWithoutRules(
  keys: Iterable<ServiceKey>,
  rules: readonly FwmarkRule[],
): { fwmark: number; family: Family }[] {
  const produced = new Set(rules.map((r) => markKey(r.mark, r.dst.family)));
  const out: { fwmark: number; family: Family }[] = [];
  for (const k of keys)
    if (k.kind === "fwmark" && !produced.has(markKey(k.fwmark, k.family)))
      out.push({ fwmark: k.fwmark, family: k.family });
  return out;
}

/**
 * Single destination addresses (/32, /128) of rules whose mark reaches a service: the director
 * owns them as it owns a VIP. Wider prefixes are not owned (nobody answers ARP for a /24): their
 * traffic is taken when it is routed to the director's MAC.
 */
export function ownedRuleHosts(rules: readonly FwmarkRule[], services: ReadonlySet<string>): string[] {
  const out = new Set<string>();
  for (const r of rules) {
    const h = hostAddress(r.dst);
    if (h !== undefined && ruleReachesService(r, services)) out.add(h);
  }
  return [...out];
}

/**
 * The rules the host guard must mirror, in order, each with whether its traffic is the plane's
 * (its mark reaches a service: drop it for the host) or the host's (first match wins, so a
 * packet it matches is the host's even if a later rule would take it). Rules after the last one
 * the plane takes change nothing and are left out; an empty list means no guard rules.
 */
export function guardRules(
  rules: readonly FwmarkRule[],
  services: ReadonlySet<string>,
): { rule: FwmarkRule; taken: boolean }[] {
  const out = rules.map((rule) => ({ rule, taken: ruleReachesService(rule, services) }));
  let last = out.length - 1;
  while (last >= 0 && !out[last]!.taken) last--;
  return out.slice(0, last + 1);
}
