// `tvs lab synflood`: a spoofed-source SYN flood (Debian's hping3 --rand-source, bounded in time)
// against a NAT, FULLNAT or DR service on tvsd's packet plane, while a long download continues through the
// director and a legitimate client connects every 10 ms (synflood-driver.ts). tvsd runs with a
// bounded table and IPVS's defences in their automatic modes, or with the SYN proxy
// (--sysctl synproxy=1, NAT and FULLNAT), on one or more packet workers (docs/defences.md). Reported: the
// table's size and tvsd's RSS over time, the legitimate success rate and the download's throughput
// before, during and after the flood, the frames the kernel dropped at tvsd's sockets and the SYN
// proxy's cookies. Targets: the download survives, ≥ 99 % of the legitimate connections made
// during the flood succeed, the table stays within its limit.

import { readFileSync } from "node:fs";
import { HttpControlClient } from "../../control/api/client.ts";
import { runIn, sleep } from "../exec.ts";
import { Experiment } from "../experiment.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { LabOptionError, positiveInt, str } from "../option-values.ts";
import { SYNFLOOD_DRIVER_JS } from "../synflood-driver.ts";
import { HTTP_PORT } from "../topology.ts";

type Phase = "before" | "during" | "after";
interface DriverResult {
  legit: Record<Phase, { tried: number; ok: number; maxMs: number }>;
  download: Record<Phase, number> & { cut: boolean; survived: boolean; error: string };
  hping: { sent: number; output: string };
}

export interface SynfloodSummary {
  mode: "nat" | "dr" | "fullnat";
  workers: number;
  connLimit: number;
  sysctls: string[];
  rate: string;
  seconds: { before: number; flood: number; after: number };
  floodSent: number;
  legit: Record<Phase, { tried: number; ok: number; successPct: number; slowestMs: number }>;
  downloadBytesPerS: Record<Phase, number>;
  downloadSurvived: boolean;
  /** Samples every 250 ms: ms since start, table entries, tvsd RSS in KiB. */
  samples: { t: number; entries: number; rssKiB: number }[];
  maxEntries: number;
  rssKiB: { before: number; max: number };
  defense: { entriesDropped: number; packetsDropped: number };
  /** From tvsd's metrics at the end: frames the kernel dropped at its sockets, SYN proxy cookies. */
  socketDrops: number;
  cookies: { sent: number; valid: number; invalid: number };
  /** Frames the plane received and dropped (all reasons) over the run. */
  frames: { rx: number; dropped: number };
}

/** One sample of a Prometheus text body (labels as written, e.g. 'result="sent"'), NaN when absent. */
function metric(body: string, name: string, labels = ""): number {
  const head = labels ? `${name}{${labels}} ` : `${name} `;
  const line = body.split("\n").find((l) => l.startsWith(head));
  return line ? Number(line.slice(head.length).split(" ")[0]) : Number.NaN;
}

function rssKiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

export async function runSynflood(
  o: {
    mode?: "nat" | "dr" | "fullnat";
    workers?: number;
    /** The service's scheduler (default rr); stateless_syn needs mh or sh. */
    scheduler?: string;
    connLimit: number;
    sysctls: string[];
    rate: string;
    beforeS: number;
    floodS: number;
    afterS: number;
    dlRate: number;
    keep: boolean;
  },
  log: (l: string) => void,
): Promise<SynfloodSummary> {
  const tvsdArgs = ["--conn-limit", String(o.connLimit), ...o.sysctls.flatMap((s) => ["--sysctl", s])];
  const mode = o.mode ?? "nat";
  const workers = o.workers ?? 1;
  const exp = await Experiment.start({ mode, realServers: 1, workers, tvsdArgs, log, scheduler: o.scheduler ?? "rr" });
  try {
    const client = new HttpControlClient({ socketPath: exp.socket });
    const pid = (await client.status()).pid;
    const samples: SynfloodSummary["samples"] = [];
    const t0 = Date.now();
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        // With packet workers the entries live in the workers' tables: their sum is in the metrics.
        const entries =
          workers > 1
            ? await runIn(exp.topo.director.ns, "curl", ["-s", "-m", "2", "http://127.0.0.1:7420/metrics"])
                .then((m) => metric(m.stdout, "tvs_connection_table_entries"))
                .catch(() => -1)
            : await client
                .sysctl()
                .then((v) => v.defense.entries)
                .catch(() => -1);
        samples.push({ t: Date.now() - t0, entries: Number.isFinite(entries) ? entries : -1, rssKiB: rssKiB(pid) });
        await sleep(250);
      }
    })();
    log(
      `# client: download at ${o.dlRate} B/s, a new connection every 10 ms; hping3 -S --rand-source ${o.rate === "flood" ? "--flood" : `at ${o.rate}/s`} for ${o.floodS} s after ${o.beforeS} s`,
    );
    const total = (o.beforeS + o.floodS + o.afterS) * 1000;
    const r = await runIn(
      exp.topo.client.ns,
      process.execPath,
      [
        "-e",
        SYNFLOOD_DRIVER_JS,
        exp.vip,
        String(HTTP_PORT),
        String(o.beforeS * 1000),
        String(o.floodS * 1000),
        String(o.afterS * 1000),
        String(o.dlRate),
        o.rate,
      ],
      { timeoutMs: total + 30_000 },
    );
    sampling = false;
    await sampler;
    const d = JSON.parse(r.stdout.trim().split("\n").pop() ?? "{}") as DriverResult;
    const end = await client.sysctl();
    const metrics = await runIn(exp.topo.director.ns, "curl", ["-s", "-m", "5", "http://127.0.0.1:7420/metrics"])
      .then((m) => m.stdout)
      .catch(() => "");
    const n = (v: number) => (Number.isFinite(v) ? v : 0);
    const secs: Record<Phase, number> = { before: o.beforeS, during: o.floodS, after: o.afterS };
    const phases: Phase[] = ["before", "during", "after"];
    const legit = Object.fromEntries(
      phases.map((p) => {
        const x = d.legit[p];
        return [p, { tried: x.tried, ok: x.ok, successPct: x.tried ? (100 * x.ok) / x.tried : 0, slowestMs: x.maxMs }];
      }),
    ) as SynfloodSummary["legit"];
    const beforeSamples = samples.filter((s) => s.t < o.beforeS * 1000);
    return {
      mode,
      workers,
      connLimit: o.connLimit,
      sysctls: o.sysctls,
      rate: o.rate,
      seconds: { before: o.beforeS, flood: o.floodS, after: o.afterS },
      floodSent: d.hping.sent,
      legit,
      downloadBytesPerS: Object.fromEntries(phases.map((p) => [p, Math.round(d.download[p] / secs[p])])) as Record<
        Phase,
        number
      >,
      downloadSurvived: d.download.survived,
      samples,
      maxEntries: Math.max(0, ...samples.map((s) => s.entries)),
      rssKiB: {
        before: Math.max(0, ...beforeSamples.map((s) => s.rssKiB)),
        max: Math.max(0, ...samples.map((s) => s.rssKiB)),
      },
      defense: { entriesDropped: end.defense.entriesDropped, packetsDropped: end.defense.packetsDropped },
      socketDrops: n(metric(metrics, "tvs_dataplane_socket_drops_total")),
      cookies: {
        sent: n(metric(metrics, "tvs_synproxy_cookies_total", 'result="sent"')),
        valid: n(metric(metrics, "tvs_synproxy_cookies_total", 'result="valid"')),
        invalid: n(metric(metrics, "tvs_synproxy_cookies_total", 'result="invalid"')),
      },
      frames: {
        rx: n(metric(metrics, "tvs_dataplane_frames_received_total")),
        dropped: n(metric(metrics, "tvs_dataplane_frames_total", 'verdict="drop"')),
      },
    };
  } finally {
    await exp.stop(o.keep);
  }
}

export const synflood: LabExperiment = {
  options: {
    mode: { type: "string", default: "nat", help: "the service's forwarding method: nat, fullnat or dr" },
    workers: { type: "string", default: "1", help: "tvsd's packet worker threads (--workers)" },
    scheduler: { type: "string", default: "rr", help: "the service's scheduler (stateless_syn=1 needs mh or sh)" },
    "conn-limit": { type: "string", default: "65536", help: "tvsd's --conn-limit" },
    sysctl: {
      type: "string",
      default: "drop_entry=1,secure_tcp=1,amemthresh=16384",
      help: "tvsd --sysctl settings, comma separated ('none' for none)",
    },
    rate: {
      type: "string",
      default: "flood",
      help: "spoofed SYNs per second, or flood (hping3 --flood: as fast as it goes)",
    },
    before: { type: "string", default: "3", help: "seconds before the flood" },
    flood: { type: "string", default: "10", help: "seconds of flood" },
    after: { type: "string", default: "3", help: "seconds after the flood" },
    "download-rate": { type: "string", default: "4000000", help: "the download's cap in bytes per second" },
  },
  async run(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
    const rate = str(values, "rate");
    if (rate !== "flood") positiveInt(rate, "--rate");
    const sysctlText = str(values, "sysctl");
    const sysctls = sysctlText === "none" ? [] : sysctlText.split(",").filter((s) => s !== "");
    for (const s of sysctls) if (!s.includes("=")) throw new LabOptionError(`--sysctl "${s}" is not NAME=VALUE`);
    const mode = str(values, "mode");
    if (mode !== "nat" && mode !== "dr" && mode !== "fullnat")
      throw new LabOptionError(`--mode "${mode}" must be nat, fullnat or dr`);
    const s = await runSynflood(
      {
        mode,
        workers: positiveInt(str(values, "workers"), "--workers"),
        scheduler: str(values, "scheduler"),
        connLimit: positiveInt(str(values, "conn-limit"), "--conn-limit"),
        sysctls,
        rate,
        beforeS: positiveInt(str(values, "before"), "--before"),
        floodS: positiveInt(str(values, "flood"), "--flood"),
        afterS: positiveInt(str(values, "after"), "--after"),
        dlRate: positiveInt(str(values, "download-rate"), "--download-rate"),
        keep: ctx.keep,
      },
      ctx.log,
    );
    ctx.log("\n# t(ms)  entries  tvsd RSS (KiB)");
    for (const x of s.samples.filter((_, i) => i % 4 === 0))
      ctx.log(`${String(x.t).padStart(6)}  ${String(x.entries).padStart(7)}  ${x.rssKiB}`);
    ctx.log(
      `\n# spoofed SYNs sent: ${s.floodSent}; table max ${s.maxEntries} of ${s.connLimit}; RSS ${s.rssKiB.before} → max ${s.rssKiB.max} KiB`,
    );
    for (const p of ["before", "during", "after"] as const) {
      const l = s.legit[p];
      ctx.log(
        `# ${p.padEnd(6)}: legitimate ${l.ok}/${l.tried} (${l.successPct.toFixed(2)} %, slowest ${l.slowestMs} ms), download ${(s.downloadBytesPerS[p] / 1e6).toFixed(2)} MB/s`,
      );
    }
    ctx.log(
      `# download survived: ${s.downloadSurvived ? "yes" : "no"}; drop_entry removed ${s.defense.entriesDropped}, drop_packet refused ${s.defense.packetsDropped}`,
    );
    ctx.log(
      `# ${s.mode.toUpperCase()}, ${s.workers} worker(s): frames received ${s.frames.rx}, dropped by tvs ${s.frames.dropped}, dropped by the kernel at tvsd's sockets ${s.socketDrops}; SYN cookies sent ${s.cookies.sent}, valid ${s.cookies.valid}, invalid ${s.cookies.invalid}`,
    );
    const ok = s.downloadSurvived && s.legit.during.successPct >= 99 && s.maxEntries <= s.connLimit;
    return { ok, summary: s };
  },
};
