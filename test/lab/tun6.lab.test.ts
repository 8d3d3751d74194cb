// LVS/TUN over IPv6 through tvsd's packet plane, with real kernels in network namespaces: a client
// reaches an IPv6 VIP, the director encapsulates IPv6-in-IPv6 (next header 41) from its own IPv6
// address to the real server, the real server's userspace decapsulator (`tvs realserver decap`)
// hands the inner packet to its kernel, and the reply goes straight back to the client. Proven by
// the answer itself, the client address the real server saw, the director's OutPkts (0), and an
// upload larger than the tunnel MTU: the client's full-size segments only get through after the
// director's ICMPv6 packet-too-big lowers the client's path MTU, so an intact upload proves the
// packet-too-big reaches the client and is understood by a real kernel. Then the same for the
// mixed-family case: an IPv4 VIP whose real server is IPv6 (IPv4-in-IPv6, next header 4), where
// the upload's DF segments get ICMP fragmentation needed with the IPv6 tunnel's MTU.
//
// The shared lab topology (src/lab) is IPv4-only (it disables IPv6 in its namespaces), so this
// test builds its IPv6 pieces itself on the lab's namespaces and switch, and runs the
// decapsulator directly (`tvs realserver start --mode tun` with an IPv6 VIP does the same; see
// realserver.lab.test.ts).
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ipIn, run, runIn, sleep, spawnIn } from "../../src/lab/exec.ts";
import { Lab } from "../../src/lab/netns.ts";
import { TVS_BIN } from "../../src/lab/topology.ts";
import { startPacketTvsd, waitFor } from "./packet-tvsd.ts";

const root = process.getuid?.() === 0;

const CLIENT6 = "fd00:122::70";
const DIRECTOR6 = "fd00:122::30";
const RS6 = "fd00:122::45";
const VIP6 = "fd00:122::22";
// The mixed-family service: an IPv4 VIP whose real server is reached over IPv6 (IPv4-in-IPv6).
const CLIENT4 = "192.168.123.70";
const DIRECTOR4 = "192.168.123.30";
const RS4 = "192.168.123.45";
const VIP4 = "192.168.123.22";

/** An IPv6 HTTP server: "/" → its name, "/peer" → the client address, POST "/upload" → sha256 of the body. */
const SERVER6_JS = `
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
}).listen(80, "::");
process.on("SIGTERM", () => process.exit(0));
`;

/** IPv6 on the namespace's interfaces (the lab disables it); new devices keep the default (off). */
async function enableIpv6(ns: string): Promise<void> {
  for (const dev of ["all", "lo", "eth0"]) await runIn(ns, "sysctl", ["-qw", `net.ipv6.conf.${dev}.disable_ipv6=0`]);
}

test(
  "lab tun6: TCP over an IPv6 VIP (ip6ip6) and an IPv4 VIP (IPv4-in-IPv6) reaches an IPv6 real server, answered directly",
  { skip: root ? false : "needs root", timeout: 120_000 },
  async (t) => {
    const lab = new Lab();
    const children: ChildProcess[] = [];
    t.after(async () => {
      for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGTERM");
      await sleep(300);
      await lab.destroy();
    });
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const director = await lab.addHost("director");
    const rs = await lab.addHost("rs1");
    for (const [h, a] of [
      [client, CLIENT6],
      [director, DIRECTOR6],
      [rs, RS6],
    ] as const) {
      await enableIpv6(h.ns);
      await ipIn(h.ns, "-6", "addr", "add", `${a}/64`, "dev", "eth0", "nodad");
    }
    for (const [h, a] of [
      [client, CLIENT4],
      [director, DIRECTOR4],
      [rs, RS4],
    ] as const)
      await ipIn(h.ns, "addr", "add", `${a}/24`, "dev", "eth0");

    // Real server: the VIP on lo, the decapsulator, the HTTP server.
    await ipIn(rs.ns, "-6", "addr", "add", `${VIP6}/128`, "dev", "lo", "nodad");
    // The IPv4 VIP too, never answered in ARP by the real server (as `tvs realserver start` sets it).
    await ipIn(rs.ns, "addr", "add", `${VIP4}/32`, "dev", "lo");
    for (const k of ["all.arp_ignore=1", "lo.arp_ignore=1", "all.arp_announce=2", "lo.arp_announce=2"])
      await runIn(rs.ns, "sysctl", ["-qw", `net.ipv4.conf.${k}`]);
    children.push(spawnIn(rs.ns, process.execPath, ["-e", SERVER6_JS]));
    for (const [vip, dev] of [
      [VIP6, "tvs6"],
      [VIP4, "tvs4"],
    ] as const) {
      const decap = spawnIn(rs.ns, process.execPath, [TVS_BIN, "realserver", "decap", "--vip", vip, "--device", dev]);
      let decapErr = "";
      decap.stderr?.on("data", (d: Buffer) => {
        decapErr += d.toString();
      });
      children.push(decap);
      await waitFor(`the decapsulator brought ${dev} up (${decapErr})`, 15_000, () =>
        ipIn(rs.ns, "link", "show", dev).then(
          (r) => /[<,]UP[,>]/.test(r.stdout),
          () => false,
        ),
      );
    }

    // Director: tvsd's packet plane on eth0 (its IPv6 address is the tunnel's outer source).
    const socket = join(tmpdir(), `${lab.prefix}-tvs6.sock`);
    const tvsd = await startPacketTvsd(director.ns, socket);
    children.push(tvsd.proc);
    const tvsadm = tvsd.tvsadm;
    await tvsadm("-A", "-t", `[${VIP6}]:80`, "-s", "rr");
    await tvsadm("-a", "-t", `[${VIP6}]:80`, "-r", `[${RS6}]:80`, "-i");
    await tvsadm("-A", "-t", `${VIP4}:80`, "-s", "rr");
    await tvsadm("-a", "-t", `${VIP4}:80`, "-r", `[${RS6}]:80`, "-i");

    const curl = (...args: string[]) =>
      runIn(client.ns, "curl", ["-g", "-s", "-m", "10", ...args], { timeoutMs: 30_000 }).then(
        (r) => r.stdout.trim(),
        () => "",
      );
    // The first request may wait for neighbour discovery on every hop.
    await waitFor("the VIP answered", 20_000, async () => (await curl(`http://[${VIP6}]/`)) === "rs1");
    assert.equal(await curl(`http://[${VIP6}]/`), "rs1");
    assert.equal(await curl(`http://[${VIP6}]/peer`), CLIENT6, "the real server saw the client's own address");

    // 200 KB upload: 1500-byte client segments exceed the 1460-byte tunnel MTU.
    const body = Buffer.alloc(200_000);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7 + (i >>> 9)) & 255;
    const file = join(tmpdir(), `${lab.prefix}-upload.bin`);
    writeFileSync(file, body);
    t.after(() => rmSync(file, { force: true }));
    const digest = await curl("--data-binary", `@${file}`, `http://[${VIP6}]/upload`);
    assert.equal(digest, createHash("sha256").update(body).digest("hex"), "the upload arrived intact");
    // The client's kernel learned the tunnel MTU from the director's packet too big.
    const route = (await ipIn(client.ns, "-6", "route", "get", VIP6)).stdout;
    assert.match(route, /mtu 1460\b/, `the client's route to the VIP carries the tunnel MTU: ${route.trim()}`);

    // Mixed families: the IPv4 VIP's packets travel IPv4-in-IPv6 to the same real server; the
    // upload's DF segments get ICMP fragmentation needed with the IPv6 tunnel's MTU (1500 - 40).
    await waitFor("the IPv4 VIP answered", 20_000, async () => (await curl(`http://${VIP4}/`)) === "rs1");
    assert.equal(await curl(`http://${VIP4}/peer`), `::ffff:${CLIENT4}`, "the real server saw the IPv4 client");
    const digest4 = await curl("--data-binary", `@${file}`, `http://${VIP4}/upload`);
    assert.equal(digest4, createHash("sha256").update(body).digest("hex"), "the IPv4 upload arrived intact");
    const route4 = (await ipIn(client.ns, "route", "get", VIP4)).stdout;
    assert.match(route4, /mtu 1460\b/, `the client's IPv4 route to the VIP carries the tunnel MTU: ${route4.trim()}`);

    const snap = JSON.parse(await tvsadm("-L", "-n", "--stats", "--json")) as {
      services: { stats: { conns: number; inPkts: number; outPkts: number } }[];
    };
    assert.equal(snap.services.length, 2, "both services are listed");
    for (const { stats } of snap.services) {
      assert.ok(stats.conns >= 3, `connections counted (${stats.conns})`);
      assert.equal(stats.outPkts, 0, "replies bypassed the director");
    }
    const counters = JSON.parse(
      await run(process.execPath, [TVS_BIN, "status", "--json"], {
        env: { ...process.env, TVS_SOCKET: socket },
      }).then(
        (r) => r.stdout,
        () => "{}",
      ),
    ) as Record<string, unknown>;
    t.diagnostic(`tvs status: ${JSON.stringify(counters).slice(0, 600)}`);
  },
);
