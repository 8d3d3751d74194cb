// A service table as plain data (a "table image"), the smallest list of changes that turns a live
// table into an image, and applying such a list. Two users: tvsd's reconcile (a rules file or
// keepalived.conf becomes the desired image) and the packet plane's worker threads, each of which
// owns a replica of the daemon's table (docs/architecture.md: no shared mutable state across threads) and is
// kept equal to it by applying the diff against the image the daemon sends after every change.
//
// Services and destinations present on both sides with equal settings are left alone, so their
// connections, counters and scheduler state survive; ones that differ are edited in place; only
// what the image no longer names is deleted. Order of the result: deletions of whole services
// first (frees VIPs a new service may reuse), then per wanted service, in its order: add or edit
// the service, then its destinations through core's one destination diff (dest-diff.ts). Core
// inserts destinations at the list head (as the kernel does), so an image lists destinations in
// insertion order — the reverse of a service's list — and imageOf() does that.

import type { DestSpec } from "./dest.ts";
import { diffDests } from "./dest-diff.ts";
import type { TableRequest } from "./request.ts";
import { type ServiceKey, type ServiceOptions, serviceKeyId } from "./service.ts";
import { normalizeKey, type ServiceTable } from "./service-table.ts";

/** One service of an image: destinations in insertion order (oldest first). */
export interface ServiceImage {
  key: ServiceKey;
  options: ServiceOptions;
  dests: DestSpec[];
}

/** The table as an image that rebuilds it exactly (same services, options, destination order). */
export function imageOf(table: ServiceTable): ServiceImage[] {
  return table.services().map((s) => ({
    key: s.key,
    options: { ...s.options, schedFlags: [...s.options.schedFlags] },
    dests: s.dests.map((d) => d.spec()).reverse(),
  }));
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

/** Changes that bring `table` to `image`; throws CoreError on a malformed key in the image. */
export function diffTable(image: readonly ServiceImage[], table: ServiceTable): TableRequest[] {
  const wanted = new Map<string, ServiceImage>();
  for (const s of image) {
    const key = normalizeKey(s.key, "add-service");
    wanted.set(serviceKeyId(key), { key, options: s.options, dests: s.dests });
  }
  const out: TableRequest[] = [];
  const live = new Map(table.services().map((s) => [s.id, s]));
  for (const [id, svc] of live) if (!wanted.has(id)) out.push({ op: "del-service", key: svc.key });
  for (const [id, w] of wanted) {
    const have = live.get(id);
    if (!have) {
      out.push({ op: "add-service", key: w.key, options: w.options });
      for (const d of w.dests) out.push({ op: "add-dest", key: w.key, dest: d });
      continue;
    }
    if (!sameOptions(have.options, w.options)) out.push({ op: "edit-service", key: w.key, options: w.options });
    out.push(
      ...diffDests(
        w.key,
        have.dests.map((d) => d.spec()),
        w.dests,
      ),
    );
  }
  return out;
}

/** Apply changes in order through the table's own methods; throws the first CoreError met. */
export function applyChanges(table: ServiceTable, changes: readonly TableRequest[]): void {
  for (const c of changes) {
    switch (c.op) {
      case "add-service":
        table.addService(c.key, c.options);
        break;
      case "edit-service":
        table.editService(c.key, c.options);
        break;
      case "del-service":
        table.deleteService(c.key);
        break;
      case "add-dest":
        table.addDest(c.key, c.dest);
        break;
      case "edit-dest":
        table.editDest(c.key, c.dest);
        break;
      case "del-dest":
        table.deleteDest(c.key, c.addr, c.port);
        break;
    }
  }
}
