// One packet worker thread: its own AF_PACKET socket joined to the plane's fanout group, its own
// replica of the daemon's service table, its own connection table, pipeline and engine on this
// thread's event loop. The fanout steering (steering.ts) sends both directions of every flow here
// when this worker owns it, so nothing about a flow is ever shared with another thread.
//
// The replica follows the images the main thread sends (core's diffTable/applyChanges keep
// unchanged services, destinations, their connections and counters). Counters and connection
// entries go back to the main thread only when it asks (collect), which is what `ipvsadm -L
// --stats/--rate/-c` and the rate estimator read. Connections expire on this thread's clock.

import { randomInt } from "node:crypto";
import { performance } from "node:perf_hooks";
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import { type SyncedConn, syncedConnOf } from "../../../core/conn/conn-sync.ts";
import { ConnTable } from "../../../core/conn/conn-table.ts";
import { SyncPolicy } from "../../../core/conn/sync-policy.ts";
import type { SysctlName } from "../../../core/conn/sysctl.ts";
import { createDefaultRegistry } from "../../../core/sched/all.ts";
import { ServiceTable } from "../../../core/service-table.ts";
import { applyChanges, diffTable, type ServiceImage } from "../../../core/table-image.ts";
import { heapUsedFraction } from "../../../platform/heap-use.ts";
import { loadNative } from "../../../platform/native-addon.ts";
import { PacketEngine } from "../engine.ts";
import { kernelNextHop } from "../kernel-routes.ts";
import { NativePacketIo } from "../native-io.ts";
import { ownedAddresses } from "../owned-addresses.ts";
import { Pipeline } from "../pipeline.ts";
import { steeringPlanOf } from "../steering-plan.ts";
import { DatagramHome } from "./datagram-home.ts";
import { ReplicaSerials } from "./incarnations.ts";
import type { FromWorker, ToWorker, WorkerReport, WorkerSetup } from "./messages.ts";

const EXPIRE_INTERVAL_MS = 1000;
/** Records a sync master selected go to the main thread at most this often (the kernel's buffer waits up to 2 s anyway). */
const SYNC_BATCH_MS = 100;

if (!parentPort) throw new Error("worker-thread.ts runs only as a worker thread");
const port: MessagePort = parentPort;
const setup = (workerData as { setup: WorkerSetup }).setup;
const post = (m: FromWorker) => port.postMessage(m);
const now = () => performance.now();

/**
 * A destination's connection thresholds hold for the whole director; each worker sees only its own
 * connections, so it enforces its share (rounded up): the total stays within the operator's cap as
 * long as the steering spreads clients evenly, which is the closest a shared-nothing design gets.
 */
function shareThresholds(image: ServiceImage[], workers: number): ServiceImage[] {
  if (workers <= 1) return image;
  const share = (n: number) => (n === 0 ? 0 : Math.ceil(n / workers));
  return image.map((s) => ({
    ...s,
    dests: s.dests.map((d) => ({ ...d, uThreshold: share(d.uThreshold), lThreshold: share(d.lThreshold) })),
  }));
}

function run(): void {
  const services = new ServiceTable(createDefaultRegistry(), {
    clock: { now },
    random: () => randomInt(0, 0x100000000) >>> 0,
  });
  const conns = new ConnTable({
    services,
    limit: setup.connLimit,
    options: setup.connOptions,
    sysctls: setup.sysctls,
  });
  const serials = new ReplicaSerials();
  let io: NativePacketIo;
  try {
    io = new NativePacketIo({
      ifname: setup.ifname,
      vnetHdr: setup.vnetHdr,
      fanoutGroup: setup.fanoutGroup,
      fanoutMode: setup.fanoutMode,
    });
  } catch (e) {
    post({ t: "failed", message: (e as Error).message });
    return;
  }
  const pipeline = new Pipeline({
    services,
    conns,
    mac: io.mac,
    mtu: io.mtu,
    ...(setup.addr4 ? { addr4: setup.addr4 } : {}),
    ...(setup.addr6 ? { addr6: setup.addr6 } : {}),
    vips: setup.vips,
    localAddrs: setup.localAddrs,
    released: setup.released,
    tunClampMss: setup.tunClampMss,
    worker: { index: setup.index, of: setup.workers },
    clientNextHop: kernelNextHop(setup.ifname),
  });
  pipeline.neighbours.onLearn = (addr, mac) => post({ t: "learned", addr, mac: Uint8Array.from(mac) });
  const engine = new PacketEngine(io, pipeline, now, setup.batch);
  /** The pipeline's counters with the kernel's drops at this worker's socket folded in. */
  const countersWithSocketDrops = () => {
    pipeline.counters.rxSocketDrops += io.socketDrops?.() ?? 0;
    return pipeline.counters.snapshot();
  };
  // IPv6 fragments are steered by addresses alone; a datagram whose flow (address and port)
  // belongs to another worker goes there (ipv6-defrag.ts). The plan is the main thread's
  // (steering-plan.ts), built from this replica when the table or the rules change (datagram-home.ts).
  const datagramHome = new DatagramHome(
    () =>
      steeringPlanOf(
        services,
        ownedAddresses(services, setup.vips, setup.localAddrs, pipeline.marks.rules),
        pipeline.marks.rules,
      ),
    setup.workers,
  );
  if (setup.workers > 1 && setup.fanoutMode === "cbpf") {
    pipeline.defrag6.handoff = (datagram) => {
      const home = datagramHome.of(datagram.frame);
      if (home === setup.index) return false;
      post({ t: "handoff", to: home, datagram });
      return true;
    };
  }
  const expiry = setInterval(() => {
    try {
      conns.heapUsed = heapUsedFraction();
      conns.expire(now());
      pipeline.defrag6.expire(now());
    } catch (e) {
      post({ t: "log", level: "error", msg: "Connection expiry failed", fields: { err: (e as Error).message } });
    }
  }, EXPIRE_INTERVAL_MS);

  // Connection sync: as master, the policy picks entries per client packet and they go to the main
  // thread in batches; as backup, records for this worker's flows arrive from the main thread.
  let policy: SyncPolicy | undefined;
  let outbox: SyncedConn[] = [];
  let syncTimer: NodeJS.Timeout | undefined;
  const synced = { created: 0, updated: 0, refused: 0 };
  const flushSynced = () => {
    if (outbox.length === 0) return;
    post({ t: "synced", recs: outbox });
    outbox = [];
  };

  function report(seq: number, withConns: boolean): void {
    const r: WorkerReport = {
      index: setup.index,
      global: services.stats.snapshot(),
      services: services.services().map((s) => ({
        id: s.id,
        stats: s.stats.snapshot(),
        dests: s.dests.map((d) => ({
          addr: d.addr,
          port: d.port,
          stats: d.stats.snapshot(),
          active: d.activeConns,
          inactive: d.inactConns,
          persistent: d.persistConns,
        })),
      })),
      connections: conns.size,
      dropped: conns.dropped,
      plane: countersWithSocketDrops(),
      synced: { ...synced },
    };
    if (withConns) {
      const t = now();
      r.conns = [];
      for (const c of conns.entries())
        r.conns.push({
          protocol: c.protocol,
          caddr: c.caddr,
          cport: c.cport,
          vaddr: c.vaddr,
          vport: c.vport,
          daddr: c.daddr,
          dport: c.dport,
          template: c.template,
          fwmark: c.fwmark,
          stateName: c.stateName,
          expiresInMs: Math.max(0, c.expiresAt - t),
          ...(c.peName !== "" ? { peName: c.peName, peData: c.peData } : {}),
        });
    }
    post({ t: "report", seq, report: r });
  }

  port.on("message", (m: ToWorker) => {
    switch (m.t) {
      case "table": {
        let error: string | undefined;
        try {
          const image = shareThresholds(m.image, setup.workers);
          serials.forgetReplaced(services, image, m.serials);
          applyChanges(services, diffTable(image, services));
          serials.record(image, m.serials);
          conns.setTimeouts(m.timeouts);
          // A mode the table moved itself (2: automatic and on) is left as the table has it.
          for (const [k, v] of Object.entries(m.sysctls)) {
            const mine = conns.sysctl(k as SysctlName);
            if (mine !== v && !((v === 1 || v === 2) && (mine === 1 || mine === 2))) conns.setSysctl(k, v);
          }
        } catch (e) {
          // The main table already accepted this state, so this is a bug: the main thread is
          // told and stops the daemon (PoolPacketPlane).
          error = (e as Error).message;
        }
        if (JSON.stringify(m.fwmarkRules) !== JSON.stringify(pipeline.marks.rules))
          pipeline.marks.setRules(m.fwmarkRules);
        pipeline.refreshVips();
        datagramHome.invalidate();
        post(error === undefined ? { t: "ack", seq: m.seq } : { t: "ack", seq: m.seq, error });
        break;
      }
      case "steer": {
        let error: string | undefined;
        try {
          loadNative().setFanoutProgram(io.fd, m.program);
        } catch (e) {
          error = (e as Error).message;
        }
        post(error === undefined ? { t: "ack", seq: m.seq } : { t: "ack", seq: m.seq, error });
        break;
      }
      case "refresh":
        if (m.announce) engine.announce();
        if (m.resolve.length > 0) engine.resolve(m.resolve);
        break;
      case "own":
        engine.setOwned(m.addr, m.owned, m.announce);
        post({ t: "ack", seq: m.seq });
        break;
      case "neighbour":
        engine.learnFromPeer(m.addr, m.mac);
        break;
      case "zero":
        try {
          services.zero(m.key);
        } catch {
          // a service the main table zeroed and this replica no longer has: nothing to zero
        }
        break;
      case "collect":
        report(m.seq, m.conns);
        break;
      case "sync":
        if (m.settings === null) {
          flushSynced();
          policy = undefined;
          pipeline.onInbound = undefined;
          if (syncTimer) clearInterval(syncTimer);
          syncTimer = undefined;
        } else {
          const p = new SyncPolicy(m.settings);
          policy = p;
          const pick = (c: Parameters<Parameters<SyncPolicy["inPacket"]>[2]>[0]) => outbox.push(syncedConnOf(c));
          pipeline.onInbound = (c, t) => p.inPacket(c, t, pick);
          syncTimer ??= setInterval(flushSynced, SYNC_BATCH_MS);
        }
        break;
      case "ingest": {
        const t = now();
        for (const rec of m.recs) {
          try {
            const r = conns.ingestSynced(rec, t);
            if (r.outcome === "refused") synced.refused++;
            else {
              synced[r.outcome]++;
              policy?.ingested(r.conn);
            }
          } catch (e) {
            post({ t: "log", level: "warn", msg: "Sync record refused", fields: { err: (e as Error).message } });
          }
        }
        break;
      }
      case "dump": {
        const recs: SyncedConn[] = [];
        for (const c of conns.entries()) if (c.dest !== undefined || c.template) recs.push(syncedConnOf(c));
        post({ t: "dumped", seq: m.seq, recs });
        break;
      }
      case "datagram":
        engine.processReassembled(m.datagram);
        break;
      case "stop":
        if (syncTimer) clearInterval(syncTimer);
        clearInterval(expiry);
        engine.stop();
        io.close();
        port.close();
        break;
    }
  });
  engine.start();
  post({ t: "ready", mac: Uint8Array.from(io.mac), mtu: io.mtu, vnetHdr: io.vnetHdr });
}

run();
