// The steering program's view of the service table (steering.ts): frames to a VIP come from a
// client, frames to a local address are FULLNAT replies, and a persistent service makes its
// family's clients steer by address alone, to the shortest persistence netmask of that family
// (IPv4 and IPv6 separately). The main thread builds the program from it; each packet worker
// builds the same plan from its replica of the table to tell where a reassembled IPv6 datagram
// belongs (ipv6-defrag.ts). An IPv4 firewall-mark rule's wider destination prefix whose mark a
// fwmark service takes counts as a VIP too (its single addresses are already among the VIPs).

import { fwmarkServiceSet, ruleReachesService } from "../../core/fwmark/coverage.ts";
import { type FwmarkRule, hostAddress } from "../../core/fwmark/rule.ts";
import type { ServiceTable } from "../../core/service-table.ts";
import type { OwnedAddresses } from "./owned-addresses.ts";
import type { SteeringPlan } from "./steering.ts";

export function steeringPlanOf(
  services: ServiceTable,
  owned: OwnedAddresses,
  fwmarkRules: readonly FwmarkRule[] = [],
): SteeringPlan {
  const served = fwmarkServiceSet(services.services().map((s) => s.key));
  const vipPrefixes = fwmarkRules
    .filter((r) => r.dst.family === 4 && hostAddress(r.dst) === undefined && ruleReachesService(r, served))
    .map((r) => ({ addr: r.dst.addr, len: r.dst.len }));
  let byAddress = false;
  let prefix = 32;
  let byAddress6 = false;
  let prefix6 = 128;
  for (const svc of services.services()) {
    if (!svc.options.persistent) continue;
    // A persistent fwmark service's templates are per client network too.
    if (svc.key.kind === "vip" ? svc.key.addr.includes(":") : svc.key.family === 6) {
      byAddress6 = true;
      prefix6 = Math.min(prefix6, svc.options.netmask);
    } else {
      byAddress = true;
      prefix = Math.min(prefix, svc.options.netmask);
    }
  }
  return {
    vips: owned.vips,
    locals: owned.locals,
    byAddress,
    mask: prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0,
    byAddress6,
    prefix6,
    ...(vipPrefixes.length > 0 ? { vipPrefixes } : {}),
  };
}
