// Connection-sync benchmark. A new-connection flood of N TCP connections (default 200,000) goes
// through a master director's connection table (schedule, SYN, ACK, one data segment: the third
// incoming packet, where the kernel's sync_threshold first sends an entry), twice in one run:
//   1. without a sync master (the reference: the same forwarding work, nothing sent);
//   2. with one: core's SyncPolicy after every incoming packet, the records into 1472-byte v1
//      messages, each message sent as a real UDP datagram over loopback.
// A backup then decodes every one of those messages and ingests them into its own table. Printed: the messages and entries per second the master emits, bytes
// on the wire per entry, and the CPU time sync costs on each side (process CPU, user + system,
// per entry and as a share of the master's forwarding work).
//
//   node --import tsx bench/sync.ts [N]
//
// Traffic: UDP to 127.0.0.1 only, bounded by N (at most 1,000,000) and by a 5 s receive deadline.

import { createSocket } from "node:dgram";
import { performance } from "node:perf_hooks";
import { syncedConnOf } from "../src/core/conn/conn-sync.ts";
import { ConnTable } from "../src/core/conn/conn-table.ts";
import { SyncPolicy } from "../src/core/conn/sync-policy.ts";
import { TCP_ACK, TCP_SYN } from "../src/core/conn/tcp-states.ts";
import { destSpec } from "../src/core/dest.ts";
import { createDefaultRegistry } from "../src/core/sched/all.ts";
import { serviceOptions } from "../src/core/service.ts";
import { ServiceTable } from "../src/core/service-table.ts";
import { SyncBackup } from "../src/sync/backup.ts";
import { SyncMaster } from "../src/sync/master.ts";
import { tableIngest } from "../src/sync/table-link.ts";

const N = Math.min(1_000_000, Math.max(1000, Number(process.argv[2] ?? 200_000)));
const VIP = "10.0.0.1";
/** TCP PSH (a data segment; the state table reads it as an ACK). */
const PSH = 0x08;

function director(): { services: ServiceTable; table: ConnTable } {
  const services = new ServiceTable(createDefaultRegistry(), { clock: { now: () => 0 }, random: () => 0 });
  const key = { kind: "vip" as const, protocol: "tcp" as const, addr: VIP, port: 80 };
  services.addService(key, serviceOptions(4, { scheduler: "rr" }));
  for (let i = 1; i <= 4; i++) services.addDest(key, destSpec(`10.0.1.${i}`, 80, { fwd: "masq" }));
  return { services, table: new ConnTable({ services, limit: 2 * N }) };
}

function cpuMs(start: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(start);
  return (u.user + u.system) / 1000;
}

/** The flood: returns CPU ms and wall ms. `after` runs after each forwarded incoming packet. */
function flood(table: ConnTable, svc: ReturnType<ServiceTable["services"]>[number], after?: (c: never) => void) {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const saddr = `192.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const c = table.schedule(
      svc,
      { family: 4, protocol: "tcp", saddr, sport: 1024 + (i % 60000), daddr: VIP, dport: 80 },
      0,
    );
    if ("error" in c) throw new Error(`schedule failed: ${c.error}`);
    for (const flags of [TCP_SYN, TCP_ACK, TCP_ACK | PSH]) {
      table.tcpPacket(c, "in", flags, 0);
      after?.(c as never);
    }
  }
  return { cpu: cpuMs(c0), wall: performance.now() - t0 };
}

async function main(): Promise<void> {
  // 1. Reference: the flood without sync.
  const ref = director();
  const refSvc = ref.services.services()[0] as ReturnType<ServiceTable["services"]>[number];
  const base = flood(ref.table, refSvc);

  // The backup's socket, and its table.
  const bk = director();
  const ingest = tableIngest(bk.table);
  const backup = new SyncBackup({ syncId: 0, ingest });
  const rx = createSocket("udp4");
  await new Promise<void>((r) => rx.bind(0, "127.0.0.1", () => r()));
  rx.setRecvBufferSize(64 << 20);
  const port = rx.address().port;
  let received = 0;
  rx.on("message", () => {
    received++;
  });
  const wire: Uint8Array[] = [];

  // 2. The same flood with a master: policy per packet, messages sent on a real socket.
  const tx = createSocket("udp4");
  await new Promise<void>((r) => tx.bind(0, "127.0.0.1", () => r()));
  tx.setSendBufferSize(64 << 20);
  const m = director();
  const mSvc = m.services.services()[0] as ReturnType<ServiceTable["services"]>[number];
  const policy = new SyncPolicy();
  let sent = 0;
  const master = new SyncMaster({
    syncId: 0,
    maxLen: 1472,
    send: (msg) => {
      sent++;
      wire.push(msg);
      tx.send(msg, port, "127.0.0.1");
    },
  });
  const pick = (c: Parameters<Parameters<SyncPolicy["inPacket"]>[2]>[0]) => master.push(syncedConnOf(c), 0);
  const withSync = flood(m.table, mSvc, (c) => policy.inPacket(c, 0, pick));
  master.flush();
  const s = master.stats;

  const deadline = performance.now() + 5_000;
  while (received < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  tx.close();
  rx.close();
  // The backup's side on every message the master produced (a socket in the same busy process
  // drops what arrives while the flood runs, which would say nothing about the backup's cost).
  const cb = process.cpuUsage();
  for (const msg of wire) backup.receive(msg, 0);
  const backupCpu = cpuMs(cb);
  const b = backup.stats;

  const perSec = (n: number, ms: number) => Math.round((n * 1000) / ms);
  const row = (k: string, v: string) => console.log(`${k.padEnd(52)} ${v}`);
  console.log(`Connection sync under a new-connection flood: ${N} TCP connections, 3 incoming packets each\n`);
  row("flood without sync (reference): connections/s", `${perSec(N, base.wall)} (CPU ${base.cpu.toFixed(0)} ms)`);
  row("flood with a sync master: connections/s", `${perSec(N, withSync.wall)} (CPU ${withSync.cpu.toFixed(0)} ms)`);
  row("  ratio with / without", `${(withSync.wall / base.wall).toFixed(2)}x the time`);
  row("master: messages sent", `${s.messages} (${perSec(s.messages, withSync.wall)}/s)`);
  row("master: entries sent", `${s.records} (${perSec(s.records, withSync.wall)}/s)`);
  row(
    "master: entries per message, bytes per entry",
    `${(s.records / s.messages).toFixed(1)}, ${(s.bytes / s.records).toFixed(1)}`,
  );
  row(
    "master: CPU of sync per entry (policy, encode, send)",
    `${(((withSync.cpu - base.cpu) * 1000) / s.records).toFixed(2)} µs`,
  );
  row(
    "loopback socket: datagrams received / sent",
    `${received} / ${sent}${received < sent ? " (a receiver in the same busy process drops some)" : ""}`,
  );
  row("backup: entries created", `${b.created} (of ${b.records} decoded, ${b.refused} refused)`);
  row("backup: CPU per entry (decode, ingest)", `${((backupCpu * 1000) / Math.max(1, b.records)).toFixed(2)} µs`);
  row("backup: entries/s one core could ingest", `${perSec(b.records, backupCpu)}`);
  row("backup table size", `${bk.table.size}`);
  console.log(
    "\nThe kernel's own figures are not measured here (no ip_vs on this host); the reference is the\nsame forwarding work without sync, in the same process.",
  );
}

await main();
