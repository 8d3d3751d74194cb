// Failover as an operator watching tvsd sees it: two tvsd directors run VRRP (keepalived.conf
// vrrp_instance VI_1) on one segment in network namespaces, each serving its read-only HTTP endpoint
// on its own loopback. keepalived-exporter's keepalived_vrrp_state reads 2 (MASTER) on the master and
// 1 (BACKUP) on the backup; when the master's link goes down the backup's metrics turn MASTER,
// keepalived_become_master_total counts it, its /events carries the vrrp-state event and its
// dashboard feed shows the instance as MASTER.
// Skipped when not root.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CommandError, ipIn, runIn } from "../../src/lab/exec.ts";
import { Lab } from "../../src/lab/netns.ts";
import { startTvsd, type TvsdProcess, type VrrpSide, waitFor } from "../../src/lab/vrrp-pair.ts";

const root = process.getuid?.() === 0;
const NET = "172.16.0";
const VIP = `${NET}.30`;
const HTTP = "127.0.0.1:7420";

/** curl inside the namespace; what arrived before an error or the time limit (SSE streams end so). */
async function get(ns: string, path: string, seconds = 3): Promise<string> {
  try {
    return (
      await runIn(ns, "curl", ["-s", "-N", "-m", String(seconds), `http://${HTTP}${path}`], { timeoutMs: 10_000 })
    ).stdout;
  } catch (e) {
    if (e instanceof CommandError) return e.stdout;
    throw e;
  }
}

function value(text: string, series: string): number | undefined {
  for (const line of text.split("\n")) if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  return undefined;
}

const state = (ip: string) => `keepalived_vrrp_state{iname="VI_1",intf="eth0",vrid="51",ip_address="${ip}"}`;

test(
  "VRRP failover in the metrics and the event stream of two tvsd directors",
  { skip: !root && "needs root", timeout: 90_000 },
  async (t) => {
    const lab = new Lab();
    const dir = mkdtempSync(join(tmpdir(), "tvs-observe-vrrp-"));
    const children: TvsdProcess[] = [];
    t.after(async () => {
      for (const c of children.reverse()) await c.stop().catch(() => undefined);
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
    await lab.createSwitch();
    const a = await lab.addHost("obsa");
    const b = await lab.addHost("obsb");
    await ipIn(a.ns, "addr", "add", `${NET}.11/24`, "dev", "eth0");
    await ipIn(b.ns, "addr", "add", `${NET}.12/24`, "dev", "eth0");
    for (const h of [a, b]) await ipIn(h.ns, "link", "set", "lo", "up");
    const side = (s: "MASTER" | "BACKUP", priority: number): VrrpSide => ({
      state: s,
      priority,
      vrid: 51,
      advertInt: 1,
      version: 2,
      vip: `${VIP}/24`,
    });
    const master = startTvsd(a.ns, dir, side("MASTER", 150), "obsa", ["--http", HTTP]);
    children.push(master);
    const backup = startTvsd(b.ns, dir, side("BACKUP", 100), "obsb", ["--http", HTTP]);
    children.push(backup);

    await waitFor(
      "A MASTER and B BACKUP",
      async () => (await master.vrrp())?.state === "MASTER" && (await backup.vrrp())?.state === "BACKUP",
      20_000,
      100,
    );
    const ip = (await backup.vrrp())?.virtualIpaddresses[0] ?? VIP;
    await waitFor(
      "both endpoints serving",
      async () =>
        value(await get(a.ns, "/metrics"), state(ip)) === 2 && value(await get(b.ns, "/metrics"), state(ip)) === 1,
      10_000,
      200,
    );
    const before = await get(b.ns, "/metrics");
    const became = 'keepalived_become_master_total{iname="VI_1",intf="eth0",vrid="51"}';
    // (B may have been master for a moment at start, before it heard A.)
    const becameBefore = value(before, became) ?? Number.NaN;
    assert.ok(
      (value(before, 'keepalived_advertisements_received_total{iname="VI_1",intf="eth0",vrid="51"}') ?? 0) > 0,
      "the backup counts the master's adverts",
    );

    // The master's link goes down: the backup takes over, and says so.
    await ipIn(a.ns, "link", "set", "eth0", "down");
    await waitFor(
      "B's metrics say MASTER",
      async () => value(await get(b.ns, "/metrics"), state(ip)) === 2,
      10_000,
      100,
    );
    const after = await get(b.ns, "/metrics");
    assert.equal(value(after, became), becameBefore + 1);
    const events = JSON.parse(await get(b.ns, "/v1/events")) as {
      type: string;
      message: string;
      detail?: Record<string, unknown>;
    }[];
    const failover = events.find((e) => e.type === "vrrp-state" && e.detail?.to === "MASTER");
    assert.ok(failover, `a vrrp-state event to MASTER in ${JSON.stringify(events.map((e) => e.message))}`);
    assert.equal(failover.detail?.from, "BACKUP");
    // The SSE stream replays it too.
    assert.match(await get(b.ns, "/events", 2), /event: vrrp-state\ndata: .*"to":"MASTER"/);
    // The dashboard's feed carries the instance (what its VRRP panel shows).
    const frames = [...(await get(b.ns, "/dashboard/stream", 2)).matchAll(/event: state\ndata: (.*)\n/g)];
    const frame = JSON.parse(frames.at(-1)?.[1] ?? "{}") as {
      vrrp?: { name: string; state: string; addresses: string[] }[];
    };
    assert.deepEqual(
      frame.vrrp?.map((v) => [v.name, v.state]),
      [["VI_1", "MASTER"]],
    );
  },
);
