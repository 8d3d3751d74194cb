// GUE and GRE tunnels from tvsd's packet plane to a real server whose kernel decapsulates with its
// own receivers: Linux's fou (`ip fou add port 5555 gue`) in front of an ipip device with GUE
// encapsulation, and an ip_gre device that insists on checksums (`icsum`). The host kernel has no
// fou, ipip or gre, so the real server is the oracle VM (Debian's 6.1 kernel) behind a network
// link (host-link.ts): on one lab bridge, a client namespace (10.78.0.100), a director namespace
// running tvsd on the packet plane (10.78.0.3), and the guest (10.78.0.2) with the VIPs on lo.
//
// Three TUN services to the guest: GUE with the default nocsum (the kernel takes UDP checksum 0),
// GUE with --tun-remcsum (the client's kernel leaves its checksums to offload, so the director sends
// the remote checksum option and the guest's fou completes them), and GRE with --tun-csum (the
// guest's `icsum` device drops GRE without a checksum, and a wrong checksum is dropped by the GRE
// receiver). Real TCP: the client sends 100 KB to each VIP and the guest's `nc -e cat` echoes it
// straight back (not through the director); the echo must match byte for byte. The client's
// full-size segments do not fit the tunnel, so they pass only after the director's ICMP
// "fragmentation needed" with the tunnel MTU has reached the client's kernel. The guest's tunnel
// devices count what they received. `tvs realserver` doing the same decapsulation in userspace is
// test/lab/tunnels.lab.test.ts. Needs root, qemu and the native addon; skips with the reason.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Capture } from "../../src/lab/capture.ts";
import { ipIn, isRoot, run, sleep, spawnIn } from "../../src/lab/exec.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";
import { createHostLink, type HostLink } from "./host-link.ts";
import { KernelVm, repoRoot } from "./vm.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, a tap device)";
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

const TVSD = join(repoRoot, "bin", "tvsd.js");
const TVSADM = join(repoRoot, "bin", "tvsadm.js");
const GUEST = "10.78.0.2";
const DIR = "10.78.0.3";
const CLIENT = "10.78.0.100";
const GUE_PORT = 5555;

/** `wire`: a capture filter (on the director's side) matching only the tunnel's own header shape. */
const SERVICES = [
  {
    vip: "10.78.0.21",
    opts: ["--tun-type", "gue", "--tun-port", String(GUE_PORT)],
    mtu: /mtu 1468\b/,
    wire: `ip dst ${GUEST} and udp dst port ${GUE_PORT} and udp[6:2] = 0 and udp[8] = 0`,
  },
  {
    vip: "10.78.0.22",
    opts: ["--tun-type", "gue", "--tun-port", String(GUE_PORT), "--tun-remcsum"],
    // 1460 once a packet with the remote checksum option was too big; 1468 for a segmented GSO frame.
    mtu: /mtu 146[08]\b/,
    wire: `ip dst ${GUEST} and udp dst port ${GUE_PORT} and udp[8] = 2 and udp[10:2] = 1 and udp[12:4] = 0x80000000`,
  },
  {
    vip: "10.78.0.23",
    opts: ["--tun-type", "gre", "--tun-csum"],
    mtu: /mtu 1472\b/,
    wire: `ip dst ${GUEST} and ip proto 47 and ip[20:2] = 0x8000`,
  },
] as const;

/** Sends `size` patterned bytes to vip:80, reads the echo back, prints its length and sha256. */
const ECHO_CLIENT = `
const net = require("node:net");
const { createHash } = require("node:crypto");
const [vip, size] = [process.argv[1], Number(process.argv[2])];
const body = Buffer.alloc(size);
for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >>> 9)) & 255;
const h = createHash("sha256");
let got = 0;
const s = net.connect(80, vip, () => s.write(body));
s.setTimeout(60000, () => { console.log(JSON.stringify({ error: "timeout", got })); process.exit(1); });
s.on("data", (d) => { h.update(d); got += d.length; if (got >= size) { console.log(JSON.stringify({ got, sha: h.digest("hex") })); s.destroy(); } });
s.on("error", (e) => { console.log(JSON.stringify({ error: e.message, got })); process.exit(1); });
`;

function expectedSha(size: number): string {
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = (i * 7 + (i >>> 9)) & 255;
  return createHash("sha256").update(body).digest("hex");
}

describe(
  "GUE and GRE to a real server whose kernel decapsulates (fou, ipip, ip_gre)",
  { skip: skip ?? false, timeout: 400_000 },
  () => {
    let hl: HostLink;
    let vm: KernelVm;
    let dirNs = "";
    let clientNs = "";
    let sock = "";
    let dir = "";
    const procs: ChildProcess[] = [];
    const tvsadm = async (...args: string[]) =>
      (await run(process.execPath, [TVSADM, "--socket", sock, ...args])).stdout;
    const guest = async (script: string) => {
      const r = await vm.run(script, { timeoutMs: 120_000 });
      assert.equal(r.code, 0, `guest: ${script}\n${r.stderr}`);
      return r.stdout;
    };

    before(async () => {
      hl = await createHostLink(`tunnels${Math.floor(Math.random() * 0xfff).toString(16)}`);
      dir = mkdtempSync(join(tmpdir(), "tunnels-oracle-"));
      const client = await hl.lab.addHost("cl");
      const d = await hl.lab.addHost("dir");
      clientNs = client.ns;
      dirNs = d.ns;
      await ipIn(clientNs, "addr", "add", `${CLIENT}/24`, "dev", "eth0");
      await ipIn(dirNs, "addr", "add", `${DIR}/24`, "dev", "eth0");
      vm = await KernelVm.boot({ link: hl.link });
      await guest(
        [
          // /sbin/ip is iproute2: busybox sh would run its own `ip` applet for a bare `ip`.
          `/sbin/ip addr add ${GUEST}/24 dev eth0; /sbin/ip link set eth0 up`,
          ...SERVICES.map((s) => `/sbin/ip addr add ${s.vip}/32 dev lo`),
          "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce",
          "echo 1 > /proc/sys/net/ipv4/conf/lo/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/lo/arp_announce",
          "modprobe fou && modprobe ipip && modprobe ip_gre",
          // GUE: fou takes UDP port 5555 and hands the inner packet (protocol 4) to the ipip device.
          `/sbin/ip fou add port ${GUE_PORT} gue`,
          `/sbin/ip link add tvgue type ipip remote any local ${GUEST} ttl 64 encap gue encap-sport auto encap-dport ${GUE_PORT}`,
          // GRE: a device that drops GRE packets without a checksum (icsum).
          `/sbin/ip link add tvgre type gre remote any local ${GUEST} icsum`,
          "/sbin/ip link set tvgue up; /sbin/ip link set tvgre up",
          "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done",
          "nc -ll -p 80 -e cat </dev/null >/dev/null 2>&1 &",
          "for i in $(seq 100); do grep -qE ':0050 0+:0000 0A' /proc/net/tcp && break; sleep 0.1; done",
        ].join("\n"),
      );
      const p = spawnIn(dirNs, process.execPath, [
        TVSD,
        ...["--dataplane", "packet", "--interface", "eth0", "--socket", (sock = join(dir, "tvsd.sock"))],
        ...["--http", "none"],
      ]);
      let err = "";
      p.stderr?.on("data", (b: Buffer) => {
        err = (err + b.toString()).slice(-4000);
      });
      p.stdout?.resume();
      procs.push(p);
      for (let i = 0; ; i++) {
        if (p.exitCode !== null) throw new Error(`tvsd exited: ${err}`);
        if (await tvsadm("-L", "-n").catch(() => undefined)) break;
        if (i > 200) throw new Error(`tvsd did not come up: ${err}`);
        await sleep(100);
      }
      for (const s of SERVICES) {
        await tvsadm("-A", "-t", `${s.vip}:80`, "-s", "rr");
        await tvsadm("-a", "-t", `${s.vip}:80`, "-r", `${GUEST}:80`, "-i", ...s.opts);
      }
      // The client reaches the VIPs through tvsd's director.
      const mac = (JSON.parse((await ipIn(dirNs, "-j", "link", "show", "eth0")).stdout) as { address: string }[])[0]
        ?.address as string;
      for (const s of SERVICES)
        await ipIn(clientNs, "neigh", "replace", s.vip, "lladdr", mac, "dev", "eth0", "nud", "permanent");
    });

    after(async () => {
      for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
      await vm?.close();
      await hl?.lab.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const echo = async (vip: string, size: number) => {
      const c = spawn("ip", ["netns", "exec", clientNs, process.execPath, "-e", ECHO_CLIENT, vip, String(size)], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      procs.push(c);
      let out = "";
      c.stdout.on("data", (b: Buffer) => {
        out += b.toString();
      });
      await new Promise((resolve) => c.once("exit", resolve));
      return JSON.parse(out.trim() || "{}") as { got?: number; sha?: string; error?: string };
    };

    for (const s of SERVICES) {
      test(`TUN ${s.opts.join(" ")}: 100 KB echoed through the guest's kernel decapsulation`, async (t) => {
        const rx = (dev: string) => guest(`cat /sys/class/net/${dev}/statistics/rx_packets`).then(Number);
        const dev = s.opts[1] === "gue" ? "tvgue" : "tvgre";
        const before = await rx(dev);
        const cap = await Capture.start(dirNs, s.wire);
        const small = await echo(s.vip, 1000);
        assert.equal(small.sha, expectedSha(1000), `a small exchange: ${JSON.stringify(small)}`);
        const big = await echo(s.vip, 100_000);
        assert.equal(big.sha, expectedSha(100_000), `100 KB echoed intact: ${JSON.stringify(big)}`);
        const received = (await rx(dev)) - before;
        assert.ok(received > 20, `the guest's ${dev} decapsulated the traffic (${received} packets)`);
        const seen = await cap.stop();
        assert.ok(seen.length > 10, `the director sent the tunnel's own headers (${seen.length}: ${s.wire})`);
        const route = (await ipIn(clientNs, "route", "get", s.vip)).stdout;
        assert.match(route, s.mtu, `the client learned the tunnel MTU: ${route.trim()}`);
        t.diagnostic(`${dev} received ${received} packets; client route: ${route.trim()}`);
      });
    }

    test("the director forwarded no reply: the guest answered the client directly", async () => {
      const snap = JSON.parse(await tvsadm("-L", "-n", "--stats", "--json")) as {
        services: { stats: { conns: number; inBytes: number; outPkts: number } }[];
      };
      assert.equal(snap.services.length, SERVICES.length);
      for (const { stats } of snap.services) {
        assert.ok(stats.conns >= 2 && stats.inBytes > 100_000, JSON.stringify(stats));
        assert.equal(stats.outPkts, 0);
      }
      const errors = await guest(
        "cat /sys/class/net/tvgre/statistics/rx_crc_errors /sys/class/net/tvgre/statistics/rx_errors",
      );
      assert.deepEqual(errors.trim().split(/\s+/).map(Number), [0, 0], "no GRE checksum errors at the guest");
    });
  },
);
