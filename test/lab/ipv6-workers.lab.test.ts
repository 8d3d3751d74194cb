// IPv6 across packet workers, with real kernels in network namespaces: tvsd's packet plane with two
// worker threads serves an IPv6 NAT service (TCP and UDP) to a client on another subnet; the real
// server's default route is the director, so its replies come back through the packet plane.
//   - TCP: 40 connections from 40 source ports all answered, spread over both workers (each
//     worker's frame and connection counts in `tvs status` are above zero), -c lists all 40.
//   - UDP larger than the path MTU: 20 sockets (20 source ports) each send a 4000-byte datagram,
//     which the client's kernel cuts into 1500-byte fragments. The steering program sends a
//     datagram's fragments by addresses alone to one worker, which reassembles it and, when the
//     flow (address and port) is the other worker's, hands it over; the datagram reaches the real
//     server whole (it answers with the SHA-256 of what it got, then the bytes themselves), its
//     4000-byte reply comes back in fragments the same way, and the client gets it whole.
//     `tvs status` shows datagrams reassembled, some handed over, and fragments sent.
//
// The shared lab topology (src/lab) is IPv4-only, so this test builds its IPv6 network itself on
// the lab's namespaces and switch (as tun6.lab.test.ts does). Names carry the prefix "ipv6".
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ipIn, runIn, sleep, spawnIn } from "../../src/lab/exec.ts";
import { Lab } from "../../src/lab/netns.ts";
import { startPacketTvsd, waitFor } from "./packet-tvsd.ts";

const root = process.getuid?.() === 0;

// The client's subnet (the VIP is on it) and the real servers' subnet; the director is on both.
const CLIENT6 = "fd00:6a::70";
const DIRECTOR_A = "fd00:6a::30";
const VIP6 = "fd00:6a::22";
const DIRECTOR_B = "fd00:6b::30";
const RS6 = "fd00:6b::45";

/** The real server: HTTP on [::]:80 ("rs1"), UDP on [::]:5300 answering "rs1 <sha256>\n" + the datagram. */
const SERVER_JS = `
const http = require("node:http");
const dgram = require("node:dgram");
const { createHash } = require("node:crypto");
http.createServer((req, res) => res.end("rs1\\n")).listen(80, "::");
const u = dgram.createSocket({ type: "udp6", ipv6Only: true });
u.on("message", (msg, peer) => {
  const head = Buffer.from("rs1 " + createHash("sha256").update(msg).digest("hex") + "\\n");
  u.send(Buffer.concat([head, msg]), peer.port, peer.address);
});
u.bind(5300, "::");
process.on("SIGTERM", () => process.exit(0));
`;

/**
 * The client: one UDP socket per flow, each sending one datagram of SIZE bytes to the VIP (retried
 * up to 3 times, 2 s each) and checking the answer; prints one line per flow: "ok <len>" or "bad ...".
 */
const CLIENT_JS = `
const dgram = require("node:dgram");
const { createHash } = require("node:crypto");
const [vip, port, flows, size] = process.argv.slice(1).map((v, i) => (i === 0 ? v : Number(v)));
async function flow(i) {
  const s = dgram.createSocket({ type: "udp6", ipv6Only: true });
  await new Promise((r) => s.bind(0, "::", r));
  const data = Buffer.alloc(size);
  for (let k = 0; k < size; k++) data[k] = (k * 13 + i * 7) & 0xff;
  const want = "rs1 " + createHash("sha256").update(data).digest("hex") + "\\n";
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      const got = await new Promise((resolve) => {
        const t = setTimeout(() => resolve(undefined), 2000);
        s.once("message", (m) => { clearTimeout(t); resolve(m); });
        s.send(data, port, vip);
      });
      if (got === undefined) continue;
      const head = got.subarray(0, want.length).toString();
      const echoed = got.subarray(want.length);
      return head === want && echoed.equals(data) ? "ok " + got.length : "bad " + head.trim() + " " + echoed.length;
    }
    return "lost";
  } finally {
    s.close();
  }
}
Promise.all(Array.from({ length: flows }, (_, i) => flow(i))).then((r) => console.log(r.join("\\n")));
`;

async function enableIpv6(ns: string): Promise<void> {
  for (const dev of ["all", "default", "lo", "eth0"])
    await runIn(ns, "sysctl", ["-qw", `net.ipv6.conf.${dev}.disable_ipv6=0`]);
}

test(
  "lab ipv6 workers: IPv6 NAT with two packet workers, TCP spread over both, UDP larger than the MTU reassembled and answered",
  { skip: root ? false : "needs root", timeout: 180_000 },
  async (t) => {
    const lab = new Lab(`ipv6${randomBytes(2).toString("hex")}`);
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
    for (const h of [client, director, rs]) await enableIpv6(h.ns);
    await ipIn(client.ns, "-6", "addr", "add", `${CLIENT6}/64`, "dev", "eth0", "nodad");
    await ipIn(director.ns, "-6", "addr", "add", `${DIRECTOR_A}/64`, "dev", "eth0", "nodad");
    await ipIn(director.ns, "-6", "addr", "add", `${DIRECTOR_B}/64`, "dev", "eth0", "nodad");
    await ipIn(rs.ns, "-6", "addr", "add", `${RS6}/64`, "dev", "eth0", "nodad");
    // NAT: the real server answers the client through the director.
    await ipIn(rs.ns, "-6", "route", "add", "default", "via", DIRECTOR_B, "dev", "eth0");
    children.push(spawnIn(rs.ns, process.execPath, ["-e", SERVER_JS]));

    const socket = join(tmpdir(), `${lab.prefix}-tvsd.sock`);
    const tvsd = await startPacketTvsd(director.ns, socket, ["--workers", "2"], 30_000);
    children.push(tvsd.proc);
    const tvsadm = tvsd.tvsadm;
    const status = tvsd.status;
    await tvsadm("-A", "-t", `[${VIP6}]:80`, "-s", "rr");
    await tvsadm("-a", "-t", `[${VIP6}]:80`, "-r", `[${RS6}]:80`, "-m");
    await tvsadm("-A", "-u", `[${VIP6}]:53`, "-s", "rr");
    await tvsadm("-a", "-u", `[${VIP6}]:53`, "-r", `[${RS6}]:5300`, "-m");

    const curl = () =>
      runIn(client.ns, "curl", ["-g", "-s", "-m", "5", `http://[${VIP6}]/`], { timeoutMs: 15_000 }).then(
        (r) => r.stdout.trim(),
        () => "",
      );
    // The first request may wait for neighbour discovery on every hop.
    await waitFor("the VIP answered", 30_000, async () => (await curl()) === "rs1");

    // TCP: 40 connections, 40 source ports.
    const answers: string[] = [];
    for (let i = 0; i < 40; i++) answers.push(await curl());
    assert.deepEqual(new Set(answers), new Set(["rs1"]), `every request answered: ${answers.join(" ")}`);
    const afterTcp = await status();
    t.diagnostic(`tvs status after the TCP loop:\n${afterTcp}`);
    const workers = [...afterTcp.matchAll(/worker (\d+): (\d+) frames, (\d+) connections/g)].map((m) => ({
      frames: Number(m[2]),
      conns: Number(m[3]),
    }));
    assert.equal(workers.length, 2, "two workers listed");
    for (const [i, w] of workers.entries()) {
      assert.ok(w.frames > 0, `worker ${i} received IPv6 frames (${w.frames})`);
      assert.ok(w.conns > 0, `worker ${i} holds some of the IPv6 connections (${w.conns})`);
    }
    const listing = await tvsadm("-L", "-n", "-c");
    const entries = listing.split("\n").filter((l) => l.startsWith("TCP") && l.includes(`[${VIP6}]:80`));
    assert.ok(entries.length >= 40, `every connection listed (${entries.length}):\n${listing}`);

    // UDP larger than the path MTU: the client's kernel fragments each 4000-byte datagram.
    const route = (await ipIn(client.ns, "-6", "route", "get", VIP6)).stdout;
    t.diagnostic(`client route to the VIP: ${route.trim()}`);
    const out = await runIn(client.ns, process.execPath, ["-e", CLIENT_JS, VIP6, "53", "20", "4000"], {
      timeoutMs: 60_000,
    });
    const lines = out.stdout.trim().split("\n");
    assert.equal(lines.length, 20);
    const wanted = `ok ${4000 + 4 + 64 + 1}`;
    assert.deepEqual(
      lines.filter((l) => l !== wanted),
      [],
      "every datagram reached the real server whole and its answer came back whole",
    );
    const afterUdp = await status();
    t.diagnostic(`tvs status after the UDP datagrams:\n${afterUdp}`);
    const m = afterUdp.match(
      /IPv6 reassembly: (\d+) fragments, (\d+) datagrams \((\d+) handed to their flow's worker\), (\d+) fragments out/,
    );
    assert.ok(m, `a reassembly line in tvs status:\n${afterUdp}`);
    const [fragsIn, datagrams, handoffs, fragsOut] = m.slice(1).map(Number) as [number, number, number, number];
    // 20 requests and 20 answers, three 1500-byte fragments each (4008 and 4077 bytes of payload).
    assert.ok(datagrams >= 40, `datagrams reassembled: ${datagrams}`);
    assert.ok(fragsIn >= 3 * datagrams, `fragments taken: ${fragsIn}`);
    assert.ok(fragsOut >= 3 * datagrams, `fragments sent: ${fragsOut}`);
    // Fragments meet on the worker of the client's address; about half the flows are the other's.
    assert.ok(handoffs > 0 && handoffs < datagrams, `datagrams handed to their flow's worker: ${handoffs}`);
    const udpEntries = (await tvsadm("-L", "-n", "-c"))
      .split("\n")
      .filter((l) => l.startsWith("UDP") && l.includes(`[${VIP6}]:53`));
    assert.equal(udpEntries.length, 20, "one UDP entry per flow (none duplicated on the wrong worker)");
  },
);
