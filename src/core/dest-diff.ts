// The one destination diff of tvs: the requests that turn the destinations a service has into the
// ones it should have. A reload uses it for every service of the new configuration (through
// table-image.ts's diffTable), and the health supervisor uses it when a check result, a quorum
// change or a reload moves a health-checked service's pool.
//
// Destinations are matched by canonical address and port (the kernel's identity of a real server
// within a service). One that should go is deleted, one that is new is added, one whose settings
// differ (weight, method, thresholds, tunnel options) is edited in place, so its connections and
// counters survive; an equal one is left alone. Deletions come first (a destination that leaves
// may free what the next one needs), then additions and edits in the wanted order. A caller that
// manages only some of a service's destinations (the supervisor leaves hand-added ones alone)
// says which ones it owns; the others are never deleted.

import { canonicalIp } from "./addr.ts";
import type { DestSpec } from "./dest.ts";
import type { TableRequest } from "./request.ts";
import type { ServiceKey } from "./service.ts";

/** A destination's identity within a service ("10.0.0.1|80"). */
export function destId(addr: string, port: number): string {
  return `${canonicalIp(addr) ?? addr}|${port}`;
}

/** Whether two specs of the same destination have the same settings (nothing to edit). */
export function sameDest(a: DestSpec, b: DestSpec): boolean {
  return (
    a.fwd === b.fwd &&
    a.weight === b.weight &&
    a.uThreshold === b.uThreshold &&
    a.lThreshold === b.lThreshold &&
    a.tun.type === b.tun.type &&
    a.tun.port === b.tun.port &&
    a.tun.nocsum === b.tun.nocsum &&
    a.tun.csum === b.tun.csum &&
    a.tun.remcsum === b.tun.remcsum
  );
}

/**
 * The del-dest, add-dest and edit-dest requests that bring service `key` from `have` to `want`.
 * `owns` limits deletions to the destinations the caller manages (default: all of them).
 */
export function diffDests(
  key: ServiceKey,
  have: Iterable<DestSpec>,
  want: Iterable<DestSpec>,
  owns: (d: DestSpec) => boolean = () => true,
): TableRequest[] {
  const out: TableRequest[] = [];
  const wanted = new Map<string, DestSpec>();
  for (const d of want) wanted.set(destId(d.addr, d.port), d);
  const current = new Map<string, DestSpec>();
  for (const d of have) current.set(destId(d.addr, d.port), d);
  for (const [id, d] of current)
    if (!wanted.has(id) && owns(d)) out.push({ op: "del-dest", key, addr: d.addr, port: d.port });
  for (const [id, d] of wanted) {
    const cur = current.get(id);
    if (!cur) out.push({ op: "add-dest", key, dest: d });
    else if (!sameDest(cur, d)) out.push({ op: "edit-dest", key, dest: d });
  }
  return out;
}
