// The daemon's view of several packet workers: their reports summed into the main thread's own
// service table, so `ipvsadm -L -n --stats/--rate` and the rate estimator read one set of counters
// as with a single thread. Each worker counts only the flows it owns; a service or destination's
// total is the sum over workers, matched by service id and destination address and port. The main
// table's destination connection counts (ActiveConn/InActConn/persistent) are set the same way;
// the main thread never schedules in this mode, so they are a read-out and nothing else.

import type { ConnEntry } from "../../../core/conn/conn-entry.ts";
import type { ServiceTable } from "../../../core/service-table.ts";
import type { CounterSnapshot, Counters } from "../../../core/stats/counters.ts";
import { PlaneCounters } from "../counters.ts";
import type { ConnRecord, WorkerReport } from "./messages.ts";

function addInto(into: CounterSnapshot, c: CounterSnapshot): void {
  into.conns += c.conns;
  into.inPkts += c.inPkts;
  into.outPkts += c.outPkts;
  into.inBytes += c.inBytes;
  into.outBytes += c.outBytes;
}

function setCounters(target: Counters, c: CounterSnapshot): void {
  target.conns = c.conns;
  target.inPkts = c.inPkts;
  target.outPkts = c.outPkts;
  target.inBytes = c.inBytes;
  target.outBytes = c.outBytes;
}

const zero = (): CounterSnapshot => ({ conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 });

export interface Aggregate {
  connections: number;
  dropped: number;
  plane: PlaneCounters;
  /** Each worker's share: frames received and connection entries held. */
  perWorker: { index: number; rx: number; connections: number }[];
}

/** Write the sum of the reports into `table` (global, services, destinations); returns the totals. */
export function mergeReports(table: ServiceTable, reports: readonly WorkerReport[]): Aggregate {
  const global = zero();
  const svcSums = new Map<string, { stats: CounterSnapshot; dests: Map<string, DestSum> }>();
  const plane = new PlaneCounters();
  let connections = 0;
  let dropped = 0;
  for (const r of reports) {
    addInto(global, r.global);
    connections += r.connections;
    dropped += r.dropped;
    plane.add(r.plane);
    for (const s of r.services) {
      let sum = svcSums.get(s.id);
      if (!sum) svcSums.set(s.id, (sum = { stats: zero(), dests: new Map() }));
      addInto(sum.stats, s.stats);
      for (const d of s.dests) {
        const id = `${d.addr}|${d.port}`;
        let ds = sum.dests.get(id);
        if (!ds) sum.dests.set(id, (ds = { stats: zero(), active: 0, inactive: 0, persistent: 0 }));
        addInto(ds.stats, d.stats);
        ds.active += d.active;
        ds.inactive += d.inactive;
        ds.persistent += d.persistent;
      }
    }
  }
  setCounters(table.stats, global);
  for (const svc of table.services()) {
    const sum = svcSums.get(svc.id);
    setCounters(svc.stats, sum?.stats ?? zero());
    for (const d of svc.dests) {
      const ds = sum?.dests.get(`${d.addr}|${d.port}`);
      setCounters(d.stats, ds?.stats ?? zero());
      d.activeConns = ds?.active ?? 0;
      d.inactConns = ds?.inactive ?? 0;
      d.persistConns = ds?.persistent ?? 0;
    }
  }
  const perWorker = reports.map((r) => ({ index: r.index, rx: r.plane.rx, connections: r.connections }));
  return { connections, dropped, plane, perWorker };
}

interface DestSum {
  stats: CounterSnapshot;
  active: number;
  inactive: number;
  persistent: number;
}

/** A connection entry of some worker, with its deadline on the main thread's clock. */
export type MergedConn = ConnEntry;

/** Every worker's connection entries, deadlines moved onto the clock reading `now`. */
export function mergeConns(reports: readonly WorkerReport[], now: number): MergedConn[] {
  const out: MergedConn[] = [];
  for (const r of reports) for (const c of r.conns ?? []) out.push(toMerged(c, now));
  return out;
}

function toMerged(c: ConnRecord, now: number): MergedConn {
  const { expiresInMs, ...rest } = c;
  return { ...rest, expiresAt: now + expiresInMs };
}
