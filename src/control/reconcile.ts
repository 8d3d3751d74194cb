// Reconciling: the smallest list of operations that turns the live service table into a desired
// state (from an ipvsadm rules file, keepalived.conf or ldirectord.cf). Services and destinations
// present on both sides with equal settings are left alone, so their connections, counters and
// scheduler state survive a reload; ones that differ are edited in place (edit-service, edit-dest
// keep counters too); only what the desired state no longer names is deleted.
//
// Order of the result: deletions of whole services first (frees VIPs a new service may reuse), then
// per desired service, in its order: add or edit the service, delete its stale destinations, edit
// changed ones, and add new ones in the desired order (core inserts at the list head, as the kernel
// does, so the order matters for rr/wrr sequences exactly as with ipvsadm -R).

import type { DesiredState } from "../config/desired.ts";
import { canonicalIp } from "../core/addr.ts";
import type { DestSpec } from "../core/dest.ts";
import { type ServiceKey, type ServiceOptions, serviceKeyId } from "../core/service.ts";
import { normalizeKey, type ServiceTable } from "../core/service-table.ts";
import type { ExecRequest } from "./api/protocol.ts";

export interface ReconcileOptions {
  /** Adapt a desired destination as the data plane would on add (e.g. the proxy plane's -g → masq). */
  adaptDest?: (key: ServiceKey, spec: DestSpec) => DestSpec;
}

function sameOptions(a: ServiceOptions, b: ServiceOptions): boolean {
  const fa = [...a.schedFlags].sort().join(",");
  const fb = [...b.schedFlags].sort().join(",");
  return (
    a.scheduler === b.scheduler &&
    fa === fb &&
    a.persistent === b.persistent &&
    (!a.persistent || a.timeout === b.timeout) &&
    a.netmask === b.netmask &&
    a.ops === b.ops &&
    a.pe === b.pe
  );
}

function sameDest(a: DestSpec, b: DestSpec): boolean {
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

function destId(addr: string, port: number): string {
  return `${canonicalIp(addr) ?? addr}|${port}`;
}

/** Operations that bring `table` to `desired`; throws CoreError on a malformed desired key. */
export function reconcile(desired: DesiredState, table: ServiceTable, opts: ReconcileOptions = {}): ExecRequest[] {
  const wanted = new Map<string, { key: ServiceKey; options: ServiceOptions; dests: DestSpec[] }>();
  for (const s of desired.services) {
    const key = normalizeKey(s.key, "add-service");
    const dests = s.dests.map((d) => (opts.adaptDest ? opts.adaptDest(key, d) : d));
    wanted.set(serviceKeyId(key), { key, options: s.options, dests });
  }
  const out: ExecRequest[] = [];
  for (const svc of table.services()) {
    if (!wanted.has(svc.id)) out.push({ op: "del-service", key: svc.key });
  }
  for (const [id, w] of wanted) {
    const live = table.services().find((s) => s.id === id);
    if (!live) {
      out.push({ op: "add-service", key: w.key, options: w.options });
      for (const d of w.dests) out.push({ op: "add-dest", key: w.key, dest: d });
      continue;
    }
    if (!sameOptions(live.options, w.options)) out.push({ op: "edit-service", key: w.key, options: w.options });
    const wantDests = new Map(w.dests.map((d) => [destId(d.addr, d.port), d]));
    for (const d of live.dests) {
      if (!wantDests.has(destId(d.addr, d.port))) out.push({ op: "del-dest", key: w.key, addr: d.addr, port: d.port });
    }
    const liveDests = new Map(live.dests.map((d) => [destId(d.addr, d.port), d]));
    for (const d of w.dests) {
      const have = liveDests.get(destId(d.addr, d.port));
      if (!have) out.push({ op: "add-dest", key: w.key, dest: d });
      else if (!sameDest(have.spec(), d)) out.push({ op: "edit-dest", key: w.key, dest: d });
    }
  }
  return out;
}
