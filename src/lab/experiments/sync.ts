// `tvs lab sync`: two tvsd directors (packet data plane) run the same keepalived.conf, one
// vrrp_instance holding a DR VIP and a NAT VIP (the NAT real servers' route to the client), with
// global_defs lvs_sync_daemon on that instance: the VRRP MASTER runs the master sync daemon, the
// BACKUP the backup daemon. Through the master a client holds connections open on both VIPs
// (--held per VIP), downloads --download-mb MB at --rate-mb MB/s through NAT, and a persistent
// client opens short connections to a persistent NAT service (two real servers). The master is
// killed (SIGKILL, link down). The summary: VRRP takeover time, resets among the held connections
// and the download (target 0), whether every held connection is still answered by its real server,
// whether the download arrived whole (SHA-256), and whether the persistent client stays on its real
// server.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ipIn, run, runIn, spawnIn } from "../exec.ts";
import {
  DOWNLOAD_CLIENT,
  DOWNLOAD_SERVER,
  downloadSha256,
  HOLDING_CLIENT,
  LINE_SERVER,
  lines,
} from "../held-connections.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { Lab } from "../netns.ts";
import { positiveInt, str } from "../option-values.ts";
import { REPO_ROOT } from "../topology.ts";
import { startTvsdConf, stopChild, type TvsdProcess, waitFor } from "../vrrp-pair.ts";

export const sync: LabExperiment = {
  options: {
    held: { type: "string", default: "25", help: "connections held open per VIP (DR and NAT)" },
    "download-mb": { type: "string", default: "200", help: "size of the download through NAT, MB" },
    "rate-mb": { type: "string", default: "20", help: "the download's rate, MB/s" },
    workers: { type: "string", default: "1", help: "packet worker threads per director" },
  },
  run: runSync,
};

const NET = "10.89.0";
export const SYNC_LAB = {
  client: `${NET}.100`,
  directors: [`${NET}.2`, `${NET}.3`] as const,
  rs: [`${NET}.21`, `${NET}.22`, `${NET}.23`] as const,
  vipDr: `${NET}.10`,
  vipNat: `${NET}.11`,
};
const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");

/** The keepalived.conf both directors run (MASTER 150 / BACKUP 100). */
export function syncLabConf(state: "MASTER" | "BACKUP"): string {
  const L = SYNC_LAB;
  const [rs1, rs2, rs3] = L.rs;
  return `global_defs {
    lvs_sync_daemon eth0 VI_1
}
vrrp_instance VI_1 {
    state ${state}
    interface eth0
    virtual_router_id 51
    priority ${state === "MASTER" ? 150 : 100}
    advert_int 1
    virtual_ipaddress {
        ${L.vipDr}/24
        ${L.vipNat}/24
    }
}
virtual_server ${L.vipDr} 80 {
    lb_algo rr
    lb_kind DR
    protocol TCP
    real_server ${rs1} 80 {
    }
}
virtual_server ${L.vipNat} 80 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server ${rs2} 8080 {
    }
}
virtual_server ${L.vipNat} 81 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server ${rs2} 8081 {
    }
}
virtual_server ${L.vipNat} 90 {
    lb_algo rr
    lb_kind NAT
    protocol TCP
    persistence_timeout 300
    real_server ${rs2} 9000 {
    }
    real_server ${rs3} 9000 {
    }
}
`;
}

/** What `tvs lab sync --json` prints. */
export interface SyncLabSummary {
  takeoverMs: number;
  held: number;
  /** Held connections reset, closed or silent after the takeover, plus 1 if the download broke. */
  resets: number;
  sameRealServer: boolean;
  download: { bytes: number; expectedBytes: number; intact: boolean; err: string; seconds: number };
  persistent: { before: string[]; after: string[]; sticky: boolean };
  /** ESTABLISHED entries the backup held when the master died. */
  backupEntries: number;
  daemons: { before: string; after: string };
}

/** One short connection: send a line, return the answering server's name ("" on failure). */
const ONE_SHOT = `
const net = require("node:net");
const s = net.connect(Number(process.argv[2]), process.argv[1]);
let b = "";
s.setEncoding("utf8");
s.on("connect", () => s.write("who\\n"));
s.on("data", (d) => { b += d; if (b.includes("\\n")) { console.log(b.split(":")[0]); s.destroy(); } });
s.on("error", () => { console.log(""); });
setTimeout(() => { console.log(""); process.exit(0); }, 5000).unref();
`;

async function runSync(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const held = positiveInt(str(values, "held"), "--held");
  const mb = positiveInt(str(values, "download-mb"), "--download-mb");
  const rate = positiveInt(str(values, "rate-mb"), "--rate-mb");
  const workers = positiveInt(str(values, "workers"), "--workers");
  const L = SYNC_LAB;
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), "tvs-lab-sync-"));
  const procs: ChildProcess[] = [];
  const tvsds: TvsdProcess[] = [];
  const log = ctx.log;
  try {
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const h1 = await lab.addHost("d1");
    const h2 = await lab.addHost("d2");
    const rsHosts = [await lab.addHost("rs1"), await lab.addHost("rs2"), await lab.addHost("rs3")];
    await ipIn(client.ns, "addr", "add", `${L.client}/24`, "dev", "eth0");
    await ipIn(h1.ns, "addr", "add", `${L.directors[0]}/24`, "dev", "eth0");
    await ipIn(h2.ns, "addr", "add", `${L.directors[1]}/24`, "dev", "eth0");
    for (const [i, h] of rsHosts.entries()) await ipIn(h.ns, "addr", "add", `${L.rs[i]}/24`, "dev", "eth0");
    const [rs1, rs2, rs3] = rsHosts as [(typeof rsHosts)[0], (typeof rsHosts)[0], (typeof rsHosts)[0]];
    await ipIn(rs1.ns, "addr", "add", `${L.vipDr}/32`, "dev", "lo");
    for (const k of ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"])
      await runIn(rs1.ns, "sysctl", ["-qw", k]);
    // NAT replies go back through the director that holds the VIPs: the NAT VIP is the real
    // servers' way to the client (its owner answers ARP for it, and a new MASTER's gratuitous
    // ARP moves it).
    for (const h of [rs2, rs3]) await ipIn(h.ns, "route", "add", `${L.client}/32`, "via", L.vipNat);
    const bytes = mb << 20;
    for (const [ns, script, args] of [
      [rs1.ns, LINE_SERVER, ["rs1", "80"]],
      [rs2.ns, LINE_SERVER, ["rs2", "8080"]],
      [rs2.ns, LINE_SERVER, ["rs2", "9000"]],
      [rs3.ns, LINE_SERVER, ["rs3", "9000"]],
      [rs2.ns, DOWNLOAD_SERVER, ["8081", String(bytes), String(rate << 20)]],
    ] as const) {
      const p = spawnIn(ns, process.execPath, ["-e", script, ...args]);
      procs.push(p);
      if ((await lines(p)()) !== "listening") throw new Error(`A server in ${ns} did not start`);
    }

    const args = [
      "--dataplane",
      "packet",
      "--interface",
      "eth0",
      ...(workers > 1 ? ["--workers", String(workers)] : []),
    ];
    log(`# both directors: tvsd --config keepalived.conf ${args.join(" ")} (lvs_sync_daemon eth0 VI_1)`);
    const d1 = startTvsdConf(h1.ns, dir, syncLabConf("MASTER"), "d1", args);
    tvsds.push(d1);
    await waitFor("director 1 MASTER", async () => (await d1.vrrp())?.state === "MASTER", 30_000, 100);
    const d2 = startTvsdConf(h2.ns, dir, syncLabConf("BACKUP"), "d2", args);
    tvsds.push(d2);
    await waitFor("director 2 BACKUP", async () => (await d2.vrrp())?.state === "BACKUP", 30_000, 100);
    const tvsadm = async (d: TvsdProcess, ...a: string[]) =>
      (await run(process.execPath, [TVSADM, "--socket", d.socket, ...a])).stdout;
    await waitFor(
      "director 2's backup sync daemon",
      async () => (await tvsadm(d2, "-L", "--daemon")).startsWith("backup"),
      10_000,
      100,
    );
    const daemonsBefore = `${(await tvsadm(d1, "-L", "--daemon")).trim()} | ${(await tvsadm(d2, "-L", "--daemon")).trim()}`;
    log(`# director 1: ${(await tvsadm(d1, "-L", "--daemon")).trim()}`);
    log(`# director 2: ${(await tvsadm(d2, "-L", "--daemon")).trim()}`);

    const oneShot = async () =>
      (await runIn(client.ns, process.execPath, ["-e", ONE_SHOT, L.vipNat, "90"])).stdout.trim();
    const persistentBefore: string[] = [];
    for (let i = 0; i < 5; i++) persistentBefore.push(await oneShot());
    log(`# persistent client on ${L.vipNat}:90 before: ${persistentBefore.join(" ")}`);

    const dl = spawn("ip", ["netns", "exec", client.ns, process.execPath, "-e", DOWNLOAD_CLIENT, L.vipNat, "81"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    procs.push(dl);
    const dlLine = lines(dl);
    if ((await dlLine()) !== "connected") throw new Error("The download did not connect");
    const dlStart = performance.now();
    log(`# download of ${mb} MB at ${rate} MB/s through ${L.vipNat}:81 (NAT) started`);
    const holder = spawn(
      "ip",
      ["netns", "exec", client.ns, process.execPath, "-e", HOLDING_CLIENT, `${L.vipDr},${L.vipNat}`, String(held)],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    procs.push(holder);
    const next = lines(holder);
    const ping = async (): Promise<string[]> => {
      holder.stdin?.write("ping\n");
      return JSON.parse(await next()) as string[];
    };
    const expected = (round: number) =>
      Array.from({ length: 2 * held }, (_, k) => `${k < held ? "rs1" : "rs2"}:r${round}c${k}`);
    const first = [...(await ping()), ...(await ping())];
    const firstOk = JSON.stringify(first) === JSON.stringify([...expected(1), ...expected(2)]);
    log(`# ${2 * held} connections held open through director 1 (${firstOk ? "all answered" : "NOT all answered"})`);
    let backupEntries = 0;
    await waitFor(
      "director 2 to hold the connections",
      async () => {
        const list = await tvsadm(d2, "-L", "-n", "-c");
        backupEntries = list.split("\n").filter((l) => l.includes("ESTABLISHED")).length;
        return backupEntries >= 2 * held + 1;
      },
      15_000,
      200,
    ).catch(() => undefined);
    log(`# director 2 (backup) lists ${backupEntries} ESTABLISHED entries`);

    log("# director 1 dies: SIGKILL, link down");
    const killedAt = performance.now();
    await d1.stop("SIGKILL");
    await ipIn(h1.ns, "link", "set", "eth0", "down");
    await waitFor("director 2 MASTER", async () => (await d2.vrrp())?.state === "MASTER", 15_000, 50);
    const takeoverMs = Math.round(performance.now() - killedAt);
    const daemonsAfter = (await tvsadm(d2, "-L", "--daemon")).trim();
    log(`# director 2 MASTER after ${takeoverMs} ms: ${daemonsAfter}`);

    const after = await ping();
    const lost = after.filter((r) => r.startsWith("ERR")).length;
    const sameRealServer = JSON.stringify(after) === JSON.stringify(expected(3));
    log(`# held connections after the takeover: ${2 * held - lost} answered, ${lost} reset or lost`);
    const persistentAfter: string[] = [];
    for (let i = 0; i < 5; i++) persistentAfter.push(await oneShot());
    log(`# persistent client after: ${persistentAfter.join(" ")}`);
    const result = JSON.parse(await dlLine()) as { bytes: number; sha256: string; err: string };
    const seconds = Math.round((performance.now() - dlStart) / 100) / 10;
    const intact = result.bytes === bytes && result.sha256 === downloadSha256(bytes);
    log(
      `# download: ${result.bytes} of ${bytes} bytes in ${seconds} s, ${intact ? "checksum right" : "NOT intact"}${result.err ? ` (${result.err})` : ""}`,
    );
    holder.stdin?.write("quit\n");
    await stopChild(holder, 2000);

    const first0 = persistentBefore[0] ?? "";
    const sticky = first0 !== "" && [...persistentBefore, ...persistentAfter].every((s) => s === first0);
    const summary: SyncLabSummary = {
      takeoverMs,
      held: 2 * held,
      resets: lost + (result.err !== "" || !intact ? 1 : 0),
      sameRealServer,
      download: { bytes: result.bytes, expectedBytes: bytes, intact, err: result.err, seconds },
      persistent: { before: persistentBefore, after: persistentAfter, sticky },
      backupEntries,
      daemons: { before: daemonsBefore, after: daemonsAfter },
    };
    log(`# resets: ${summary.resets} (target 0)`);
    const ok = firstOk && summary.resets === 0 && sameRealServer && sticky && daemonsAfter.startsWith("master");
    return { ok, summary };
  } finally {
    if (!ctx.keep) {
      for (const d of tvsds) await d.stop("SIGKILL").catch(() => undefined);
      for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  }
}
