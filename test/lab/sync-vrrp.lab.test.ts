// Two tvsd directors (packet plane) running the same keepalived.conf: one vrrp_instance holding the
// DR VIP, the NAT VIP and the real servers' gateway address, and global_defs lvs_sync_daemon on
// that instance. The MASTER runs the master sync daemon, the BACKUP the backup daemon. Through the
// master a client holds 12 connections open on each VIP and downloads 24 MB at 4 MB/s through NAT.
// The master is killed (SIGKILL, link down): the backup becomes MASTER by VRRP, switches to the
// master sync daemon, announces the addresses, and then every held connection still answers from
// its real server and the download completes with the right checksum. Resets are counted (0).
// Needs root and the built addon; skips with the reason otherwise.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ipIn, isRoot, run, runIn, spawnIn } from "../../src/lab/exec.ts";
import {
  DOWNLOAD_CLIENT,
  DOWNLOAD_SERVER,
  downloadSha256,
  HOLDING_CLIENT,
  LINE_SERVER,
  lines,
} from "../../src/lab/held-connections.ts";
import { Lab } from "../../src/lab/netns.ts";
import { REPO_ROOT } from "../../src/lab/topology.ts";
import { startTvsdConf, stopChild, type TvsdProcess, waitFor } from "../../src/lab/vrrp-pair.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, raw sockets)";
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");
const NET = "10.89.0";
const CLIENT = `${NET}.100`;
const D1 = `${NET}.2`;
const D2 = `${NET}.3`;
const GW = `${NET}.1`;
const RS1 = `${NET}.21`;
const RS2 = `${NET}.22`;
const VIP_DR = `${NET}.10`;
const VIP_NAT = `${NET}.11`;
const HELD = 12;
const DOWNLOAD_BYTES = 24 << 20;
const DOWNLOAD_RATE = 4 << 20;

function conf(state: "MASTER" | "BACKUP", priority: number): string {
  return `global_defs {
    lvs_sync_daemon eth0 VI_1
}
vrrp_instance VI_1 {
    state ${state}
    interface eth0
    virtual_router_id 51
    priority ${priority}
    advert_int 1
    virtual_ipaddress {
        ${VIP_DR}/24
        ${VIP_NAT}/24
        ${GW}/24
    }
}
virtual_server ${VIP_DR} 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server ${RS1} 80 {
    }
}
virtual_server ${VIP_NAT} 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server ${RS2} 8080 {
    }
}
virtual_server ${VIP_NAT} 81 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server ${RS2} 8081 {
    }
}
`;
}

test(
  "VRRP failover with lvs_sync_daemon: held connections and a download survive the master's death",
  { skip: skip ?? false, timeout: 180_000 },
  async (t) => {
    const lab = new Lab();
    const dir = mkdtempSync(join(tmpdir(), "tvs-sync-vrrp-"));
    const procs: ChildProcess[] = [];
    const tvsds: TvsdProcess[] = [];
    t.after(async () => {
      for (const d of tvsds) await d.stop("SIGKILL").catch(() => undefined);
      for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const h1 = await lab.addHost("d1");
    const h2 = await lab.addHost("d2");
    const rs1 = await lab.addHost("rs1");
    const rs2 = await lab.addHost("rs2");
    await ipIn(client.ns, "addr", "add", `${CLIENT}/24`, "dev", "eth0");
    await ipIn(h1.ns, "addr", "add", `${D1}/24`, "dev", "eth0");
    await ipIn(h2.ns, "addr", "add", `${D2}/24`, "dev", "eth0");
    await ipIn(rs1.ns, "addr", "add", `${RS1}/24`, "dev", "eth0");
    await ipIn(rs1.ns, "addr", "add", `${VIP_DR}/32`, "dev", "lo");
    for (const k of ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"])
      await runIn(rs1.ns, "sysctl", ["-qw", k]);
    await ipIn(rs2.ns, "addr", "add", `${RS2}/24`, "dev", "eth0");
    // NAT replies go through the gateway address the VRRP MASTER holds.
    await ipIn(rs2.ns, "route", "add", `${CLIENT}/32`, "via", GW);

    for (const [ns, script, args] of [
      [rs1.ns, LINE_SERVER, ["rs1", "80"]],
      [rs2.ns, LINE_SERVER, ["rs2", "8080"]],
      [rs2.ns, DOWNLOAD_SERVER, ["8081", String(DOWNLOAD_BYTES), String(DOWNLOAD_RATE)]],
    ] as const) {
      const p = spawnIn(ns, process.execPath, ["-e", script, ...args]);
      procs.push(p);
      assert.equal(await lines(p)(), "listening");
    }

    const args = ["--dataplane", "packet", "--interface", "eth0"];
    const d1 = startTvsdConf(h1.ns, dir, conf("MASTER", 150), "d1", args);
    tvsds.push(d1);
    await waitFor("d1 MASTER", async () => (await d1.vrrp())?.state === "MASTER", 30_000, 100).catch((e: Error) => {
      throw new Error(`${e.message}: ${readFileSync(join(dir, "d1.log"), "utf8").slice(-3000)}`);
    });
    const d2 = startTvsdConf(h2.ns, dir, conf("BACKUP", 100), "d2", args);
    tvsds.push(d2);
    await waitFor("d2 BACKUP", async () => (await d2.vrrp())?.state === "BACKUP", 30_000, 100);
    const tvsadm = async (d: TvsdProcess, ...a: string[]) =>
      (await run(process.execPath, [TVSADM, "--socket", d.socket, ...a])).stdout;
    const daemon = (state: string) =>
      `${state} sync daemon (mcast=eth0, syncid=51, maxlen=${state === "master" ? 1472 : 1472}, group=224.0.0.81, port=8848, ttl=1)\n`;
    await waitFor(
      "d2's backup sync daemon",
      async () => (await tvsadm(d2, "-L", "--daemon")) === daemon("backup"),
      10_000,
      100,
    );
    assert.equal(await tvsadm(d1, "-L", "--daemon"), daemon("master"));

    // The client: a download through NAT and held connections on both VIPs, all through d1.
    const dl = spawn("ip", ["netns", "exec", client.ns, process.execPath, "-e", DOWNLOAD_CLIENT, VIP_NAT, "81"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    procs.push(dl);
    const dlLine = lines(dl);
    assert.equal(await dlLine(), "connected");
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
    const expected = (round: number) =>
      Array.from({ length: 2 * HELD }, (_, k) => `${k < HELD ? "rs1" : "rs2"}:r${round}c${k}`);
    assert.deepEqual(await ping(), expected(1));
    assert.deepEqual(await ping(), expected(2));
    // The 2 s flush brings everything to d2.
    await waitFor(
      "d2 to hold the held connections and the download",
      async () =>
        (await tvsadm(d2, "-L", "-n", "-c")).split("\n").filter((l) => l.includes("ESTABLISHED")).length >=
        2 * HELD + 1,
      10_000,
      200,
    );

    // d1 dies in the middle of the download.
    const killedAt = performance.now();
    await d1.stop("SIGKILL");
    await ipIn(h1.ns, "link", "set", "eth0", "down");
    await waitFor("d2 MASTER", async () => (await d2.vrrp())?.state === "MASTER", 15_000, 50);
    const takeoverMs = Math.round(performance.now() - killedAt);
    assert.equal(await tvsadm(d2, "-L", "--daemon"), daemon("master"), "d2 switched to the master sync daemon");

    const after = await ping();
    const resets = after.filter((r) => r.startsWith("ERR")).length;
    assert.equal(resets, 0, `held connections reset or lost after the takeover (${takeoverMs} ms): ${after.join(" ")}`);
    assert.deepEqual(after, expected(3), "every held connection is answered by the same real server");
    const result = JSON.parse(await dlLine()) as { bytes: number; sha256: string; err: string };
    assert.equal(result.err, "", "the download was not reset");
    assert.equal(result.bytes, DOWNLOAD_BYTES);
    assert.equal(result.sha256, downloadSha256(DOWNLOAD_BYTES), "the download arrived intact");
    holder.stdin?.write("quit\n");
    t.diagnostic(
      `takeover ${takeoverMs} ms, resets 0 of ${2 * HELD + 1} connections, download ${DOWNLOAD_BYTES} bytes intact`,
    );
    await stopChild(holder, 2000);
  },
);
