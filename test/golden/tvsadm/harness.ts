// Test harness for tvsadm's golden tests: an in-process Director (with a scheduler registry, fake
// connection entries, counters, rates and a recording sync control), a ControlClient that calls
// the Director through a JSON round trip exactly as tvsd's HTTP server would, and a fixed name
// resolver so listings without -n are deterministic.

import { parseServices, type TvsadmResolver } from "../../../src/cli/tvsadm/names.ts";
import { ApiError, type ControlClient, type SnapshotQuery } from "../../../src/control/api/client.ts";
import type { ExecRequest, RatesView, Snapshot, SyncDaemonSpec, Timeouts } from "../../../src/control/api/protocol.ts";
import {
  type ConnLike,
  type ConnTableLike,
  Director,
  errorBody,
  httpStatusFor,
  type SyncControl,
} from "../../../src/control/executor.ts";
import { ManualClock } from "../../../src/core/clock.ts";
import { CoreError } from "../../../src/core/errors.ts";
import { createDefaultRegistry } from "../../../src/core/sched/all.ts";
import type { SchedulerRegistry } from "../../../src/core/sched/registry.ts";
import type { Protocol } from "../../../src/core/sched/types.ts";
import type { Counters } from "../../../src/core/stats/counters.ts";

/** The daemon's own scheduler registry (every kernel scheduler). */
export function testRegistry(): SchedulerRegistry {
  return createDefaultRegistry();
}

export class FakeConns implements ConnTableLike {
  readonly list: ConnLike[] = [];
  #t: Timeouts = { tcp: 900, tcpfin: 120, udp: 300 };
  entries(): Iterable<ConnLike> {
    return this.list;
  }
  timeouts(): Timeouts {
    return { ...this.#t };
  }
  setTimeouts(t: Timeouts): void {
    this.#t = { tcp: t.tcp || this.#t.tcp, tcpfin: t.tcpfin || this.#t.tcpfin, udp: t.udp || this.#t.udp };
  }
}

export class FakeSync implements SyncControl {
  readonly daemons: SyncDaemonSpec[] = [];
  start(spec: SyncDaemonSpec): void {
    if (this.daemons.some((d) => d.state === spec.state))
      throw new CoreError("EEXIST", "start-daemon", `A ${spec.state} sync daemon is running`);
    this.daemons.push({
      ...spec,
      syncMaxLen: spec.syncMaxLen || 1472,
      mcastGroup: spec.mcastGroup || "224.0.0.81",
      mcastPort: spec.mcastPort || 8848,
      mcastTtl: spec.mcastTtl || 1,
    });
  }
  stop(state: "master" | "backup"): void {
    const i = this.daemons.findIndex((d) => d.state === state);
    if (i === -1) throw new CoreError("ESRCH", "stop-daemon", `No ${state} sync daemon is running`);
    this.daemons.splice(i, 1);
  }
  running(): SyncDaemonSpec[] {
    return this.daemons.map((d) => ({ ...d }));
  }
}

export interface TestBed {
  director: Director;
  clock: ManualClock;
  conns: FakeConns;
  rates: Map<Counters, RatesView>;
}

export async function testBed(): Promise<TestBed> {
  const clock = new ManualClock(1_000_000);
  const conns = new FakeConns();
  const rates = new Map<Counters, RatesView>();
  const director = new Director({
    registry: testRegistry(),
    env: { clock, random: () => 0 },
    conns,
    rates: (c) => rates.get(c) ?? { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
  });
  return { director, clock, conns, rates };
}

const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** The control API without the socket: JSON in, JSON out, errors as the server would send them. */
export class DirectorClient implements ControlClient {
  readonly #d: Director;
  readonly requests: ExecRequest[] = [];
  constructor(d: Director) {
    this.#d = d;
  }
  async exec(req: ExecRequest): Promise<void> {
    const r = clone(req);
    this.requests.push(r);
    try {
      this.#d.exec(r);
    } catch (e) {
      const body = errorBody(e, "flush");
      throw new ApiError(body.error, httpStatusFor(body.error.code));
    }
  }
  async snapshot(query: SnapshotQuery = {}): Promise<Snapshot> {
    try {
      return clone(this.#d.snapshot(clone(query)));
    } catch (e) {
      const body = errorBody(e, "get-service");
      throw new ApiError(body.error, httpStatusFor(body.error.code));
    }
  }
}

const SERVICES = `
ftp 21/tcp
ssh 22/tcp
domain 53/tcp
domain 53/udp
http 80/tcp www
https 443/tcp
https 443/udp
ntp 123/udp
`;

const HOSTS: Record<string, string> = {
  "10.0.0.100": "www.example.com",
  "192.168.10.1": "rs1.example.com",
  "192.168.10.2": "rs2.example.com",
  "2001:db8::100": "www6.example.com",
  "172.16.0.1": "a-host-name-long-enough-to-be-cut.example.com",
};

/** Fixed names: the hosts above, a few /etc/services entries. */
export function testResolver(servicesText = SERVICES): TvsadmResolver {
  const db = parseServices(servicesText);
  return {
    hostToIpv4: async (name) => Object.entries(HOSTS).find(([a, n]) => n === name && !a.includes(":"))?.[0],
    addrToHost: async (addr) => HOSTS[addr],
    serviceToPort: (name, p: Protocol) => db.byName.get(`${name}/${p}`),
    portToService: (port, p: Protocol) => db.byPort.get(`${port}/${p}`),
  };
}
