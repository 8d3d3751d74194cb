// bench/packet: small-UDP packets per second through tvsd's packet data plane against the kernel
// across the same namespaces, in one run.
//
// DR rows: tvsd with one worker, and with two worker threads sharing the interface by the steered
// fanout and by the kernel's hash, against the kernel's own ip_forward. A C sendmmsg generator
// (bench/tools/udpgen.c, built here with gcc) in the client namespace sends 18-byte datagrams
// from 16 flows for a bounded time.
//
// Many-flow rows (with the entries each run made: conntrack's count, tvsd's connections
// scheduled): NAT and FULLNAT with 64k concurrent flows (bench/tools/udpflows.c: a raw-socket
// generator cycling over 65,536 source address:port pairs, so every packet is a lookup in a table
// of 64k live entries; the table is filled by one untimed pass first), and NAT with a new flow on
// every packet (each packet misses, is scheduled and creates an entry), side by side with the
// kernel doing the same with nft DNAT (NAT) and nft DNAT + masquerade (FULLNAT) over conntrack,
// each run with its own source addresses so no run finds another's entries.
//
// The real servers' interface counters say how many packets arrived; CPU is read from /proc
// (tvsd's own process time; for the kernel, the machine's softirq time, an upper bound since it
// includes the generator's and receivers' softirq work too). Bulk TCP throughput is a 200 MB HTTP
// download through each DR path. Needs root.
// Usage: node --import tsx bench/packet.ts [seconds] [--only dr|flows]
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { ipIn, run, runIn, sleep, spawnIn } from "../src/lab/exec.ts";
import { startNameServer } from "../src/lab/servers.ts";
import {
  buildTopology,
  CLIENT_IP,
  DIRECTOR_IP,
  REPO_ROOT,
  releaseRealServers,
  type Topology,
  VIP,
} from "../src/lab/topology.ts";

const args = process.argv.slice(2);
const onlyAt = args.indexOf("--only");
const ONLY = onlyAt >= 0 ? args[onlyAt + 1] : undefined;
if (ONLY !== undefined && ONLY !== "dr" && ONLY !== "flows") throw new Error(`--only "${ONLY}" must be dr or flows`);
const SECONDS = Number(args.find((a, i) => /^[0-9.]+$/.test(a) && args[i - 1] !== "--only") ?? 5);
const PORT = 9;
const GEN = "/tmp/tvs-bench-udpgen";
const FLOWGEN = "/tmp/tvs-bench-udpflows";
/** Concurrent flows of the many-flow rows, and packets of the new-flow-per-packet rows. */
const FLOWS = 65_536;
// Below conntrack's 262,144 together with the two 64k runs before it (their entries live 30 s).
const NEW_FLOWS = 120_000;
/** FULLNAT local addresses: two, so 64k flows fit the local ports (about 64k per address). */
const LOCAL_ADDRS = ["192.168.122.31", "192.168.122.32"];

function rxPackets(topo: Topology): Promise<number> {
  return Promise.all(
    topo.realServers.map((rs) =>
      runIn(rs.host.ns, "cat", ["/sys/class/net/eth0/statistics/rx_packets"]).then((r) => Number(r.stdout.trim())),
    ),
  ).then((xs) => xs.reduce((a, b) => a + b, 0));
}

function softirqSeconds(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  // cpu user nice system idle iowait irq softirq ...
  return (Number(cpu[6]) + Number(cpu[7])) / 100;
}

function processSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = f.slice(f.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Row {
  path: string;
  sent: number;
  /** Many-flow rows: packets that reached the director's interface. */
  atDirector?: number;
  /** Many-flow rows: entries the run made (conntrack's count, or tvsd's connections scheduled). */
  entries?: number;
  received: number;
  pps: number;
  cpuSeconds: number;
  usPerPacket: number;
}

async function blast(topo: Topology, target: string, cpu: () => number, label: string): Promise<Row> {
  const before = await rxPackets(topo);
  const cpu0 = cpu();
  const out = await runIn(topo.client.ns, GEN, [target, String(PORT), "100000000", String(SECONDS)], {
    timeoutMs: (SECONDS + 30) * 1000,
  });
  await sleep(500);
  const cpuSeconds = cpu() - cpu0;
  const received = (await rxPackets(topo)) - before;
  const [, sent, ns] = out.stdout.trim().split(" ");
  const secs = Number(ns) / 1e9;
  return {
    path: label,
    sent: Number(sent),
    received,
    pps: received / secs,
    cpuSeconds,
    usPerPacket: received ? (cpuSeconds * 1e6) / received : Number.NaN,
  };
}

async function bulk(topo: Topology, target: string, label: string): Promise<string> {
  const size = 200 * 1024 * 1024;
  const t0 = process.hrtime.bigint();
  const r = await runIn(
    topo.client.ns,
    "curl",
    ["-s", "-o", "/dev/null", "-w", "%{size_download}", "-m", "120", `http://${target}/bulk/${size}`],
    {
      timeoutMs: 150_000,
    },
  );
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  return `${label.padEnd(28)} ${((Number(r.stdout) * 8) / secs / 1e9).toFixed(2)} Gbit/s`;
}

interface FlowRow {
  path: string;
  load: string;
  row: Row;
  /** The kernel row this one is compared with (same load). */
  against?: string;
}

/** Many-flow traffic: `mode` cycle over FLOWS flows (after an untimed pass that opens them all) or new. */
async function flowBlast(
  topo: Topology,
  cpu: () => number,
  label: string,
  srcBase: string,
  mode: "cycle" | "new",
  entries: () => Promise<number>,
): Promise<Row> {
  const entries0 = await entries();
  const gen = (count: number, secs: number) =>
    runIn(topo.client.ns, FLOWGEN, [VIP, String(PORT), srcBase, String(FLOWS), mode, String(count), String(secs)], {
      timeoutMs: (secs + 30) * 1000,
    });
  if (mode === "cycle") {
    await gen(FLOWS, 30);
    await sleep(500);
  }
  const before = await rxPackets(topo);
  const atDirector0 = await directorRx(topo);
  const cpu0 = cpu();
  const out = await gen(mode === "cycle" ? 100_000_000 : NEW_FLOWS, SECONDS);
  await sleep(500);
  const cpuSeconds = cpu() - cpu0;
  const received = (await rxPackets(topo)) - before;
  const atDirector = (await directorRx(topo)) - atDirector0;
  const made = (await entries()) - entries0;
  const [, sent, ns] = out.stdout.trim().split(" ");
  const secs = Number(ns) / 1e9;
  return {
    path: label,
    sent: Number(sent),
    atDirector,
    entries: made,
    received,
    pps: received / secs,
    cpuSeconds,
    usPerPacket: received ? (cpuSeconds * 1e6) / received : Number.NaN,
  };
}

/** Packets the director's interface received (what reached it; the rest was lost on the way). */
function directorRx(topo: Topology): Promise<number> {
  return runIn(topo.director.ns, "cat", ["/sys/class/net/eth0/statistics/rx_packets"]).then((r) =>
    Number(r.stdout.trim()),
  );
}

/** A fresh tvsd on the director with one UDP service to every real server by `fwd`. */
async function startTvsd(
  topo: Topology,
  fwd: "-g" | "-m" | "--fullnat",
  extra: string[],
): Promise<{ tvsd: ReturnType<typeof spawnIn>; connsScheduled: () => Promise<number>; stop: () => Promise<void> }> {
  const sock = `/tmp/${topo.lab.prefix}-bench.sock`;
  rmSync(sock, { force: true });
  const tvsd = spawnIn(topo.director.ns, process.execPath, [
    join(REPO_ROOT, "bin", "tvsd.js"),
    ...["--dataplane", "packet", "--interface", "eth0", "--socket", sock, "--log-level", "warn"],
    ...extra,
  ]);
  tvsd.stdout?.resume();
  tvsd.stderr?.resume();
  for (let i = 0; i < 300 && !existsSync(sock); i++) await sleep(100);
  const adm = (...a: string[]) =>
    run(process.execPath, [join(REPO_ROOT, "bin", "tvsadm.js"), ...a], {
      env: { ...process.env, TVS_SOCKET: sock },
    });
  await adm("-A", "-u", `${VIP}:${PORT}`, "-s", "rr");
  if (fwd === "-g") await adm("-A", "-t", `${VIP}:80`, "-s", "rr");
  for (const rs of topo.realServers) {
    await adm("-a", "-u", `${VIP}:${PORT}`, "-r", `${rs.ip}:${PORT}`, fwd);
    if (fwd === "-g") await adm("-a", "-t", `${VIP}:80`, "-r", `${rs.ip}:80`, "-g");
  }
  await sleep(500);
  return {
    tvsd,
    connsScheduled: async () => {
      const snap = JSON.parse((await adm("-L", "-n", "--stats", "--json")).stdout) as {
        services: { stats: { conns: number } }[];
      };
      return snap.services.reduce((a, x) => a + x.stats.conns, 0);
    },
    stop: async () => {
      const exited = new Promise((r) => tvsd.once("exit", r));
      tvsd.kill("SIGTERM");
      await exited;
    },
  };
}

/** The kernel's NAT over conntrack: DNAT the VIP's UDP to the real servers (round robin), optionally masquerade. */
function nftRules(topo: Topology, masquerade: boolean): string {
  const rss = topo.realServers.map((r) => r.ip);
  const map = rss.map((ip, i) => `${i} : ${ip}`).join(", ");
  return [
    "table ip tvsbench {",
    `  chain pre { type nat hook prerouting priority dstnat; ip daddr ${VIP} udp dport ${PORT} dnat to numgen inc mod ${rss.length} map { ${map} }; }`,
    masquerade
      ? `  chain post { type nat hook postrouting priority srcnat; ip daddr { ${rss.join(", ")} } udp dport ${PORT} masquerade; }`
      : "",
    "}",
  ].join("\n");
}

async function manyFlows(topo: Topology): Promise<FlowRow[]> {
  const rows: FlowRow[] = [];
  const dir = topo.director.ns;
  // Every run its own source addresses (10.200.<run>.0 upwards): no run finds another's entries.
  let run = 0;
  const base = () => `10.200.${++run}.0`;
  const load64k = `${FLOWS / 1024}k flows`;
  const loadNew = "new flow/packet";

  // The kernel: the VIP on the director, forwarding on, nft NAT rules in the director namespace.
  for (const k of [
    "net.ipv4.ip_forward=1",
    "net.ipv4.conf.all.send_redirects=0",
    "net.ipv4.conf.eth0.send_redirects=0",
  ])
    await runIn(dir, "sysctl", ["-qw", k]);
  for (const k of ["net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.eth0.rp_filter=0"])
    await runIn(dir, "sysctl", ["-qw", k]);
  await ipIn(dir, "addr", "add", `${VIP}/32`, "dev", "eth0");
  const kernelRuns: [string, boolean, "cycle" | "new", string][] = [
    ["nft DNAT (conntrack)", false, "cycle", load64k],
    ["nft DNAT+masq (conntrack)", true, "cycle", load64k],
    ["nft DNAT (conntrack)", false, "new", loadNew],
  ];
  try {
    for (const [label, masq, mode, load] of kernelRuns) {
      await runIn(dir, "nft", ["-f", "-"], { input: nftRules(topo, masq) });
      const count = () =>
        runIn(dir, "cat", ["/proc/sys/net/netfilter/nf_conntrack_count"]).then((r) => Number(r.stdout.trim()));
      rows.push({ path: label, load, row: await flowBlast(topo, softirqSeconds, label, base(), mode, count) });
      await runIn(dir, "nft", ["delete", "table", "ip", "tvsbench"]);
    }
  } finally {
    await runIn(dir, "nft", ["delete", "table", "ip", "tvsbench"]).catch(() => undefined);
    await ipIn(dir, "addr", "del", `${VIP}/32`, "dev", "eth0").catch(() => undefined);
    await runIn(dir, "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);
  }

  // tvsd: a fresh daemon per row (an empty connection table), one worker.
  const tvsdRuns: [string, "-m" | "--fullnat", "cycle" | "new", string, string][] = [
    ["tvsd NAT", "-m", "cycle", load64k, "nft DNAT (conntrack)"],
    ["tvsd FULLNAT", "--fullnat", "cycle", load64k, "nft DNAT+masq (conntrack)"],
    ["tvsd NAT", "-m", "new", loadNew, "nft DNAT (conntrack)"],
  ];
  for (const [label, fwd, mode, load, against] of tvsdRuns) {
    const extra = fwd === "--fullnat" ? ["--local-addrs", LOCAL_ADDRS.join(",")] : [];
    const t = await startTvsd(topo, fwd, extra);
    try {
      const pid = t.tvsd.pid!;
      rows.push({
        path: label,
        load,
        against,
        row: await flowBlast(topo, () => processSeconds(pid), label, base(), mode, t.connsScheduled),
      });
    } finally {
      await t.stop();
    }
  }
  return rows;
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/packet needs root (network namespaces)");
  if (!existsSync(GEN)) execFileSync("gcc", ["-O2", "-o", GEN, join(REPO_ROOT, "bench", "tools", "udpgen.c")]);
  if (!existsSync(FLOWGEN))
    execFileSync("gcc", ["-O2", "-o", FLOWGEN, join(REPO_ROOT, "bench", "tools", "udpflows.c")]);
  const topo = await buildTopology("dr", 2);
  const children = topo.realServers.map((rs) => startNameServer(rs.host.ns, rs.name, [80], 5353));
  const rows: Row[] = [];
  const bulkLines: string[] = [];
  let flowRows: FlowRow[] = [];
  let tvsd: Awaited<ReturnType<typeof startTvsd>> | undefined;
  try {
    await sleep(1500);
    if (ONLY !== "flows") {
      // 1. The kernel forwarding: the client routes rs1's address through the director.
      const rs1 = topo.realServers[0]!;
      await runIn(topo.director.ns, "sysctl", ["-qw", "net.ipv4.ip_forward=1"]);
      await runIn(topo.director.ns, "sysctl", ["-qw", "net.ipv4.conf.all.send_redirects=0"]);
      await runIn(topo.director.ns, "sysctl", ["-qw", "net.ipv4.conf.eth0.send_redirects=0"]);
      await ipIn(topo.client.ns, "route", "add", `${rs1.ip}/32`, "via", DIRECTOR_IP);
      rows.push(await blast(topo, rs1.ip, softirqSeconds, "kernel ip_forward"));
      bulkLines.push(await bulk(topo, rs1.ip, "kernel ip_forward"));
      await ipIn(topo.client.ns, "route", "del", `${rs1.ip}/32`, "via", DIRECTOR_IP);
      await runIn(topo.director.ns, "sysctl", ["-qw", "net.ipv4.ip_forward=0"]);

      // 2. tvsd, DR: one worker on the main thread, then two worker threads (steered fanout, and
      // the kernel's PACKET_FANOUT_HASH), each a fresh tvsd with the same services.
      const variants: [string, string[]][] = [
        ["tvsd DR (1 worker)", []],
        ["tvsd DR (2 workers, cbpf)", ["--workers", "2"]],
        ["tvsd DR (2 workers, hash)", ["--workers", "2", "--fanout", "hash"]],
      ];
      for (const [label, extra] of variants) {
        tvsd = await startTvsd(topo, "-g", extra);
        // `ip netns exec` execs the program, so the child's PID is tvsd's node process (its CPU
        // time includes every worker thread).
        const pid = tvsd.tvsd.pid!;
        rows.push(await blast(topo, VIP, () => processSeconds(pid), label));
        bulkLines.push(await bulk(topo, VIP, label));
        await tvsd.stop();
        tvsd = undefined;
      }
    }
    if (ONLY !== "dr") flowRows = await manyFlows(topo);
  } finally {
    if (tvsd) await tvsd.stop();
    for (const c of children) c.kill("SIGTERM");
    await sleep(500);
    await releaseRealServers(topo);
    await topo.lab.destroy();
  }
  const load = readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
  console.log(`\nload average at the end: ${load} (the machine is shared: compare ratios, not absolute figures)`);
  if (rows.length > 0) {
    const k = rows[0]!;
    console.log(
      `\nsmall UDP (18-byte payload), ${SECONDS} s each, generator in ${topo.client.ns.replace(/-client$/, "")}-client → ${CLIENT_IP} side`,
    );
    console.log(
      "path                          sent        received    pps        CPU s    µs CPU/pkt  ratio to kernel pps",
    );
    for (const r of rows)
      console.log(
        `${r.path.padEnd(28)}  ${String(r.sent).padEnd(10)}  ${String(r.received).padEnd(10)}  ${Math.round(r.pps).toString().padEnd(9)}  ${r.cpuSeconds.toFixed(2).padEnd(7)}  ${r.usPerPacket.toFixed(2).padEnd(10)}  ${(r.pps / k.pps).toFixed(2)}`,
      );
    console.log("\nbulk TCP, 200 MB HTTP download");
    for (const l of bulkLines) console.log(l);
  }
  if (flowRows.length > 0) {
    console.log(
      `\nmany flows, small UDP (18-byte payload), ${SECONDS} s each (new flow/packet: at most ${NEW_FLOWS} packets); kernel rows: nft NAT over conntrack in the director namespace`,
    );
    console.log(
      "path                        load              entries   sent        at director  received    pps        CPU s    µs CPU/pkt  ratio to nft pps  ratio to nft µs/pkt",
    );
    for (const f of flowRows) {
      const r = f.row;
      const ref = flowRows.find((x) => x.against === undefined && x.path === f.against && x.load === f.load)?.row;
      const ratio = ref ? (r.pps / ref.pps).toFixed(2) : "";
      const cpuRatio = ref ? (r.usPerPacket / ref.usPerPacket).toFixed(2) : "";
      console.log(
        `${f.path.padEnd(26)}  ${f.load.padEnd(16)}  ${String(r.entries ?? "").padEnd(8)}  ${String(r.sent).padEnd(10)}  ${String(r.atDirector ?? "").padEnd(11)}  ${String(r.received).padEnd(10)}  ${Math.round(r.pps).toString().padEnd(9)}  ${r.cpuSeconds.toFixed(2).padEnd(7)}  ${r.usPerPacket.toFixed(2).padEnd(10)}  ${ratio.padEnd(16)}  ${cpuRatio}`,
      );
    }
  }
}

await main();
