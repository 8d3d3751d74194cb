// `tvs lab keepalived` (seed 002's LVS-DR pair with keepalived, seed 003's closing point: without
// it the director is a single point of failure): a client, two directors and two real servers on
// one segment. Both directors run tvsd from the seed's keepalived.conf (MASTER 100 / BACKUP 50,
// virtual_router_id 51, advert_int 1, auth PASS 1111, VIP 172.16.0.30/24, DR, rr) on the packet
// data plane; the real servers are prepared by `tvs realserver start --mode dr`. A curl loop runs
// while the master is killed (SIGKILL: no priority-0 goodbye, so the backup waits master_down); it
// prints which real server and which director served each request, the takeover time and the
// requests that failed.
//
// --peer keepalived puts Debian's keepalived in the backup director's place for VRRP. This machine
// has no kernel IPVS, so that director forwards with tvsd on the socket data plane (the seed's
// virtual_server without its vrrp_instance, DR carried as masq, binding the VIP keepalived adds).

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { HttpControlClient } from "../../control/api/client.ts";
import { ipIn, run, runIn, sleep } from "../exec.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { Lab } from "../netns.ts";
import { LabOptionError, positiveInt, str } from "../option-values.ts";
import { startNameServer } from "../servers.ts";
import { TVS_BIN } from "../topology.ts";
import {
  type KeepalivedProcess,
  startKeepalived,
  startTvsdConf,
  stopChild,
  type TvsdProcess,
  waitFor,
} from "../vrrp-pair.ts";

export const keepalived: LabExperiment = {
  options: {
    peer: { type: "string", default: "tvsd", help: "the backup director: tvsd, or keepalived (Debian's, for VRRP)" },
    requests: { type: "string", default: "80", help: "requests in the curl loop (one every --interval ms)" },
    interval: { type: "string", default: "100", help: "milliseconds between requests" },
    "kill-at": { type: "string", default: "10", help: "kill the master after this many requests" },
    kill: {
      type: "string",
      default: "kill",
      help: "how the master dies: kill (SIGKILL), term (SIGTERM: priority 0), link (its link goes down)",
    },
  },
  run: runExperiment,
};

const NET = "172.16.0";
export const SEED002 = {
  vip: `${NET}.30`,
  client: `${NET}.100`,
  directors: [`${NET}.11`, `${NET}.12`] as const,
  reals: [`${NET}.21`, `${NET}.22`] as const,
};

/** Seed 002's keepalived.conf for one director (MASTER 100 or BACKUP 50). */
export function seed002Conf(state: "MASTER" | "BACKUP", withVrrp = true): string {
  const prio = state === "MASTER" ? 100 : 50;
  const vrrp = `vrrp_instance VI_1 {
    state ${state}
    interface eth0
    virtual_router_id 51
    priority ${prio}
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass 1111
    }
    virtual_ipaddress {
        ${SEED002.vip}/24
    }
}
`;
  return `! Configuration File for keepalived (seed 002, ${state === "MASTER" ? "director 1" : "director 2"})
global_defs {
   router_id LVS_DEVEL
}

${withVrrp ? vrrp : ""}
virtual_server ${SEED002.vip} 80 {
    delay_loop 6
    lb_algo rr
    lb_kind DR
    protocol TCP

${SEED002.reals
  .map(
    (r) => `    real_server ${r} 80 {
        weight 1
        TCP_CHECK {
            connect_timeout 3
        }
    }`,
  )
  .join("\n")}
}
`;
}

interface RequestRecord {
  i: number;
  /** Milliseconds since the loop started. */
  t: number;
  /** The real server's name, "" when the request failed. */
  server: string;
  /** The director whose table counted the connection ("" unknown). */
  director: string;
}

async function runExperiment(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const peer = str(values, "peer");
  if (peer !== "tvsd" && peer !== "keepalived")
    throw new LabOptionError(`Invalid --peer "${peer}" (expected tvsd or keepalived)`);
  const kill = str(values, "kill");
  if (kill !== "kill" && kill !== "term" && kill !== "link")
    throw new LabOptionError(`Invalid --kill "${kill}" (expected kill, term or link)`);
  const requests = Math.min(positiveInt(str(values, "requests"), "--requests"), 2000);
  const interval = Math.min(positiveInt(str(values, "interval"), "--interval"), 5000);
  const killAt = positiveInt(str(values, "kill-at"), "--kill-at");
  if (peer === "keepalived") {
    const have = await run("keepalived", ["--version"]).then(
      () => true,
      () => false,
    );
    if (!have) throw new LabOptionError("--peer keepalived needs keepalived installed (apt-get install keepalived)");
  }
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), "tvs-lab-keepalived-"));
  const stops: (() => Promise<void>)[] = [];
  const log = ctx.log;
  try {
    await lab.createSwitch();
    const client = await lab.addHost("client");
    await ipIn(client.ns, "addr", "add", `${SEED002.client}/24`, "dev", "eth0");
    const d = [await lab.addHost("director1"), await lab.addHost("director2")];
    for (const [i, h] of d.entries()) await ipIn(h.ns, "addr", "add", `${SEED002.directors[i]}/24`, "dev", "eth0");
    for (const [i, ip] of SEED002.reals.entries()) {
      const h = await lab.addHost(`rs${i + 1}`);
      await ipIn(h.ns, "addr", "add", `${ip}/24`, "dev", "eth0");
      const srv = startNameServer(h.ns, `rs${i + 1}`, [80], 5353);
      stops.push(() => stopChild(srv, 2000));
      log(`[rs${i + 1}] tvs realserver start --vip ${SEED002.vip} --mode dr`);
      await runIn(h.ns, process.execPath, [TVS_BIN, "realserver", "start", "--vip", SEED002.vip, "--mode", "dr"], {
        timeoutMs: 60_000,
      });
    }

    // Director 1: tvsd MASTER. Director 2: tvsd BACKUP, or keepalived + tvsd forwarding.
    const tvsds: (TvsdProcess | undefined)[] = [];
    const clients: HttpControlClient[] = [];
    const startDirectorTvsd = (i: number, conf: string, args: string[]): TvsdProcess => {
      const name = `director${i + 1}`;
      log(`[${name}] tvsd --config ${join(dir, `${name}.conf`)} ${args.join(" ")}`);
      const p = startTvsdConf((d[i] as { ns: string }).ns, dir, conf, name, args);
      stops.push(() => p.stop());
      return p;
    };
    const packet = ["--dataplane", "packet", "--interface", "eth0"];
    const t1 = startDirectorTvsd(0, seed002Conf("MASTER"), packet);
    tvsds.push(t1);
    clients.push(t1.client);
    let ka: KeepalivedProcess | undefined;
    if (peer === "tvsd") {
      const t2 = startDirectorTvsd(1, seed002Conf("BACKUP"), packet);
      tvsds.push(t2);
      clients.push(t2.client);
    } else {
      // keepalived does VRRP; tvsd (socket plane) binds the VIP whenever keepalived adds it.
      await runIn((d[1] as { ns: string }).ns, "sysctl", ["-qw", "net.ipv4.ip_nonlocal_bind=1"]);
      ka = startKeepalived((d[1] as { ns: string }).ns, dir, {
        state: "BACKUP",
        priority: 50,
        vrid: 51,
        advertInt: 1,
        version: 2,
        vip: `${SEED002.vip}/24`,
        authPass: "1111",
      });
      log(`[director2] keepalived -n -l -D -P -f ${join(dir, "ka.conf")} (VRRP), tvsd for forwarding`);
      const k = ka;
      stops.push(() => k.stop());
      const t2 = startDirectorTvsd(1, seed002Conf("BACKUP", false), []);
      tvsds.push(t2);
      clients.push(t2.client);
    }

    const vrrpState = async (i: number): Promise<string | undefined> => {
      if (i === 1 && ka) return ka.last();
      try {
        return (await clients[i]?.status())?.vrrp?.[0]?.state;
      } catch {
        return undefined;
      }
    };
    await waitFor("director1 MASTER", async () => (await vrrpState(0)) === "MASTER", 30_000, 100);
    await waitFor("director2 BACKUP", async () => (await vrrpState(1)) === "BACKUP", 30_000, 100);
    log(`director1 (${SEED002.directors[0]}) is MASTER, director2 (${SEED002.directors[1]}) is BACKUP`);

    // The curl loop; the master dies after killAt requests.
    const conns = async (i: number): Promise<number | undefined> => {
      try {
        return (await clients[i]?.snapshot())?.stats.conns;
      } catch {
        return undefined;
      }
    };
    const records: RequestRecord[] = [];
    let killedAt: number | undefined;
    let killEpoch = 0;
    const t0 = performance.now();
    let before = [await conns(0), await conns(1)];
    log(`\n# while true; do curl -s -m 1 http://${SEED002.vip}/; sleep ${interval / 1000}; done`);
    for (let i = 1; i <= requests; i++) {
      if (i === killAt + 1) {
        killedAt = performance.now() - t0;
        killEpoch = Date.now();
        const master = tvsds[0] as TvsdProcess;
        log(
          `--- killing the master (director1) with ${kill === "link" ? "its link down" : `SIG${kill.toUpperCase()}`} ---`,
        );
        if (kill === "link") await ipIn((d[0] as { ns: string }).ns, "link", "set", "eth0", "down");
        else await stopChild(master.child, 3000, kill === "kill" ? "SIGKILL" : "SIGTERM");
      }
      const started = performance.now();
      const r = await runIn(client.ns, "curl", ["-s", "-m", "1", `http://${SEED002.vip}/`], { timeoutMs: 5000 }).catch(
        () => ({ stdout: "" }),
      );
      const server = r.stdout.trim();
      const after = [await conns(0), await conns(1)];
      const served = after.findIndex((n, k) => n !== undefined && before[k] !== undefined && n > (before[k] as number));
      before = after;
      const rec: RequestRecord = {
        i,
        t: Math.round(started - t0),
        server,
        director: served === -1 ? "" : `director${served + 1}`,
      };
      records.push(rec);
      log(
        `#${String(i).padStart(3)} t=${String(rec.t).padStart(6)} ms  ${server ? `${server} via ${rec.director || "?"}` : "FAILED"}`,
      );
      const spent = performance.now() - started;
      if (spent < interval) await sleep(interval - spent);
    }

    const after = killedAt === undefined ? [] : records.filter((r) => r.t >= (killedAt as number));
    const firstOk = after.find((r) => r.server !== "");
    const takeoverMs = firstOk && killedAt !== undefined ? Math.round(firstOk.t - killedAt) : undefined;
    const failed = records.filter((r) => r.server === "");
    let vrrpTakeoverMs: number | undefined;
    if (killedAt !== undefined) {
      if (ka) {
        const m = ka.states().find((x) => x.state === "MASTER" && x.at >= killEpoch);
        if (m) vrrpTakeoverMs = m.at - killEpoch;
      } else {
        const st = (await clients[1]?.status().catch(() => undefined))?.vrrp?.[0];
        if (st?.lastTransition?.to === "MASTER") vrrpTakeoverMs = Date.parse(st.lastTransition.at) - killEpoch;
      }
    }
    const byDirector: Record<string, number> = {};
    for (const r of records) if (r.server) byDirector[r.director || "?"] = (byDirector[r.director || "?"] ?? 0) + 1;
    const summary = {
      seed: "002",
      peer,
      kill,
      requests: records.length,
      failed: failed.length,
      failedRequests: failed.map((r) => r.i),
      killedAtMs: killedAt === undefined ? null : Math.round(killedAt),
      takeoverMs: takeoverMs ?? null,
      vrrpTakeoverMs: vrrpTakeoverMs === undefined ? null : Math.round(vrrpTakeoverMs),
      masterDownMs: Math.round(3000 + (206 * 1000) / 256),
      byDirector,
      sequence: records,
    };
    log(
      `\n# served: ${Object.entries(byDirector)
        .map(([k, n]) => `${k} ${n}`)
        .join(", ")}; failed: ${failed.length}${failed.length ? ` (#${failed.map((r) => r.i).join(" #")})` : ""}`,
    );
    log(
      `# takeover: director2 became MASTER ${summary.vrrpTakeoverMs ?? "?"} ms after the kill (master_down ${summary.masterDownMs} ms); first request served again ${takeoverMs ?? "never"} ms after it`,
    );
    const ok = takeoverMs !== undefined && (byDirector.director2 ?? 0) > 0 && (byDirector.director1 ?? 0) > 0;
    return { ok, summary };
  } finally {
    if (!ctx.keep) {
      for (const s of stops.reverse()) await s().catch(() => undefined);
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    } else log(`# kept: namespaces ${lab.prefix}-*, files in ${dir}`);
  }
}
