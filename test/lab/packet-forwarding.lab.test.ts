// Real TCP through the packet plane: a client, a director and real servers in network namespaces
// on one bridge; the director runs src/dataplane/packet/standalone.ts (the packet plane without
// tvsd) on its eth0. DR (real server owns the VIP on lo, replies straight to the client), NAT
// (real server's gateway is the director; port 80 → 8080) and FULLNAT (real server replies to the
// director's local address) each serve HTTP requests from the client's kernel TCP stack, and
// 4 MB each way (veth TSO: 64 KB super-frames carried with PACKET_VNET_HDR). Needs
// root and the built addon; skips with the reason otherwise.

import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { test } from "node:test";
import type { StandaloneConfig } from "../../src/dataplane/packet/standalone.ts";
import { ipIn, isRoot, runIn, sleep, spawnIn } from "../../src/lab/exec.ts";
import { Lab } from "../../src/lab/netns.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, raw sockets)";
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

const SERVER_JS = `
const http = require("node:http");
const name = process.argv[1];
for (const port of process.argv.slice(2).map(Number))
  http.createServer((q, s) => {
    s.setHeader("connection", "close");
    if (q.url === "/big") return s.end(Buffer.alloc(4 << 20, 0x61));
    let n = 0;
    q.on("data", (d) => { n += d.length; });
    q.on("end", () => s.end(q.method === "POST" ? String(n) : name + ":" + port));
  }).listen(port, "0.0.0.0");
`;

function waitForLine(p: ChildProcess, line: string, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = "";
    let err = "";
    const timer = setTimeout(() => reject(new Error(`No "${line}" within ${ms} ms: ${out} ${err}`)), ms);
    p.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes(line)) {
        clearTimeout(timer);
        resolve();
      }
    });
    p.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    p.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`Director exited (${code}): ${out} ${err}`));
    });
  });
}

test(
  "DR, NAT and FULLNAT carry real TCP through the packet plane",
  { skip: skip ?? false, timeout: 90_000 },
  async (t) => {
    const lab = new Lab();
    const procs: ChildProcess[] = [];
    t.after(async () => {
      for (const p of procs) if (p.pid && p.exitCode === null) process.kill(p.pid, "SIGKILL");
      await lab.destroy();
    });
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const dir = await lab.addHost("dir");
    const rs1 = await lab.addHost("rs1"); // DR and FULLNAT
    const rs2 = await lab.addHost("rs2"); // NAT
    await ipIn(client.ns, "addr", "add", "10.80.0.100/24", "dev", "eth0");
    await ipIn(client.ns, "route", "add", "10.79.0.0/24", "dev", "eth0");
    await ipIn(dir.ns, "addr", "add", "10.79.0.1/24", "dev", "eth0");
    await ipIn(dir.ns, "route", "add", "10.80.0.0/24", "dev", "eth0");
    await ipIn(rs1.ns, "addr", "add", "10.79.0.21/24", "dev", "eth0");
    await ipIn(rs1.ns, "route", "add", "10.80.0.0/24", "dev", "eth0");
    await ipIn(rs1.ns, "addr", "add", "10.79.0.10/32", "dev", "lo");
    for (const [k, v] of [
      ["net.ipv4.conf.all.arp_ignore", "1"],
      ["net.ipv4.conf.all.arp_announce", "2"],
    ])
      await runIn(rs1.ns, "sysctl", ["-qw", `${k}=${v}`]);
    await ipIn(rs2.ns, "addr", "add", "10.79.0.22/24", "dev", "eth0");
    await ipIn(rs2.ns, "route", "add", "default", "via", "10.79.0.1");

    procs.push(spawnIn(rs1.ns, process.execPath, ["-e", SERVER_JS, "rs1", "80", "8081"]));
    procs.push(spawnIn(rs2.ns, process.execPath, ["-e", SERVER_JS, "rs2", "8080"]));

    const cfg: StandaloneConfig = {
      interface: "eth0",
      localAddrs: ["10.79.0.50"],
      services: [
        {
          protocol: "tcp",
          vip: "10.79.0.10",
          port: 80,
          scheduler: "rr",
          dests: [{ addr: "10.79.0.21", port: 80, fwd: "droute" }],
        },
        {
          protocol: "tcp",
          vip: "10.79.0.11",
          port: 80,
          scheduler: "rr",
          dests: [{ addr: "10.79.0.22", port: 8080, fwd: "masq" }],
        },
        {
          protocol: "tcp",
          vip: "10.79.0.12",
          port: 80,
          scheduler: "rr",
          dests: [{ addr: "10.79.0.21", port: 8081, fwd: "fullnat" }],
        },
      ],
    };
    const director = spawnIn(dir.ns, process.execPath, [
      "--import",
      "tsx",
      "src/dataplane/packet/standalone.ts",
      JSON.stringify(cfg),
    ]);
    procs.push(director);
    await waitForLine(director, "ready", 30_000);
    // The guard is in place in the director's namespace.
    const nft = await runIn(dir.ns, "nft", ["list", "table", "netdev", "tvs_eth0"]);
    assert.match(nft.stdout, /10\.79\.0\.10/);
    await sleep(300); // servers listening

    const curl = async (vip: string) => {
      const r = await runIn(client.ns, "curl", ["-s", "--max-time", "5", `http://${vip}/`]).catch(
        (e: { stdout?: string; stderr?: string; message: string }) => ({ stdout: `ERR ${e.message}`, stderr: "" }),
      );
      return r.stdout.trim();
    };
    for (let i = 0; i < 3; i++) {
      assert.equal(await curl("10.79.0.10"), "rs1:80", "DR");
      assert.equal(await curl("10.79.0.11"), "rs2:8080", "NAT");
      assert.equal(await curl("10.79.0.12"), "rs1:8081", "FULLNAT");
    }

    // Bulk both ways: TSO/GRO super-frames (up to 64 KB) pass through the vnet header.
    for (const vip of ["10.79.0.10", "10.79.0.11", "10.79.0.12"]) {
      const down = await runIn(client.ns, "curl", [
        "-s",
        "--max-time",
        "20",
        "-o",
        "/dev/null",
        "-w",
        "%{size_download}",
        `http://${vip}/big`,
      ]);
      assert.equal(down.stdout.trim(), String(4 << 20), `download through ${vip}`);
      const up = await runIn(client.ns, "sh", [
        "-c",
        `head -c ${4 << 20} /dev/zero | curl -s --max-time 20 -H 'Expect:' --data-binary @- http://${vip}/`,
      ]);
      assert.equal(up.stdout.trim(), String(4 << 20), `upload through ${vip}`);
    }

    // Stop the director and read its counters and table.
    const done = new Promise<string>((resolve) => {
      let out = "";
      director.stdout?.on("data", (d: Buffer) => {
        out += d.toString();
      });
      director.once("exit", () => resolve(out));
    });
    process.kill(director.pid!, "SIGTERM");
    const report = JSON.parse((await done).split("\n").find((l) => l.startsWith("{"))!) as {
      counters: {
        rx: number;
        forwarded: number;
        replied: number;
        consumed: number;
        ignored: number;
        dropped: number;
        arpReplies: number;
      };
      conns: { fwd: string; state: string }[];
      stats: { id: string; conns: number; inPkts: number; outPkts: number }[];
    };
    const c = report.counters;
    assert.equal(c.rx, c.forwarded + c.replied + c.consumed + c.ignored + c.dropped);
    assert.ok(c.arpReplies >= 3, `ARP replies ${c.arpReplies}`);
    const byId = new Map(report.stats.map((s) => [s.id, s]));
    assert.equal(byId.get("tcp 10.79.0.10:80")?.conns, 5);
    assert.equal(byId.get("tcp 10.79.0.11:80")?.conns, 5);
    assert.equal(byId.get("tcp 10.79.0.12:80")?.conns, 5);
    assert.equal(byId.get("tcp 10.79.0.10:80")?.outPkts, 0, "DR replies bypass the director");
    assert.ok((byId.get("tcp 10.79.0.11:80")?.outPkts ?? 0) >= 9, "NAT replies pass the director");
    assert.ok((byId.get("tcp 10.79.0.12:80")?.outPkts ?? 0) >= 9, "FULLNAT replies pass the director");
  },
);

// Userspace IPIP decapsulation on the real server (this kernel has no ipip module): a raw IP
// socket for protocol 4 takes the tunnelled packets, the outer header is stripped and the inner
// packet written into a TUN device, from where the kernel delivers it to the VIP on lo.
const DECAP_JS = `
const n = require(process.argv[1]);
const [tun, name] = n.openTun("tvsdecap0");
const raw = n.openRawIp(4, 4);
const buf = Buffer.alloc(64 * 65600);
const meta = new Int32Array(64 * 4);
const desc = new Int32Array(64 * 2);
n.poll(raw, n.constants.POLL_READABLE, () => {
  for (;;) {
    const got = n.recvBatch(raw, buf, 65600, 0, 64, meta);
    if (got === 0) break;
    let k = 0;
    for (let i = 0; i < got; i++) {
      const off = i * 65600;
      const hl = (buf[off] & 15) * 4;
      desc[k * 2] = off + hl;
      desc[k * 2 + 1] = meta[i * 4] - hl;
      k++;
    }
    n.writeBatch(tun, buf, desc, k);
  }
});
console.log("ready " + name);
`;

test(
  "TUN carries real TCP (and a 4 MB upload) to a real server that decapsulates in userspace",
  { skip: skip ?? false, timeout: 90_000 },
  async (t) => {
    const lab = new Lab();
    const procs: ChildProcess[] = [];
    t.after(async () => {
      for (const p of procs) if (p.pid && p.exitCode === null) process.kill(p.pid, "SIGKILL");
      await lab.destroy();
    });
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const dir = await lab.addHost("dir");
    const rs = await lab.addHost("rs");
    await ipIn(client.ns, "addr", "add", "10.81.0.100/24", "dev", "eth0");
    await ipIn(client.ns, "route", "add", "10.82.0.0/24", "dev", "eth0");
    await ipIn(dir.ns, "addr", "add", "10.82.0.1/24", "dev", "eth0");
    await ipIn(dir.ns, "route", "add", "10.81.0.0/24", "dev", "eth0");
    await ipIn(rs.ns, "addr", "add", "10.82.0.21/24", "dev", "eth0");
    await ipIn(rs.ns, "route", "add", "10.81.0.0/24", "dev", "eth0");
    await ipIn(rs.ns, "addr", "add", "10.82.0.10/32", "dev", "lo");
    const { nativeAddonPath } = await import("../../src/platform/native-addon.ts");
    const decap = spawnIn(rs.ns, process.execPath, ["-e", DECAP_JS, nativeAddonPath()]);
    procs.push(decap);
    await waitForLine(decap, "ready", 10_000);
    await ipIn(rs.ns, "link", "set", "tvsdecap0", "up");
    await runIn(rs.ns, "sysctl", ["-qw", "net.ipv4.conf.tvsdecap0.rp_filter=0"]);
    procs.push(spawnIn(rs.ns, process.execPath, ["-e", SERVER_JS, "rs", "80"]));

    const cfg: StandaloneConfig = {
      interface: "eth0",
      services: [
        {
          protocol: "tcp",
          vip: "10.82.0.10",
          port: 80,
          scheduler: "rr",
          dests: [{ addr: "10.82.0.21", port: 80, fwd: "tunnel" }],
        },
      ],
    };
    const director = spawnIn(dir.ns, process.execPath, [
      "--import",
      "tsx",
      "src/dataplane/packet/standalone.ts",
      JSON.stringify(cfg),
    ]);
    procs.push(director);
    await waitForLine(director, "ready", 30_000);
    await sleep(300);
    for (let i = 0; i < 3; i++) {
      const r = await runIn(client.ns, "curl", ["-s", "--max-time", "5", "http://10.82.0.10/"]);
      assert.equal(r.stdout.trim(), "rs:80");
    }
    // 4 MB upload: TSO super-frames are segmented in software, the path MTU (1480) is learned
    // from the director's ICMP fragmentation-needed.
    const up = await runIn(client.ns, "sh", [
      "-c",
      `head -c ${4 << 20} /dev/zero | curl -s --max-time 30 -H 'Expect:' --data-binary @- http://10.82.0.10/`,
    ]);
    assert.equal(up.stdout.trim(), String(4 << 20), "upload through the tunnel");
  },
);
