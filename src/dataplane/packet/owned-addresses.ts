// The addresses a director owns on its interface: the VIP of every address-based service, the
// extra VIPs it was told to own, and the FULLNAT local addresses. It answers ARP/ND for all of
// them, keeps the host kernel away from them (the nft guard) and steers flows by them (a frame to
// a VIP comes from a client; one to a local address is a FULLNAT reply). Canonical text, no repeats.

import { canonicalIp } from "../../core/addr.ts";
import type { ServiceTable } from "../../core/service-table.ts";

export interface OwnedAddresses {
  vips: string[];
  locals: string[];
}

export function ownedAddresses(
  services: ServiceTable,
  extraVips: readonly string[],
  locals: readonly string[],
): OwnedAddresses {
  const canon = (a: string) => canonicalIp(a) ?? a;
  const localSet = new Set(locals.map(canon));
  const vips = new Set<string>();
  for (const svc of services.services()) if (svc.key.kind === "vip") vips.add(canon(svc.key.addr));
  for (const a of extraVips) vips.add(canon(a));
  for (const a of localSet) vips.delete(a);
  return { vips: [...vips], locals: [...localSet] };
}
