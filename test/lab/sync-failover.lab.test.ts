// Connection sync between two tvsd directors on the packet plane, in network namespaces on one
// bridge: director A runs a master sync daemon, director B a backup (both `tvsadm
// --start-daemon`, multicast 224.0.0.81:8848 on eth0). A client holds 12 connections open through
// a DR service (real server rs1 owns the VIP on lo) and 12 through a NAT service (rs2:8080, its
// route to the client through the active director). Then:
//   - B's `tvsadm -L -n -c` lists every connection A lists (protocol, state, addresses);
//   - A is killed (SIGKILL, its link taken down) and B takes over the way VRRP would make it: the
//     client's neighbour entry for the VIPs moves to B's MAC (B's gratuitous ARP) and rs2's route
//     to the client moves to B; every held connection then still answers, from the same real
//     server, with no reset;
//   - A comes back as backup and asks B for the table (bulk resync, beyond the kernel): its
//     listing then holds the same connections.
// Needs root and the built addon; skips with the reason otherwise.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ipIn, isRoot, run, runIn, sleep, spawnIn } from "../../src/lab/exec.ts";
import { HOLDING_CLIENT, LINE_SERVER, lines } from "../../src/lab/held-connections.ts";
import { Lab } from "../../src/lab/netns.ts";
import { REPO_ROOT } from "../../src/lab/topology.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, raw sockets)";
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

const TVSD = join(REPO_ROOT, "bin", "tvsd.js");
const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");
const TVS = join(REPO_ROOT, "bin", "tvs.js");

const CLIENT = "10.88.0.100";
const DIR_A = "10.88.0.2";
const DIR_B = "10.88.0.3";
const RS1 = "10.88.0.21";
const RS2 = "10.88.0.22";
const VIP_DR = "10.88.0.10";
const VIP_NAT = "10.88.0.11";
const HELD = 12;

/** -L -n -c without the expire column, sorted. */
function entries(listing: string): string[] {
  return listing
    .split("\n")
    .slice(2)
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return [f[0], f[2], f[3], f[4], f[5]].join(" ");
    })
    .sort();
}

async function macOf(ns: string): Promise<string> {
  const r = await ipIn(ns, "-j", "link", "show", "eth0");
  return (JSON.parse(r.stdout) as { address: string }[])[0]?.address as string;
}

for (const workers of [1, 2])
  test(
    `a backup tvsd keeps the master's connections: listed, carried after failover, resynced back (${workers} packet worker${workers > 1 ? "s" : ""})`,
    { skip: skip ?? false, timeout: 180_000 },
    async (t) => {
      const lab = new Lab();
      const procs: ChildProcess[] = [];
      const dir = mkdtempSync(join(tmpdir(), "tvs-sync-lab-"));
      t.after(async () => {
        for (const p of procs)
          if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
        await lab.destroy();
        rmSync(dir, { recursive: true, force: true });
      });
      await lab.createSwitch();
      const client = await lab.addHost("client");
      const a = await lab.addHost("dira");
      const b = await lab.addHost("dirb");
      const rs1 = await lab.addHost("rs1");
      const rs2 = await lab.addHost("rs2");
      await ipIn(client.ns, "addr", "add", `${CLIENT}/24`, "dev", "eth0");
      await ipIn(a.ns, "addr", "add", `${DIR_A}/24`, "dev", "eth0");
      await ipIn(b.ns, "addr", "add", `${DIR_B}/24`, "dev", "eth0");
      await ipIn(rs1.ns, "addr", "add", `${RS1}/24`, "dev", "eth0");
      await ipIn(rs1.ns, "addr", "add", `${VIP_DR}/32`, "dev", "lo");
      for (const k of ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"])
        await runIn(rs1.ns, "sysctl", ["-qw", k]);
      await ipIn(rs2.ns, "addr", "add", `${RS2}/24`, "dev", "eth0");
      await ipIn(rs2.ns, "route", "add", `${CLIENT}/32`, "via", DIR_A);

      for (const [host, name, port] of [
        [rs1, "rs1", "80"],
        [rs2, "rs2", "8080"],
      ] as const) {
        const p = spawnIn(host.ns, process.execPath, ["-e", LINE_SERVER, name, port]);
        procs.push(p);
        assert.equal(await lines(p)(), "listening");
      }

      const rules = join(dir, "rules");
      writeFileSync(
        rules,
        [
          `-A -t ${VIP_DR}:80 -s rr`,
          `-a -t ${VIP_DR}:80 -r ${RS1}:80 -g -w 1`,
          `-A -t ${VIP_NAT}:80 -s rr`,
          `-a -t ${VIP_NAT}:80 -r ${RS2}:8080 -m -w 1`,
          "",
        ].join("\n"),
      );
      const startTvsd = async (ns: string, name: string): Promise<{ proc: ChildProcess; socket: string }> => {
        const socket = join(dir, `${name}.sock`);
        const proc = spawnIn(ns, process.execPath, [
          TVSD,
          "--dataplane",
          "packet",
          "--interface",
          "eth0",
          "--socket",
          socket,
          "--rules",
          rules,
          "--http",
          "none",
          ...(workers > 1 ? ["--workers", String(workers)] : []),
        ]);
        let err = "";
        proc.stderr?.on("data", (d: Buffer) => {
          err = (err + d.toString()).slice(-4000);
        });
        proc.stdout?.resume();
        procs.push(proc);
        for (let i = 0; i < 200; i++) {
          if (proc.exitCode !== null) throw new Error(`tvsd ${name} exited: ${err}`);
          const r = await run(process.execPath, [TVSADM, "--socket", socket, "-L", "-n"]).catch(() => undefined);
          if (r?.stdout.includes(VIP_NAT)) return { proc, socket };
          await sleep(100);
        }
        throw new Error(`tvsd ${name} did not come up: ${err}`);
      };
      const tvsadm = async (socket: string, ...args: string[]) =>
        (await run(process.execPath, [TVSADM, "--socket", socket, ...args])).stdout;
      const status = async (socket: string) =>
        (await run(process.execPath, [TVS, "status", "--socket", socket])).stdout;

      const dirA = await startTvsd(a.ns, "a");
      const dirB = await startTvsd(b.ns, "b");
      await tvsadm(dirA.socket, "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "9");
      await tvsadm(dirB.socket, "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "9");
      assert.equal(
        await tvsadm(dirB.socket, "-L", "--daemon"),
        "backup sync daemon (mcast=eth0, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
      );

      // The client reaches the VIPs through A (what VRRP's MASTER announces).
      const macA = await macOf(a.ns);
      const macB = await macOf(b.ns);
      for (const vip of [VIP_DR, VIP_NAT])
        await ipIn(client.ns, "neigh", "replace", vip, "lladdr", macA, "dev", "eth0", "nud", "permanent");

      // spawnIn gives no stdin; the client is driven through it.
      const holder = spawn(
        "ip",
        ["netns", "exec", client.ns, process.execPath, "-e", HOLDING_CLIENT, `${VIP_DR},${VIP_NAT}`, String(HELD)],
        { stdio: ["pipe", "pipe", "pipe"] },
      );
      procs.push(holder);
      const next = lines(holder);
      const ping = async (): Promise<string[]> => {
        holder.stdin?.write("ping\n");
        return JSON.parse(await next()) as string[];
      };
      // Two rounds: SYN, ACK and two data segments in, past the sync threshold (3 packets).
      const first = await ping();
      const second = await ping();
      const expected = (round: number) =>
        Array.from({ length: 2 * HELD }, (_, k) => `${k < HELD ? "rs1" : "rs2"}:r${round}c${k}`);
      assert.deepEqual(first, expected(1));
      assert.deepEqual(second, expected(2));

      // Within the 2 s flush, B lists what A lists.
      const onA = entries(await tvsadm(dirA.socket, "-L", "-n", "-c"));
      assert.equal(onA.length, 2 * HELD);
      assert.ok(
        onA.every((e) => e.startsWith("TCP ESTABLISHED")),
        onA.join("\n"),
      );
      let onB: string[] = [];
      for (let i = 0; i < 50; i++) {
        onB = entries(await tvsadm(dirB.socket, "-L", "-n", "-c"));
        if (onB.length === onA.length) break;
        await sleep(200);
      }
      assert.deepEqual(onB, onA);
      assert.match(
        await status(dirA.socket),
        /Sync master on eth0 \(syncid 9, 224\.0\.0\.81:8848\): \d+ messages, \d+ entries sent/,
      );
      assert.match(
        await status(dirB.socket),
        new RegExp(`Sync backup on eth0 .*${2 * HELD} (created|handed to the packet workers)`),
      );

      // Failover: A dies; B is made the one the client and rs2 send to.
      process.kill(dirA.proc.pid as number, "SIGKILL");
      await ipIn(a.ns, "link", "set", "eth0", "down");
      for (const vip of [VIP_DR, VIP_NAT])
        await ipIn(client.ns, "neigh", "replace", vip, "lladdr", macB, "dev", "eth0", "nud", "permanent");
      await ipIn(rs2.ns, "route", "replace", `${CLIENT}/32`, "via", DIR_B);
      const after = await ping();
      const resets = after.filter((r) => r.startsWith("ERR")).length;
      assert.equal(resets, 0, `connections reset or lost after failover: ${after.join(" ")}`);
      assert.deepEqual(after, expected(3), "every held connection answered by the same real server");
      await tvsadm(dirB.socket, "--stop-daemon", "backup");
      await tvsadm(dirB.socket, "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "9");

      // A comes back empty, as backup, and asks B for the table.
      await ipIn(a.ns, "link", "set", "eth0", "up");
      const dirA2 = await startTvsd(a.ns, "a2");
      await tvsadm(dirA2.socket, "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "9");
      let resynced = "";
      for (let i = 0; i < 50 && !resynced.includes("resync complete"); i++) {
        await sleep(200);
        resynced = await status(dirA2.socket);
      }
      assert.match(resynced, /resync complete \(\d+ entries from 10\.88\.0\.3/);
      assert.deepEqual(entries(await tvsadm(dirA2.socket, "-L", "-n", "-c")), onA);
      holder.stdin?.write("quit\n");
    },
  );
