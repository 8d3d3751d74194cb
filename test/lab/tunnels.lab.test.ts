// LVS/TUN with the GUE and GRE tunnel types (ipvsadm --tun-type gue|gre) through tvsd's packet
// plane, real kernels' TCP in network namespaces, and `tvs realserver` decapsulating in userspace
// on the real server. Three VIPs on one real server: GUE with the default nocsum (UDP port 5555),
// GUE with --tun-remcsum (port 5556: the client's kernel leaves its checksums to offload, so the
// director sends the remote-checksum option and the real server's decapsulator completes them),
// and GRE with --tun-csum. For each: the answer comes from the real server, which saw the client's
// own address; a 200 KB upload arrives intact (full-size client segments are larger than the
// tunnel MTU, so they get through only after the director's "fragmentation needed" with the
// tunnel's MTU reached the client's kernel, which the client's route then shows); the director
// forwarded no reply (OutPkts 0); a capture on the real server sees each tunnel's own header shape.
// A second test does the same over IPv6 outer headers: an IPv6 VIP over GRE with checksum, and an
// IPv4 VIP over GUE with checksum to an IPv6 real server (mixed families). The same traffic with
// the kernel's own fou and ip_gre receivers on the real server is test/oracle/tunnels.oracle.test.ts.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { Capture } from "../../src/lab/capture.ts";
import { ipIn, runIn, sleep, spawnIn } from "../../src/lab/exec.ts";
import { Lab } from "../../src/lab/netns.ts";
import { TVS_BIN } from "../../src/lab/topology.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";
import { startPacketTvsd, waitFor } from "./packet-tvsd.ts";

const root = process.getuid?.() === 0;
const native = nativeStatus();
const skip = !root ? "needs root" : native.ok ? false : native.reason;

const CLIENT = "192.168.124.70";
const DIRECTOR = "192.168.124.30";
const RS = "192.168.124.45";

/** The three services: VIP, the director's tunnel options, the real server's `tvs realserver`
 * options, the client's learned route MTU, and a capture filter matching only that tunnel's own
 * header shape on the wire (outer IPv4 headers without options). */
const TUNNELS = [
  {
    vip: "192.168.124.21",
    dir: ["--tun-type", "gue", "--tun-port", "5555"],
    rs: ["--tun-type", "gue", "--tun-port", "5555"],
    mtu: /mtu 1468\b/,
    wire: "udp dst port 5555 and udp[6:2] = 0 and udp[8] = 0 and udp[9] = 4",
  },
  {
    vip: "192.168.124.22",
    dir: ["--tun-type", "gue", "--tun-port", "5556", "--tun-remcsum"],
    rs: ["--tun-type", "gue", "--tun-port", "5556"],
    // 1460 once a packet with the remote checksum option was too big; 1468 for a segmented GSO frame.
    mtu: /mtu 146[08]\b/,
    wire: "udp dst port 5556 and udp[8] = 2 and udp[9] = 4 and udp[10:2] = 1 and udp[12:4] = 0x80000000",
  },
  {
    vip: "192.168.124.23",
    dir: ["--tun-type", "gre", "--tun-csum"],
    rs: ["--tun-type", "gre"],
    mtu: /mtu 1472\b/,
    wire: "ip proto 47 and ip[20:2] = 0x8000 and ip[22:2] = 0x0800",
  },
] as const;

/** An HTTP server: "/" → its name, "/peer" → the client address, POST "/upload" → sha256 of the body. */
const SERVER_JS = `
const http = require("node:http");
const { createHash } = require("node:crypto");
http.createServer((req, res) => {
  const send = (body) => { res.writeHead(200, {"content-length": Buffer.byteLength(body)}); res.end(body); };
  if (req.url === "/peer") return send(req.socket.remoteAddress + "\\n");
  if (req.url === "/upload") {
    const h = createHash("sha256");
    req.on("data", (d) => h.update(d));
    req.on("end", () => send(h.digest("hex") + "\\n"));
    return;
  }
  send("rs1\\n");
}).listen(80, process.argv[1] || "0.0.0.0");
process.on("SIGTERM", () => process.exit(0));
`;

test(
  "lab tunnels: TCP through tvsd's TUN/gue, TUN/gue remcsum and TUN/gre services, decapsulated by tvs realserver",
  { skip, timeout: 150_000 },
  async (t) => {
    const lab = new Lab(`tunnels${Math.floor(Math.random() * 0xffff).toString(16)}`);
    const children: ChildProcess[] = [];
    let rsNs = "";
    t.after(async () => {
      for (const { vip } of TUNNELS)
        if (rsNs) await runIn(rsNs, process.execPath, [TVS_BIN, "realserver", "stop", "--vip", vip]).catch(() => {});
      for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGTERM");
      await sleep(300);
      await lab.destroy();
    });
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const director = await lab.addHost("director");
    const rs = await lab.addHost("rs1");
    rsNs = rs.ns;
    for (const [h, a] of [
      [client, CLIENT],
      [director, DIRECTOR],
      [rs, RS],
    ] as const)
      await ipIn(h.ns, "addr", "add", `${a}/24`, "dev", "eth0");

    children.push(spawnIn(rs.ns, process.execPath, ["-e", SERVER_JS]));
    for (const { vip, rs: opts } of TUNNELS) {
      const r = await runIn(rs.ns, process.execPath, [
        TVS_BIN,
        "realserver",
        "start",
        "--vip",
        vip,
        "--mode",
        "tun",
        ...opts,
        "--json",
      ]);
      const state = JSON.parse(r.stdout) as { tunType: string; decapPid: number };
      assert.equal(state.tunType, opts[1], `tvs realserver takes ${opts.join(" ")}`);
      assert.ok(state.decapPid > 0, "a decapsulator runs");
    }

    const socket = join(tmpdir(), `${lab.prefix}-tvsd.sock`);
    const tvsd = await startPacketTvsd(director.ns, socket);
    children.push(tvsd.proc);
    const tvsadm = tvsd.tvsadm;
    for (const { vip, dir } of TUNNELS) {
      await tvsadm("-A", "-t", `${vip}:80`, "-s", "rr");
      await tvsadm("-a", "-t", `${vip}:80`, "-r", `${RS}:80`, "-i", ...dir);
    }
    const listing = await tvsadm("-L", "-n", "--tun-info");
    t.diagnostic(listing);

    const curl = (...args: string[]) =>
      runIn(client.ns, "curl", ["-s", "-m", "10", ...args], { timeoutMs: 30_000 }).then(
        (r) => r.stdout.trim(),
        () => "",
      );
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >>> 9)) & 255;
    const file = join(tmpdir(), `${lab.prefix}-upload.bin`);
    writeFileSync(file, body);
    t.after(() => rmSync(file, { force: true }));
    const sha = createHash("sha256").update(body).digest("hex");

    for (const { vip, dir, mtu, wire } of TUNNELS) {
      const what = `${vip} (${dir.join(" ")})`;
      const cap = await Capture.start(rs.ns, wire);
      await waitFor(`${what} answered`, 20_000, async () => (await curl(`http://${vip}/`)) === "rs1");
      assert.equal(await curl(`http://${vip}/peer`), CLIENT, `${what}: the real server saw the client's own address`);
      assert.equal(
        await curl("--data-binary", `@${file}`, `http://${vip}/upload`),
        sha,
        `${what}: the upload arrived intact`,
      );
      const seen = await cap.stop();
      assert.ok(
        seen.length > 10,
        `${what}: the real server received the tunnel's own headers (${seen.length}: ${wire})`,
      );
      const route = (await ipIn(client.ns, "route", "get", vip)).stdout;
      assert.match(route, mtu, `${what}: the client learned the tunnel MTU: ${route.trim()}`);
    }

    const snap = JSON.parse(await tvsadm("-L", "-n", "--stats", "--json")) as {
      services: { stats: { conns: number; inBytes: number; outPkts: number } }[];
    };
    assert.equal(snap.services.length, TUNNELS.length);
    for (const { stats } of snap.services) {
      assert.ok(stats.conns >= 3, `connections counted (${stats.conns})`);
      assert.ok(stats.inBytes > body.length, `the upload went through the tunnel (${stats.inBytes} bytes)`);
      assert.equal(stats.outPkts, 0, "replies bypassed the director");
    }
  },
);

const V6 = { client: "fd00:124::70", director: "fd00:124::30", rs: "fd00:124::45" };

/** IPv6 outer headers: an IPv6 VIP over GRE with checksum, and an IPv4 VIP over GUE with checksum (mixed families). */
const TUNNELS6 = [
  {
    vip: "fd00:124::21",
    url: "http://[fd00:124::21]",
    dir: ["--tun-type", "gre", "--tun-csum"],
    rs: ["--tun-type", "gre"],
    peer: V6.client,
    mtu: /mtu 1452\b/,
    wire: "ip6 proto 47 and ip6[40:2] = 0x8000 and ip6[42:2] = 0x86dd",
  },
  {
    vip: "192.168.124.24",
    url: "http://192.168.124.24",
    dir: ["--tun-type", "gue", "--tun-port", "5557", "--tun-csum"],
    rs: ["--tun-type", "gue", "--tun-port", "5557"],
    peer: `::ffff:${CLIENT}`,
    mtu: /mtu 1448\b/,
    wire: "ip6 and udp dst port 5557 and ip6[46:2] != 0 and ip6[48] = 0 and ip6[49] = 4",
  },
] as const;

test(
  "lab tunnels over IPv6 outer headers: GRE for an IPv6 VIP and GUE for an IPv4 VIP to an IPv6 real server, decapsulated by tvs realserver",
  { skip, timeout: 150_000 },
  async (t) => {
    const lab = new Lab(`tunnels${Math.floor(Math.random() * 0xffff).toString(16)}`);
    const children: ChildProcess[] = [];
    let rsNs = "";
    t.after(async () => {
      for (const { vip } of TUNNELS6)
        if (rsNs) await runIn(rsNs, process.execPath, [TVS_BIN, "realserver", "stop", "--vip", vip]).catch(() => {});
      for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGTERM");
      await sleep(300);
      await lab.destroy();
    });
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const director = await lab.addHost("director");
    const rs = await lab.addHost("rs1");
    rsNs = rs.ns;
    for (const [h, a4, a6] of [
      [client, CLIENT, V6.client],
      [director, DIRECTOR, V6.director],
      [rs, RS, V6.rs],
    ] as const) {
      // The lab disables IPv6 in its namespaces; this test needs it.
      for (const dev of ["all", "lo", "eth0"])
        await runIn(h.ns, "sysctl", ["-qw", `net.ipv6.conf.${dev}.disable_ipv6=0`]);
      await ipIn(h.ns, "addr", "add", `${a4}/24`, "dev", "eth0");
      await ipIn(h.ns, "-6", "addr", "add", `${a6}/64`, "dev", "eth0", "nodad");
    }
    children.push(spawnIn(rs.ns, process.execPath, ["-e", SERVER_JS, "::"]));
    for (const { vip, rs: opts } of TUNNELS6) {
      const r = await runIn(rs.ns, process.execPath, [
        TVS_BIN,
        "realserver",
        "start",
        "--vip",
        vip,
        "--mode",
        "tun",
        ...opts,
        "--json",
      ]);
      assert.equal((JSON.parse(r.stdout) as { tunType: string }).tunType, opts[1]);
    }
    const socket = join(tmpdir(), `${lab.prefix}-tvsd.sock`);
    const tvsd = await startPacketTvsd(director.ns, socket);
    children.push(tvsd.proc);
    const tvsadm = tvsd.tvsadm;
    for (const { vip, dir } of TUNNELS6) {
      const svc = vip.includes(":") ? `[${vip}]:80` : `${vip}:80`;
      await tvsadm("-A", "-t", svc, "-s", "rr");
      await tvsadm("-a", "-t", svc, "-r", `[${V6.rs}]:80`, "-i", ...dir);
    }
    const curl = (...args: string[]) =>
      runIn(client.ns, "curl", ["-g", "-s", "-m", "10", ...args], { timeoutMs: 30_000 }).then(
        (r) => r.stdout.trim(),
        () => "",
      );
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >>> 9)) & 255;
    const file = join(tmpdir(), `${lab.prefix}-upload6.bin`);
    writeFileSync(file, body);
    t.after(() => rmSync(file, { force: true }));
    const sha = createHash("sha256").update(body).digest("hex");
    for (const { vip, url, dir, peer, mtu, wire } of TUNNELS6) {
      const what = `${vip} (${dir.join(" ")}, IPv6 outer)`;
      const cap = await Capture.start(rs.ns, wire);
      await waitFor(`${what} answered`, 20_000, async () => (await curl(`${url}/`)) === "rs1");
      assert.equal(await curl(`${url}/peer`), peer, `${what}: the real server saw the client's own address`);
      assert.equal(await curl("--data-binary", `@${file}`, `${url}/upload`), sha, `${what}: the upload arrived intact`);
      const seen = await cap.stop();
      assert.ok(
        seen.length > 10,
        `${what}: the real server received the tunnel's own headers (${seen.length}: ${wire})`,
      );
      const route = (await ipIn(client.ns, ...(vip.includes(":") ? ["-6"] : []), "route", "get", vip)).stdout;
      assert.match(route, mtu, `${what}: the client learned the tunnel MTU: ${route.trim()}`);
    }
  },
);
