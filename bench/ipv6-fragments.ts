// bench/ipv6-fragments: IPv6 UDP datagrams larger than the path MTU through a NAT director, tvsd's
// packet plane (1 and 2 workers: reassembly in userspace, handoff to the flow's worker, cut again)
// against the kernel doing the same with nft ip6 DNAT over conntrack (nf_defrag_ipv6 reassembles,
// ip6_fragment cuts again), in one run; and 512-byte datagrams (not fragmented) through each, so
// the cost of fragments shows as a ratio on each system.
//
// Network: client (fd00:6a::70) → director (fd00:6a::30, fd00:6b::30; the VIP fd00:6a::22) → real
// server (fd00:6b::45, default route via the director), in namespaces named "ipv6b…". A node
// generator in the client sends from 8 sockets (8 flows) for a bounded time; the real server's
// kernel counts what arrived (Ip6InDelivers in its /proc/net/snmp6: one per datagram, after its
// own reassembly). CPU: tvsd's process time (utime + stime of all its threads); for the kernel,
// the machine's softirq time over the run (an upper bound: it includes the generator's and the
// real server's softirq work). Needs root. Usage: node --import tsx bench/ipv6-fragments.ts [seconds]
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ipIn, run, runIn, sleep, spawnIn } from "../src/lab/exec.ts";
import { Lab } from "../src/lab/netns.ts";
import { REPO_ROOT } from "../src/lab/topology.ts";

const SECONDS = Number(process.argv[2] ?? 3);
const TVSD = join(REPO_ROOT, "bin", "tvsd.js");
const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");
const CLIENT6 = "fd00:6a::70";
const DIRECTOR_A = "fd00:6a::30";
const VIP6 = "fd00:6a::22";
const DIRECTOR_B = "fd00:6b::30";
const RS6 = "fd00:6b::45";

const SINK_JS = `
const s = require("node:dgram").createSocket({ type: "udp6", ipv6Only: true });
s.on("message", () => {});
s.bind(5300, "::");
process.on("SIGTERM", () => process.exit(0));
`;

/** Send SIZE-byte datagrams to VIP:53 from 8 sockets, 16 in flight each, for SECS seconds; print how many. */
const GEN_JS = `
const dgram = require("node:dgram");
const [vip, size, secs] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
const data = Buffer.alloc(size, 0x5a);
const end = Date.now() + secs * 1000;
let sent = 0, live = 0;
const socks = Array.from({ length: 8 }, () => dgram.createSocket({ type: "udp6", ipv6Only: true }));
const done = () => { if (--live === 0) { console.log(sent); for (const s of socks) s.close(); } };
for (const s of socks) for (let k = 0; k < 16; k++) {
  live++;
  const loop = () => (Date.now() >= end ? done() : s.send(data, 53, vip, (e) => { if (!e) sent++; loop(); }));
  loop();
}
`;

async function delivered(ns: string): Promise<number> {
  const t = (await runIn(ns, "cat", ["/proc/net/snmp6"])).stdout;
  return Number(/Ip6InDelivers\s+(\d+)/.exec(t)?.[1] ?? 0);
}

function softirqSeconds(): number {
  const cpu = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  return Number(cpu[7]) / 100; // softirq, in USER_HZ
}

function processSeconds(pid: number): number {
  const st = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) / 100; // utime + stime (all threads)
}

/** The real pid of a process started through `ip netns exec` (it execs, so it is the child's own). */
async function waitDelivery(lab: Lab, rsNs: string, clientNs: string): Promise<void> {
  const before = await delivered(rsNs);
  for (let i = 0; i < 100; i++) {
    await runIn(clientNs, process.execPath, ["-e", GEN_JS, VIP6, "100", "0.05"]).catch(() => undefined);
    if ((await delivered(rsNs)) > before + 5) return;
    await sleep(200);
  }
  throw new Error(`Nothing reaches the real server through the director (lab ${lab.prefix})`);
}

interface Row {
  path: string;
  size: number;
  sent: number;
  got: number;
  cpu: number;
}

async function measure(path: string, size: number, clientNs: string, rsNs: string, cpu: () => number): Promise<Row> {
  const before = await delivered(rsNs);
  const c0 = cpu();
  const r = await runIn(clientNs, process.execPath, ["-e", GEN_JS, VIP6, String(size), String(SECONDS)], {
    timeoutMs: (SECONDS + 20) * 1000,
  });
  await sleep(300);
  const c1 = cpu();
  return { path, size, sent: Number(r.stdout.trim()), got: (await delivered(rsNs)) - before, cpu: c1 - c0 };
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/ipv6-fragments needs root (network namespaces)");
  const lab = new Lab(`ipv6b${randomBytes(2).toString("hex")}`);
  const children: ChildProcess[] = [];
  const rows: Row[] = [];
  const notes: string[] = [];
  try {
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const director = await lab.addHost("director");
    const rs = await lab.addHost("rs1");
    for (const h of [client, director, rs])
      for (const dev of ["all", "default", "lo", "eth0"])
        await runIn(h.ns, "sysctl", ["-qw", `net.ipv6.conf.${dev}.disable_ipv6=0`]);
    await ipIn(client.ns, "-6", "addr", "add", `${CLIENT6}/64`, "dev", "eth0", "nodad");
    await ipIn(director.ns, "-6", "addr", "add", `${DIRECTOR_A}/64`, "dev", "eth0", "nodad");
    await ipIn(director.ns, "-6", "addr", "add", `${DIRECTOR_B}/64`, "dev", "eth0", "nodad");
    await ipIn(rs.ns, "-6", "addr", "add", `${RS6}/64`, "dev", "eth0", "nodad");
    await ipIn(rs.ns, "-6", "route", "add", "default", "via", DIRECTOR_B, "dev", "eth0");
    const sink = spawnIn(rs.ns, process.execPath, ["-e", SINK_JS]);
    children.push(sink);

    for (const workers of [1, 2]) {
      const socket = join(tmpdir(), `${lab.prefix}-tvsd.sock`);
      const args = [TVSD, "--dataplane", "packet", "--interface", "eth0", "--socket", socket];
      if (workers > 1) args.push("--workers", String(workers));
      const tvsd = spawnIn(director.ns, process.execPath, args);
      tvsd.stdout?.resume();
      tvsd.stderr?.resume();
      children.push(tvsd);
      for (let i = 0; i < 300 && !existsSync(socket); i++) await sleep(100);
      const env = { ...process.env, TVS_SOCKET: socket };
      await run(process.execPath, [TVSADM, "-A", "-u", `[${VIP6}]:53`, "-s", "rr"], { env });
      await run(process.execPath, [TVSADM, "-a", "-u", `[${VIP6}]:53`, "-r", `[${RS6}]:5300`, "-m"], { env });
      await waitDelivery(lab, rs.ns, client.ns);
      const pid = tvsd.pid!;
      for (const size of [4000, 512]) {
        rows.push(await measure(`tvsd NAT, ${workers} worker(s)`, size, client.ns, rs.ns, () => processSeconds(pid)));
        // Where the rest went: frames the pipeline saw against fragments sent, and reassembly's own losses.
        const st = (await run(process.execPath, [join(REPO_ROOT, "bin", "tvs.js"), "status"], { env })).stdout;
        notes.push(
          `tvsd ${workers} worker(s) after ${size}-byte datagrams: ${st
            .split("\n")
            .filter((l) => /frames rx|IPv6 reassembly/.test(l))
            .map((l) => l.trim())
            .join("; ")}`,
        );
      }
      process.kill(pid, "SIGTERM");
      await new Promise((r) => tvsd.once("exit", r));
    }

    // The kernel: the VIP on the director, forwarding on, nft ip6 DNAT over conntrack.
    await runIn(director.ns, "sysctl", ["-qw", "net.ipv6.conf.all.forwarding=1"]);
    await ipIn(director.ns, "-6", "addr", "add", `${VIP6}/128`, "dev", "eth0", "nodad");
    await runIn(director.ns, "nft", ["-f", "-"], {
      input: `table ip6 ipv6bench {\n  chain pre {\n    type nat hook prerouting priority -100;\n    ip6 daddr ${VIP6} udp dport 53 dnat to [${RS6}]:5300\n  }\n}\n`,
    });
    await waitDelivery(lab, rs.ns, client.ns);
    for (const size of [4000, 512])
      rows.push(await measure("nft ip6 DNAT (conntrack)", size, client.ns, rs.ns, softirqSeconds));
  } finally {
    for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGTERM");
    await sleep(300);
    await lab.destroy();
  }

  for (const n of notes) console.log(n);
  const kernel = (size: number) => rows.find((r) => r.path.startsWith("nft") && r.size === size)!;
  const rate = (r: Row) => r.got / SECONDS;
  const us = (r: Row) => (r.got > 0 ? (r.cpu / r.got) * 1e6 : Number.NaN);
  console.log(
    `\nIPv6 NAT of UDP datagrams, ${SECONDS} s each, 8 flows; a 4000-byte datagram is 3 fragments on the wire each way in`,
  );
  console.log(
    "path                          size   sent      delivered  datagrams/s  CPU s   µs CPU/datagram  ratio to kernel dg/s  4000 vs 512 dg/s",
  );
  for (const r of rows) {
    const small = rows.find((x) => x.path === r.path && x.size === 512)!;
    console.log(
      [
        r.path.padEnd(29),
        String(r.size).padEnd(6),
        String(r.sent).padEnd(9),
        String(r.got).padEnd(10),
        rate(r).toFixed(0).padEnd(12),
        r.cpu.toFixed(2).padEnd(7),
        us(r).toFixed(1).padEnd(16),
        (rate(r) / rate(kernel(r.size))).toFixed(2).padEnd(21),
        r.size === 4000 ? (rate(r) / rate(small)).toFixed(2) : "",
      ].join(" "),
    );
  }
}

await main();
