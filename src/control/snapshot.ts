// Reads the Director's tables into the control API's Snapshot: plain data that crosses the socket
// as JSON. Services come in creation order and destinations in the kernel's list order (newest
// first); listings sort them as ipvsadm does (cli/tvsadm), unless --nosort.

import { CoreError } from "../core/errors.ts";
import type { ServiceKey, VirtualService } from "../core/service.ts";
import type { Counters } from "../core/stats/counters.ts";
import type { ConnView, CountersView, DestView, RatesView, ServiceView, Snapshot } from "./api/protocol.ts";
import type { Director } from "./executor.ts";

export interface SnapshotQuery {
  /** Include the connection entries (GET /v1/snapshot?conns=1). */
  conns?: boolean;
  /** Only this service: a ServiceKey or its serviceKeyId (?service=ID); ESRCH when missing. */
  service?: ServiceKey | string;
}

/** ipvsadm's "IP Virtual Server version 1.2.1": the IPVS version this build reproduces. */
export const IPVS_VERSION = "1.2.1";

const ZERO_RATES: RatesView = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

export function buildSnapshot(d: Director, query: SnapshotQuery = {}): Snapshot {
  const rates = (c: Counters): RatesView => (d.rates ? d.rates(c) : { ...ZERO_RATES });
  let services: VirtualService[];
  if (query.service !== undefined) {
    const q = query.service;
    const svc = typeof q === "string" ? d.services.services().find((s) => s.id === q) : d.services.get(q);
    if (!svc)
      throw new CoreError("ESRCH", "get-service", `No service ${typeof q === "string" ? q : JSON.stringify(q)}`);
    services = [svc];
  } else services = d.services.services();

  const snap: Snapshot = {
    version: IPVS_VERSION,
    connTableSize: d.connTabSize,
    services: services.map((s) => serviceView(s, rates)),
    stats: counters(d.services.stats),
    rates: rates(d.services.stats),
    timeouts: d.timeouts(),
    daemons: d.sync ? d.sync.running().map((x) => ({ ...x })) : [],
  };
  if (query.conns) snap.conns = connViews(d);
  return snap;
}

function serviceView(s: VirtualService, rates: (c: Counters) => RatesView): ServiceView {
  return {
    key: { ...s.key },
    options: { ...s.options, schedFlags: [...s.options.schedFlags] },
    dests: s.dests.map(
      (dest): DestView => ({
        spec: dest.spec(),
        activeConns: dest.activeConns,
        inactConns: dest.inactConns,
        persistConns: dest.persistConns,
        overloaded: dest.overloaded,
        stats: counters(dest.stats),
        rates: rates(dest.stats),
      }),
    ),
    stats: counters(s.stats),
    rates: rates(s.stats),
  };
}

function counters(c: Counters): CountersView {
  return { conns: c.conns, inPkts: c.inPkts, outPkts: c.outPkts, inBytes: c.inBytes, outBytes: c.outBytes };
}

function connViews(d: Director): ConnView[] {
  if (!d.conns) return [];
  const now = d.env.clock.now();
  const out: ConnView[] = [];
  for (const c of d.conns.entries()) {
    out.push({
      protocol: c.protocol,
      caddr: c.caddr,
      cport: c.cport,
      vaddr: c.vaddr,
      vport: c.vport,
      daddr: c.daddr,
      dport: c.dport,
      state: c.stateName,
      expiresInMs: Math.max(0, c.expiresAt - now),
      template: c.template,
      fwmark: c.fwmark,
      ...(c.peName ? { peName: c.peName, peData: c.peData ?? "" } : {}),
    });
  }
  return out;
}
