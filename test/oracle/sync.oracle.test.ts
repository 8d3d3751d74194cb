// Connection sync against the real kernel, with real traffic across kernel IPVS. The oracle VM gets
// a network link (host-link.ts: a tap on a lab bridge, the guest's virtio-net eth0 10.77.0.2); on the
// same bridge a client namespace (10.77.0.100) and a director namespace running tvsd on the packet
// plane (eth0, 10.77.0.3). Sync multicast (224.0.0.81:8848) crosses the bridge both ways.
//
// 1. Kernel master, tvsd backup: the guest directs a DR service (10.77.0.10) and a NAT service
//    (10.77.0.11), both to a real server in a guest namespace (10.2.0.2, busybox `nc -e cat`);
//    `ipvsadm --start-daemon master --mcast-interface eth0`. tvsd (no services: a backup keeps the
//    entries unbound) runs `tvsadm --start-daemon backup --mcast-interface eth0`. The client holds
//    connections open through both VIPs; tvsd's `tvsadm -L -n -c` must list what the guest's
//    `ipvsadm -L -n -c` lists (protocol, state, client, virtual and real addresses).
// 2. tvsd master, kernel backup: tvsd directs a DR service (10.77.0.20) and a NAT service
//    (10.77.0.21) to the guest as real server (the DR VIP on its lo, arp_ignore; NAT answers from
//    10.77.0.2 routed back through tvsd by a source rule), `tvsadm --start-daemon master`; the guest
//    runs `ipvsadm --start-daemon backup` with no services. The guest must list what tvsd lists.
// Expiry columns differ by construction (the backup sets its own timer) and are not compared. The
// forwarding method is in neither listing (`-c` does not print it); it is shown by the traffic
// itself: the DR and NAT answers arrive, through the kernel in 1 and through tvsd in 2.
// Needs root (namespaces, tap) and the native addon (packet plane); skips with the reason otherwise.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { ipIn, isRoot, run, sleep, spawnIn } from "../../src/lab/exec.ts";
import { HOLDING_CLIENT, lines } from "../../src/lab/held-connections.ts";
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
const GUEST = "10.77.0.2";
const DIR = "10.77.0.3";
const CLIENT = "10.77.0.100";
const K_VIP_DR = "10.77.0.10";
const K_VIP_NAT = "10.77.0.11";
const T_VIP_DR = "10.77.0.20";
const T_VIP_NAT = "10.77.0.21";
const HELD = 3;

/** `-L -n -c` rows as "pro state source virtual destination" (no expiry), for these VIPs, sorted. */
function entries(listing: string, vips: readonly string[]): string[] {
  return listing
    .split("\n")
    .slice(2)
    .filter((l) => l.trim() !== "")
    .map((l) => l.trim().split(/\s+/))
    .filter((f) => vips.some((v) => f[4]?.startsWith(`${v}:`)))
    .map((f) => [f[0], f[2], f[3], f[4], f[5]].join(" "))
    .sort();
}

/** A held-connection client in the client namespace, driven through its stdin. */
function holder(ns: string, vips: readonly string[], procs: ChildProcess[]): { ping: () => Promise<string[]> } {
  const p = spawn("ip", ["netns", "exec", ns, process.execPath, "-e", HOLDING_CLIENT, vips.join(","), String(HELD)], {
    stdio: ["pipe", "pipe", "pipe"],
  });
  procs.push(p);
  const next = lines(p);
  return {
    ping: async () => {
      p.stdin.write("ping\n");
      return JSON.parse(await next()) as string[];
    },
  };
}

/** A guest script that waits (up to 10 s; TCG is slow) until a TCP listener (v4 or v6) holds this port. */
function listening(port: number, prefix = ""): string {
  const hex = port.toString(16).toUpperCase().padStart(4, "0");
  const check = `${prefix}cat /proc/net/tcp /proc/net/tcp6 | grep -qE ':${hex} 0+:0000 0A'`;
  return `for i in $(seq 100); do ${check} && break; sleep 0.1; done; ${check}`;
}

/** The echoes of round `round` for every held connection (`nc -e cat` sends the line back). */
const echoes = (round: number, n: number) => Array.from({ length: n }, (_, k) => `r${round}c${k}`);

describe("connection sync with kernel IPVS over a real link", { skip: skip ?? false, timeout: 400_000 }, () => {
  let hl: HostLink;
  let vm: KernelVm;
  let dirNs = "";
  let clientNs = "";
  let sock = "";
  let dir = "";
  const procs: ChildProcess[] = [];
  const tvsadm = async (...args: string[]) => (await run(process.execPath, [TVSADM, "--socket", sock, ...args])).stdout;
  const guest = async (script: string) => {
    const r = await vm.run(script, { timeoutMs: 120_000 });
    assert.equal(r.code, 0, `guest: ${script}\n${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    hl = await createHostLink();
    dir = mkdtempSync(join(tmpdir(), "tvs-sync-oracle-"));
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
        "mkdir -p /run/netns /var; [ -e /var/run ] || ln -s /run /var/run",
        `/sbin/ip addr add ${GUEST}/24 dev eth0; /sbin/ip link set eth0 up`,
        `/sbin/ip addr add ${K_VIP_DR}/32 dev eth0; /sbin/ip addr add ${K_VIP_NAT}/32 dev eth0`,
        "/sbin/ip netns add rs",
        "/sbin/ip link add rsh type veth peer name rs0 netns rs",
        "/sbin/ip addr add 10.2.0.1/24 dev rsh; /sbin/ip link set rsh up",
        "/sbin/ip -n rs addr add 10.2.0.2/24 dev rs0; /sbin/ip -n rs link set rs0 up; /sbin/ip -n rs link set lo up",
        `/sbin/ip -n rs addr add ${K_VIP_DR}/32 dev lo`,
        "/sbin/ip -n rs route add default via 10.2.0.1",
        "echo 1 > /proc/sys/net/ipv4/ip_forward",
        // DR replies come back from the real server with the VIP (a local address) as source.
        "echo 1 > /proc/sys/net/ipv4/conf/rsh/accept_local",
        "for f in /proc/sys/net/ipv4/conf/*/rp_filter; do echo 0 > $f; done",
        "/sbin/ip netns exec rs nc -ll -p 80 -e cat </dev/null >/dev/null 2>&1 &",
        listening(80, "/sbin/ip netns exec rs "),
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
  });

  after(async () => {
    for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
    await vm?.close();
    await hl?.lab.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("kernel master, tvsd backup: tvsd lists the kernel's connections", async (t) => {
    await guest(
      [
        "ipvsadm -C",
        `ipvsadm -A -t ${K_VIP_DR}:80 -s rr && ipvsadm -a -t ${K_VIP_DR}:80 -r 10.2.0.2:80 -g`,
        `ipvsadm -A -t ${K_VIP_NAT}:80 -s rr && ipvsadm -a -t ${K_VIP_NAT}:80 -r 10.2.0.2:80 -m`,
        "ipvsadm --start-daemon master --mcast-interface eth0",
      ].join("\n"),
    );
    await tvsadm("--start-daemon", "backup", "--mcast-interface", "eth0");
    const h = holder(clientNs, [K_VIP_DR, K_VIP_NAT], procs);
    // Two rounds: SYN, ACK and data reach the kernel's sync threshold (3 packets) on every entry.
    assert.deepEqual(await h.ping(), echoes(1, 2 * HELD));
    assert.deepEqual(await h.ping(), echoes(2, 2 * HELD));
    const vips = [K_VIP_DR, K_VIP_NAT];
    const kernel = entries(await guest("ipvsadm -L -n -c"), vips);
    assert.equal(kernel.length, 2 * HELD, kernel.join("\n"));
    assert.ok(
      kernel.every((e) => e.startsWith("TCP ESTABLISHED")),
      kernel.join("\n"),
    );
    let ours: string[] = [];
    for (let i = 0; i < 50; i++) {
      ours = entries(await tvsadm("-L", "-n", "-c"), vips);
      if (ours.length >= kernel.length) break;
      await sleep(200);
    }
    assert.deepEqual(ours, kernel);
    for (const e of kernel) t.diagnostic(`kernel and tvsd: ${e}`);
    await guest("ipvsadm --stop-daemon master");
    await tvsadm("--stop-daemon", "backup");
  });

  test("tvsd master, kernel backup: the kernel lists tvsd's connections", async (t) => {
    // The guest becomes the real server of T_VIP_DR (DR) and T_VIP_NAT (NAT, port 8080; its answers
    // from 10.77.0.2 go back through tvsd) and a backup director with no services.
    await guest(
      [
        "ipvsadm -C",
        `/sbin/ip addr add ${T_VIP_DR}/32 dev lo`,
        "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce",
        "nc -ll -p 80 -e cat </dev/null >/dev/null 2>&1 &",
        "nc -ll -p 8080 -e cat </dev/null >/dev/null 2>&1 &",
        `/sbin/ip rule add from ${GUEST} lookup 100; /sbin/ip route add ${CLIENT}/32 via ${DIR} table 100`,
        "ipvsadm --start-daemon backup --mcast-interface eth0",
        listening(80),
        listening(8080),
      ].join("\n"),
    );
    await tvsadm("-A", "-t", `${T_VIP_DR}:80`, "-s", "rr");
    await tvsadm("-a", "-t", `${T_VIP_DR}:80`, "-r", `${GUEST}:80`, "-g");
    await tvsadm("-A", "-t", `${T_VIP_NAT}:80`, "-s", "rr");
    await tvsadm("-a", "-t", `${T_VIP_NAT}:80`, "-r", `${GUEST}:8080`, "-m");
    await tvsadm("--start-daemon", "master", "--mcast-interface", "eth0");
    // The client reaches the VIP through tvsd's director (what VRRP's MASTER would announce).
    const mac = (JSON.parse((await ipIn(dirNs, "-j", "link", "show", "eth0")).stdout) as { address: string }[])[0]
      ?.address as string;
    for (const vip of [T_VIP_DR, T_VIP_NAT])
      await ipIn(clientNs, "neigh", "replace", vip, "lladdr", mac, "dev", "eth0", "nud", "permanent");
    const vips = [T_VIP_DR, T_VIP_NAT];
    const h = holder(clientNs, vips, procs);
    assert.deepEqual(await h.ping(), echoes(1, 2 * HELD));
    assert.deepEqual(await h.ping(), echoes(2, 2 * HELD));
    const ours = entries(await tvsadm("-L", "-n", "-c"), vips);
    assert.equal(ours.length, 2 * HELD, ours.join("\n"));
    assert.ok(
      ours.every((e) => e.startsWith("TCP ESTABLISHED")),
      ours.join("\n"),
    );
    let kernel: string[] = [];
    for (let i = 0; i < 40; i++) {
      kernel = entries(await guest("ipvsadm -L -n -c"), vips);
      if (kernel.length >= ours.length) break;
      await sleep(500);
    }
    assert.deepEqual(kernel, ours);
    for (const e of ours) t.diagnostic(`tvsd and kernel: ${e}`);
  });
});
