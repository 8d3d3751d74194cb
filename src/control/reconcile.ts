// Reconciling: the smallest list of operations that turns the live service table into a desired
// state (from an ipvsadm rules file, keepalived.conf or ldirectord.cf). The diff itself is core's
// (src/core/table-image.ts: unchanged services and destinations are left alone so their
// connections, counters and scheduler state survive a reload); this adds the data plane's
// adaptation of each destination and returns control API requests.

import type { DesiredState } from "../config/desired.ts";
import type { DestSpec } from "../core/dest.ts";
import type { ServiceKey } from "../core/service.ts";
import { normalizeKey, type ServiceTable } from "../core/service-table.ts";
import { diffTable } from "../core/table-image.ts";
import type { ExecRequest } from "./api/protocol.ts";

export interface ReconcileOptions {
  /** Adapt a desired destination as the data plane would on add (e.g. the proxy plane's -g → masq). */
  adaptDest?: (key: ServiceKey, spec: DestSpec) => DestSpec;
}

/** Operations that bring `table` to `desired`; throws CoreError on a malformed desired key. */
export function reconcile(desired: DesiredState, table: ServiceTable, opts: ReconcileOptions = {}): ExecRequest[] {
  const image = desired.services.map((s) => {
    const key = normalizeKey(s.key, "add-service");
    const dests = s.dests.map((d) => (opts.adaptDest ? opts.adaptDest(key, d) : d));
    return { key, options: s.options, dests };
  });
  return diffTable(image, table);
}
