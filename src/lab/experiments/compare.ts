// `tvs lab compare` (seed 004's comparison of the four forwarding methods, measured): NAT, DR, TUN
// and FULLNAT run in turn on the same topology and the table is filled from what each run shows:
// - the client address the real server sees (its web server reports the peer of the connection);
// - whether replies pass the director: tvsd's OutPkts for the service and a capture on the
//   director's interface of packets from the real servers to the client (or the local address);
// - whether port mapping works: VIP:8000 → RS:8080 is configured with the method's flag and the
//   client asks VIP:8000 (tvsadm, like ipvsadm, keeps the service's port for -g and -i);
// - what the real server needed, read back from its namespace: a route to the client through the
//   director, the VIP on lo with arp_ignore/arp_announce, an IPIP decapsulator;
// - bulk throughput: one download through the VIP, timed at the client;
// - director CPU: tvsd's user+system time during that download (from /proc), as a share of one
//   core and per MB.

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { runIn } from "../exec.ts";
import { Experiment, FORWARD_FLAG } from "../experiment.ts";
import type { LabContext, LabExperiment, LabOutcome, LabValues } from "../lab-experiment.ts";
import { positiveInt, str } from "../option-values.ts";
import { bulkBody, sha256 } from "../servers.ts";
import { HTTP_PORT, LAB_MODES, type LabMode, MAPPED_PORT, TVS_BIN } from "../topology.ts";

export const compare: LabExperiment = {
  options: {
    requests: { type: "string", default: "10", help: "requests per mode for the reply-path check" },
    "bulk-mb": { type: "string", default: "50", help: "size of the timed download per mode, in MB" },
  },
  run,
};

/** The virtual port mapped onto the real servers' MAPPED_PORT. */
const MAPPING_VPORT = 8000;

export interface ModeMeasurement {
  mode: LabMode;
  /** The client address the real server's web server saw. */
  clientAddressAtRealServer: string;
  repliesPassDirector: boolean;
  directorOutPackets: number;
  capturedReplyPackets: number;
  portMapping: boolean;
  /** What `-L -n` lists for the mapped service's destination (ADDR:PORT). */
  portMappingListed: string;
  realServerNeeds: string[];
  bulkBytes: number;
  bulkIntact: boolean;
  bulkSeconds: number;
  bulkMBps: number;
  /** tvsd's CPU seconds during the download. */
  directorCpuSeconds: number;
  /** CPU seconds over wall seconds (1 = one core busy). */
  directorCpuShare: number;
  directorCpuMsPerMB: number;
}

function clockTicks(): number {
  try {
    return Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return 100;
  }
}

/** utime + stime of a process, in seconds (/proc/PID/stat fields 14 and 15). */
function cpuSeconds(pid: number, ticks: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / ticks;
}

/** What the real server needed, read back from its namespace. */
async function realServerNeeds(exp: Experiment): Promise<string[]> {
  const rs = exp.topo.realServers[0];
  if (!rs) return [];
  const { client, director, vip } = exp.topo.plan;
  const needs: string[] = [];
  const route = (await runIn(rs.host.ns, "ip", ["-4", "route", "get", client])).stdout;
  if (route.includes(`via ${director}`)) needs.push(`route to the client via ${director}`);
  const lo = (await runIn(rs.host.ns, "ip", ["-4", "-o", "addr", "show", "dev", "lo"])).stdout;
  if (lo.includes(` ${vip}/32 `)) {
    const sysctl = async (k: string) =>
      (await runIn(rs.host.ns, "cat", [`/proc/sys/net/ipv4/conf/all/${k}`])).stdout.trim();
    needs.push(`VIP on lo, arp_ignore=${await sysctl("arp_ignore")} arp_announce=${await sysctl("arp_announce")}`);
  }
  const status = JSON.parse(
    (await runIn(rs.host.ns, process.execPath, [TVS_BIN, "realserver", "status", "--json"])).stdout,
  ) as { configured: { vip: string; mode: string; tunDevice?: string; decapPid?: number }[] };
  const tunnel = status.configured.find((s) => s.vip === vip && s.mode === "tun");
  if (tunnel) {
    needs.push(
      tunnel.decapPid !== undefined
        ? `IPIP decapsulation (userspace, ${tunnel.tunDevice ?? "TUN device"})`
        : "IPIP decapsulation (kernel tunl0)",
    );
  }
  if (needs.length === 0) needs.push("nothing");
  return needs;
}

async function measure(
  mode: LabMode,
  requests: number,
  bulkBytes: number,
  ctx: LabContext,
  namespaces: string[],
): Promise<ModeMeasurement> {
  ctx.log(`\n## ${mode.toUpperCase()}`);
  const exp = await Experiment.start({ mode, keep: ctx.keep, log: ctx.log, addresses: ctx.addresses });
  namespaces.push(...exp.topo.lab.hosts().map((h) => h.ns));
  try {
    const peer = await exp.request("/peer");
    ctx.log(`# the real server saw the client as ${peer || "(no answer)"}`);
    const { sequence, captured } = await exp.curlLoop(requests);
    const snap = JSON.parse(await exp.tvsadm(["-L", "-n", "--stats", "--json"], true)) as {
      services: { key: { protocol?: string; port?: number }; stats: { outPkts: number } }[];
    };
    const outPkts =
      snap.services.find((s) => s.key.protocol === "tcp" && s.key.port === HTTP_PORT)?.stats.outPkts ?? -1;
    const passes = outPkts > 0 || captured > 0;
    ctx.log(`# replies through the director: ${passes ? "yes" : "no"} (tvsd OutPkts ${outPkts}, captured ${captured})`);
    if (sequence.some((s) => s === "")) ctx.log("# some requests failed");

    // Port mapping: VIP:8000 → RS:8080 with this method's flag.
    const rs1 = exp.topo.realServers[0];
    const mapped = `${exp.vip}:${MAPPING_VPORT}`;
    await exp.tvsadm(["-A", "-t", mapped, "-s", "rr"]);
    await exp.tvsadm(["-a", "-t", mapped, "-r", `${rs1?.ip}:${MAPPED_PORT}`, FORWARD_FLAG[mode]]);
    const table = await exp.tvsadm(["-L", "-n", "-t", mapped]);
    ctx.log(table.replace(/\n$/, ""));
    const listed =
      /-> (\S+)/.exec(table.split("\n").find((l) => l.includes("->") && !l.includes("RemoteAddress")) ?? "")?.[1] ?? "";
    const answer = await exp.request("/", MAPPING_VPORT, exp.vip, 2);
    const portMapping = answer === rs1?.name && listed.endsWith(`:${MAPPED_PORT}`);
    ctx.log(`# curl ${mapped}: ${answer || "(no answer)"}; port mapping: ${portMapping ? "yes" : "no"}`);

    const needs = await realServerNeeds(exp);
    ctx.log(`# the real server needed: ${needs.join("; ")}`);

    // Bulk: one download, timed at the client; tvsd's CPU time over it.
    const pid = exp.tvsdProcess?.pid;
    const ticks = clockTicks();
    const cpu0 = pid !== undefined ? cpuSeconds(pid, ticks) : 0;
    const t0 = performance.now();
    const body = await exp.fetchBytes(`/bulk/${bulkBytes}`);
    const seconds = (performance.now() - t0) / 1000;
    const cpu = pid !== undefined ? cpuSeconds(pid, ticks) - cpu0 : Number.NaN;
    const intact = body.length === bulkBytes && sha256(body) === sha256(bulkBody(bulkBytes));
    const mb = bulkBytes / 1e6;
    const m: ModeMeasurement = {
      mode,
      clientAddressAtRealServer: peer,
      repliesPassDirector: passes,
      directorOutPackets: outPkts,
      capturedReplyPackets: captured,
      portMapping,
      portMappingListed: listed,
      realServerNeeds: needs,
      bulkBytes,
      bulkIntact: intact,
      bulkSeconds: round(seconds, 3),
      bulkMBps: round(mb / seconds, 1),
      directorCpuSeconds: round(cpu, 2),
      directorCpuShare: round(cpu / seconds, 2),
      directorCpuMsPerMB: round((1000 * cpu) / mb, 1),
    };
    ctx.log(
      `# ${mb} MB download: ${m.bulkMBps} MB/s${intact ? "" : " (DAMAGED)"}, tvsd CPU ${m.directorCpuSeconds} s (${Math.round(100 * m.directorCpuShare)}% of a core, ${m.directorCpuMsPerMB} ms/MB)`,
    );
    return m;
  } finally {
    await exp.stop(ctx.keep);
  }
}

function round(v: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(v * f) / f;
}

/** The seed's comparison table: one row per property, one column per method. */
export function comparisonTable(ms: readonly ModeMeasurement[], plan: { client: string }): string {
  const rows: [string, (m: ModeMeasurement) => string][] = [
    [
      "client address at the RS",
      (m) =>
        m.clientAddressAtRealServer === plan.client
          ? `client's (${m.clientAddressAtRealServer})`
          : m.clientAddressAtRealServer
            ? `director's local (${m.clientAddressAtRealServer})`
            : "(no answer)",
    ],
    [
      "replies via the director",
      (m) => `${m.repliesPassDirector ? "yes" : "no"} (out ${m.directorOutPackets}, cap ${m.capturedReplyPackets})`,
    ],
    ["port mapping", (m) => (m.portMapping ? "yes" : `no (lists ${m.portMappingListed.replace(/^.*:/, ":")})`)],
    ["bulk download", (m) => `${m.bulkMBps} MB/s${m.bulkIntact ? "" : " DAMAGED"}`],
    ["director CPU", (m) => `${Math.round(100 * m.directorCpuShare)}% (${m.directorCpuMsPerMB} ms/MB)`],
  ];
  const needRows = Math.max(...ms.map((m) => m.realServerNeeds.length));
  for (let i = 0; i < needRows; i++)
    rows.splice(3 + i, 0, [i === 0 ? "real server needs" : "", (m) => m.realServerNeeds[i] ?? ""]);
  const cells = rows.map(([label, f]) => [label, ...ms.map(f)]);
  const head = ["", ...ms.map((m) => m.mode.toUpperCase())];
  const widths = head.map((h, c) => Math.max(h.length, ...cells.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) =>
    r
      .map((v, c) => v.padEnd(widths[c] ?? 0))
      .join("  ")
      .trimEnd();
  return [line(head), ...cells.map(line)].join("\n");
}

async function run(values: LabValues, ctx: LabContext): Promise<LabOutcome> {
  const requests = positiveInt(str(values, "requests"), "--requests");
  const bulkMb = positiveInt(str(values, "bulk-mb"), "--bulk-mb");
  const ms: ModeMeasurement[] = [];
  const namespaces: string[] = [];
  for (const mode of LAB_MODES) ms.push(await measure(mode, requests, bulkMb * 1_000_000, ctx, namespaces));
  const table = comparisonTable(ms, ctx.addresses);
  ctx.log(`\n# the comparison, measured\n${table}`);
  const expected: Record<LabMode, { passes: boolean; mapping: boolean; seesClient: boolean }> = {
    nat: { passes: true, mapping: true, seesClient: true },
    dr: { passes: false, mapping: false, seesClient: true },
    tun: { passes: false, mapping: false, seesClient: true },
    fullnat: { passes: true, mapping: true, seesClient: false },
  };
  const ok = ms.every((m) => {
    const e = expected[m.mode];
    return (
      m.bulkIntact &&
      m.repliesPassDirector === e.passes &&
      m.portMapping === e.mapping &&
      (m.clientAddressAtRealServer === ctx.addresses.client) === e.seesClient
    );
  });
  return { ok, summary: { experiment: "compare", modes: ms, table, namespaces } };
}
