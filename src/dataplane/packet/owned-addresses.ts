// The addresses a director owns on its interface: the VIP of every address-based service, the
// extra VIPs it was told to own, the single destination addresses of firewall-mark rules whose
// mark a fwmark service takes (core/fwmark/coverage.ts), and the FULLNAT local addresses. It answers ARP/ND for all of
// them, keeps the host kernel away from them (the nft guard) and steers flows by them (a frame to
// a VIP comes from a client; one to a local address is a FULLNAT reply). Canonical text, no repeats.

import { canonicalIp } from "../../core/addr.ts";
import { fwmarkServiceSet, ownedRuleHosts } from "../../core/fwmark/coverage.ts";
import type { FwmarkRule } from "../../core/fwmark/rule.ts";
import type { ServiceTable } from "../../core/service-table.ts";

export interface OwnedAddresses {
  vips: string[];
  locals: string[];
}

export function ownedAddresses(
  services: ServiceTable,
  extraVips: readonly string[],
  locals: readonly string[],
  fwmarkRules: readonly FwmarkRule[] = [],
): OwnedAddresses {
  const canon = (a: string) => canonicalIp(a) ?? a;
  const localSet = new Set(locals.map(canon));
  const vips = new Set<string>();
  for (const svc of services.services()) if (svc.key.kind === "vip") vips.add(canon(svc.key.addr));
  for (const a of extraVips) vips.add(canon(a));
  if (fwmarkRules.length > 0) {
    const served = fwmarkServiceSet(services.services().map((s) => s.key));
    for (const a of ownedRuleHosts(fwmarkRules, served)) vips.add(a);
  }
  for (const a of localSet) vips.delete(a);
  return { vips: [...vips], locals: [...localSet] };
}
