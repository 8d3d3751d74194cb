// bench/packet: small-UDP packets per second in DR mode through tvsd's packet data plane against
// the kernel's own ip_forward across the same namespaces, in one run: tvsd with one worker, and
// with two worker threads sharing the interface by the steered fanout and by the kernel's hash. A C sendmmsg generator
// (bench/tools/udpgen.c, built here with gcc) in the client namespace sends 18-byte datagrams
// for a bounded time; the real servers' interface counters say how many arrived; CPU is read from
// /proc (tvsd's own process time; for the kernel, the machine's softirq time, an upper bound since
// it includes the generator's and receivers' softirq work too). Bulk TCP throughput is a 200 MB
// HTTP download through each path. Needs root. Usage: node --import tsx bench/packet.ts [seconds]
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

const SECONDS = Number(process.argv[2] ?? 5);
const PORT = 9;
const GEN = "/tmp/tvs-bench-udpgen";

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

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/packet needs root (network namespaces)");
  if (!existsSync(GEN)) execFileSync("gcc", ["-O2", "-o", GEN, join(REPO_ROOT, "bench", "tools", "udpgen.c")]);
  const topo = await buildTopology("dr", 2);
  const children = topo.realServers.map((rs) => startNameServer(rs.host.ns, rs.name, [80], 5353));
  const rows: Row[] = [];
  const bulkLines: string[] = [];
  let tvsd: ReturnType<typeof spawnIn> | undefined;
  try {
    await sleep(1500);
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
      const sock = `/tmp/${topo.lab.prefix}-bench.sock`;
      rmSync(sock, { force: true });
      tvsd = spawnIn(topo.director.ns, process.execPath, [
        join(REPO_ROOT, "bin", "tvsd.js"),
        "--dataplane",
        "packet",
        "--interface",
        "eth0",
        "--socket",
        sock,
        "--log-level",
        "warn",
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
      await adm("-A", "-t", `${VIP}:80`, "-s", "rr");
      for (const rs of topo.realServers) {
        await adm("-a", "-u", `${VIP}:${PORT}`, "-r", `${rs.ip}:${PORT}`, "-g");
        await adm("-a", "-t", `${VIP}:80`, "-r", `${rs.ip}:80`, "-g");
      }
      await sleep(500);
      const pid = tvsd.pid!;
      // `ip netns exec` execs the program, so the child's PID is tvsd's node process (its CPU
      // time includes every worker thread).
      rows.push(await blast(topo, VIP, () => processSeconds(pid), label));
      bulkLines.push(await bulk(topo, VIP, label));
      const exited = new Promise((r) => tvsd?.once("exit", r));
      tvsd.kill("SIGTERM");
      await exited;
      tvsd = undefined;
    }
  } finally {
    if (tvsd?.pid) tvsd.kill("SIGTERM");
    for (const c of children) c.kill("SIGTERM");
    await sleep(500);
    await releaseRealServers(topo);
    await topo.lab.destroy();
  }
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

await main();
