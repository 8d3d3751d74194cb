// VRRP takeover time, tvsd beside Debian's keepalived, measured the same way in one run: two
// directors on a bridge in network namespaces (master priority 150, backup 100, one VIP), the
// master's link taken down (a death without a priority-0 goodbye), and the time until the backup
// is MASTER: tvsd's from its own transition timestamp (GET /v1/status), keepalived's from its
// notify script's timestamp. Link up again, the master preempts back, and again, N rounds (default
// 20) for VRRPv2 advert_int 1 and VRRPv3 advert_int 0.1. Prints median and max per case, the
// theory (master_down = 3 × advert_int + skew) and the ratio tvsd / keepalived.
//
//   sudo node --import tsx bench/vrrp-takeover.ts [--rounds N] [--only tvsd|keepalived] [--case v2|v3]
//
// Both sides are timed by their own clocks (tvsd's transition timestamp, keepalived's notify
// script), so polling them every 50 ms costs no accuracy and leaves the backup's event loop alone.
//
// Bounded: every wait has a limit; namespaces and processes are removed at the end.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ipIn, run, sleep } from "../src/lab/exec.ts";
import { Lab } from "../src/lab/netns.ts";
import {
  type KeepalivedProcess,
  startKeepalived,
  startTvsd,
  type TvsdProcess,
  type VrrpSide,
  waitFor,
} from "../src/lab/vrrp-pair.ts";

const { values } = parseArgs({
  options: { rounds: { type: "string", default: "20" }, only: { type: "string" }, case: { type: "string" } },
});
const ROUNDS = Math.max(1, Math.min(100, Number(values.rounds)));

if (process.getuid?.() !== 0) {
  console.error("bench/vrrp-takeover.ts needs root (network namespaces)");
  process.exit(1);
}
const haveKeepalived = await run("keepalived", ["--version"]).then(
  () => true,
  () => false,
);

interface Case {
  name: string;
  version: 2 | 3;
  advertInt: number;
}
const CASES: Case[] = [
  { name: "VRRPv2 advert_int 1", version: 2, advertInt: 1 },
  { name: "VRRPv3 advert_int 0.1", version: 3, advertInt: 0.1 },
];

function masterDown(c: Case, prio: number): number {
  const adv = c.advertInt * 1000;
  return 3 * adv + (c.version === 2 ? ((256 - prio) * 1000) / 256 : ((256 - prio) * adv) / 256);
}

interface Side {
  /** Epoch ms of the latest transition to MASTER at or after `since`, if any. */
  masterSince(since: number): Promise<number | undefined>;
  state(): Promise<string | undefined>;
  stop(): Promise<void>;
}

function tvsdSide(p: TvsdProcess): Side {
  return {
    masterSince: async (since) => {
      const s = await p.vrrp();
      if (s?.state !== "MASTER" || !s.lastTransition) return undefined;
      const at = Date.parse(s.lastTransition.at);
      return at >= since ? at : undefined;
    },
    state: async () => (await p.vrrp())?.state,
    stop: () => p.stop(),
  };
}

function keepalivedSide(k: KeepalivedProcess): Side {
  return {
    masterSince: async (since) => k.states().find((s) => s.state === "MASTER" && s.at >= since)?.at,
    state: async () => k.last(),
    stop: () => k.stop(),
  };
}

async function measure(impl: "tvsd" | "keepalived", c: Case): Promise<number[]> {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), "tvs-bench-vrrp-"));
  const sides: Side[] = [];
  try {
    await lab.createSwitch();
    const m = await lab.addHost("m");
    const b = await lab.addHost("b");
    await ipIn(m.ns, "addr", "add", "172.16.0.11/24", "dev", "eth0");
    await ipIn(b.ns, "addr", "add", "172.16.0.12/24", "dev", "eth0");
    const side = (state: "MASTER" | "BACKUP", priority: number): VrrpSide => ({
      state,
      priority,
      vrid: 51,
      advertInt: c.advertInt,
      version: c.version,
      vip: "172.16.0.30/24",
      ...(c.version === 2 ? { authPass: "1111" } : {}),
    });
    let master: Side;
    let backup: Side;
    if (impl === "tvsd") {
      master = tvsdSide(startTvsd(m.ns, dir, side("MASTER", 150), "master"));
      backup = tvsdSide(startTvsd(b.ns, dir, side("BACKUP", 100), "backup"));
    } else {
      master = keepalivedSide(startKeepalived(m.ns, dir, side("MASTER", 150), "master"));
      backup = keepalivedSide(startKeepalived(b.ns, dir, side("BACKUP", 100), "backup"));
    }
    sides.push(master, backup);
    const settle = masterDown(c, 150) + 3000;
    await waitFor("master", async () => (await master.state()) === "MASTER", 60_000 + settle, 50);
    await waitFor("backup", async () => (await backup.state()) === "BACKUP", 60_000, 50);
    const out: number[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      // Let a few adverts pass, so the backup's timer was just reset as in steady state.
      await sleep(Math.max(300, c.advertInt * 1000 * 2 + Math.random() * c.advertInt * 1000));
      const down = Date.now();
      await ipIn(m.ns, "link", "set", "eth0", "down");
      let at: number | undefined;
      await waitFor(
        "backup MASTER",
        async () => {
          at = await backup.masterSince(down);
          return at !== undefined;
        },
        masterDown(c, 100) + 10_000,
        50,
      );
      out.push((at as number) - down);
      await ipIn(m.ns, "link", "set", "eth0", "up");
      await waitFor("backup yields", async () => (await backup.state()) === "BACKUP", settle + 10_000, 20);
      await waitFor("master back", async () => (await master.state()) === "MASTER", settle + 10_000, 20);
    }
    return out;
  } finally {
    for (const s of sides) await s.stop().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

function stats(xs: number[]): { median: number; max: number; min: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { median, max: s[s.length - 1] as number, min: s[0] as number };
}

const impls: ("tvsd" | "keepalived")[] = [];
if (values.only !== "keepalived") impls.push("tvsd");
if (values.only !== "tvsd") {
  if (haveKeepalived) impls.push("keepalived");
  else console.error("keepalived is not installed: measuring tvsd only (apt-get install keepalived)");
}

console.log(`VRRP takeover after the master's link goes down, ${ROUNDS} rounds each (backup priority 100)\n`);
console.log(
  `${"case".padEnd(24)} ${"theory".padStart(8)} ${impls.map((i) => `${`${i} median`.padStart(17)} ${`${i} max`.padStart(14)}`).join(" ")} ${impls.length === 2 ? "  median ratio" : ""}`,
);
for (const c of CASES.filter((x) => values.case === undefined || x.name.startsWith(`VRRP${values.case}`))) {
  const got: Record<string, { median: number; max: number; min: number }> = {};
  for (const impl of impls) got[impl] = stats(await measure(impl, c));
  const cells = impls.map((i) => {
    const g = got[i] as { median: number; max: number };
    return `${`${g.median.toFixed(0)} ms`.padStart(17)} ${`${g.max.toFixed(0)} ms`.padStart(14)}`;
  });
  const ratio = impls.length === 2 ? `  ${((got.tvsd?.median ?? 0) / (got.keepalived?.median ?? 1)).toFixed(2)}` : "";
  console.log(`${c.name.padEnd(24)} ${`${masterDown(c, 100).toFixed(0)} ms`.padStart(8)} ${cells.join(" ")}${ratio}`);
}
console.log(
  "\ntheory = master_down = 3 × advert_int + skew; a death lands anywhere within an advert interval, so a takeover falls between master_down − advert_int and master_down (plus scheduling).",
);
