// Literal ObservedState values for observe/'s unit tests and the metrics bench: services and real
// servers with counters, health checks, a VRRP instance and a sync daemon, built from small specs.

import type { CheckView, DestView, ServiceView, Snapshot, StatusView } from "../control/api/protocol.ts";
import type { ObservedState, ObserveSource, RuntimeView, SyncView, VrrpInstanceView } from "./source.ts";

const counters = (n: number) => ({ conns: n, inPkts: n * 10, outPkts: n * 9, inBytes: n * 1000, outBytes: n * 9000 });
const zeroRates = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

export function destView(addr: string, port: number, over: Partial<DestView> & { conns?: number } = {}): DestView {
  const { conns = 0, ...rest } = over;
  return {
    spec: {
      addr,
      port,
      fwd: "masq",
      weight: 1,
      uThreshold: 0,
      lThreshold: 0,
      tun: { type: "ipip", port: 0, nocsum: false, csum: false, remcsum: false },
    },
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    overloaded: false,
    stats: counters(conns),
    rates: { ...zeroRates },
    ...rest,
  };
}

export function serviceView(key: ServiceView["key"], dests: DestView[]): ServiceView {
  const sum = dests.reduce((a, d) => a + d.stats.conns, 0);
  return {
    key,
    options: {
      scheduler: "wlc",
      schedFlags: [],
      persistent: false,
      timeout: 300,
      netmask: 32,
      ops: false,
      pe: "",
    },
    dests,
    stats: counters(sum),
    rates: { ...zeroRates },
  };
}

export function snapshotOf(services: ServiceView[]): Snapshot {
  const sum = services.reduce((a, s) => a + s.stats.conns, 0);
  return {
    version: "1.2.1",
    connTableSize: 4096,
    services,
    stats: counters(sum),
    rates: { ...zeroRates },
    timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
    daemons: [],
  };
}

export function stateOf(
  snapshot: Snapshot,
  more: { checks?: CheckView[]; vrrp?: VrrpInstanceView[]; sync?: SyncView[]; runtime?: Partial<RuntimeView> } = {},
): ObservedState {
  const status: StatusView = { dataplane: "proxy", pid: 1, uptimeMs: 5000, checks: more.checks ?? [], notes: [] };
  return {
    snapshot,
    status,
    runtime: { connEntries: 3, connLimit: 1000, connRefused: 0, openFlows: 2, workers: 1, ...more.runtime },
    vrrp: more.vrrp ?? [],
    sync: more.sync ?? [],
  };
}

/** A source that returns whatever `state` holds at the time of the read. */
export function mutableSource(initial: ObservedState): ObserveSource & { state: ObservedState; reads: number } {
  const s = {
    state: initial,
    reads: 0,
    async read() {
      s.reads++;
      return s.state;
    },
  };
  return s;
}

/** `services` services of `dests` real servers each (the bench's big table). */
export function bigSnapshot(services: number, dests: number): Snapshot {
  const out: ServiceView[] = [];
  for (let i = 0; i < services; i++) {
    const vip = `10.${(i >> 8) & 255}.${i & 255}.1`;
    const ds: DestView[] = [];
    for (let j = 0; j < dests; j++)
      ds.push(destView(`172.16.${i & 255}.${j + 2}`, 8080, { conns: i * dests + j, activeConns: j, inactConns: 1 }));
    out.push(serviceView({ kind: "vip", protocol: "tcp", addr: vip, port: 80 }, ds));
  }
  return snapshotOf(out);
}
