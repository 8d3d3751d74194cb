// Real SCTP associations through tvsd's packet plane. The host kernel has no SCTP, the oracle VM's
// has: the guest (host-link.ts: a tap on a lab bridge, its virtio-net eth0) puts two SCTP endpoints
// in namespaces on macvlan interfaces of eth0, a client (10.79.0.100) and a real server
// (10.79.0.2), both on the bridge beside a host namespace running tvsd on the packet plane
// (10.79.0.3). tools/ipvs-oracle/sctp-echo.c is the endpoint: the client associates, sends one
// message, reads the answer and shuts the association down.
//  - NAT (10.79.0.10:5000 → 10.79.0.2:6000, port mapped, so every packet's CRC32c is carried over
//    a port rewrite both ways; the real server routes the client back through tvsd).
//  - DR (10.79.0.11:5000; the real server holds the VIP on lo with arp_ignore).
// Each association must complete (the guest kernel's SCTP drops any packet whose CRC32c is wrong,
// so an answer proves the checksums), and tvsd's `-L -n -c` must show the entry CLOSED after the
// SHUTDOWN, with the traffic counted on the service.
// Needs root (namespaces, tap), the native addon and an image with sctp-echo; skips otherwise.

import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
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
const CLIENT = "10.79.0.100";
const RS = "10.79.0.2";
const DIR = "10.79.0.3";
const VIP_NAT = "10.79.0.10";
const VIP_DR = "10.79.0.11";

describe(
  "SCTP associations through tvsd's packet plane (guest kernel endpoints)",
  { skip: skip ?? false, timeout: 300_000 },
  () => {
    let hl: HostLink;
    let vm: KernelVm;
    let sock = "";
    let dir = "";
    let noTool = "";
    const procs: ChildProcess[] = [];
    const tvsadm = async (...args: string[]) =>
      (await run(process.execPath, [TVSADM, "--socket", sock, ...args])).stdout;
    const guest = async (script: string) => {
      const r = await vm.run(script, { timeoutMs: 120_000 });
      return r;
    };
    const mustGuest = async (script: string) => {
      const r = await guest(script);
      assert.equal(r.code, 0, `guest: ${script}\n${r.stdout}\n${r.stderr}`);
      return r.stdout;
    };

    before(async () => {
      hl = await createHostLink();
      dir = mkdtempSync(join(tmpdir(), "sctp-sip-oracle-"));
      const d = await hl.lab.addHost("dir");
      await ipIn(d.ns, "addr", "add", `${DIR}/24`, "dev", "eth0");
      vm = await KernelVm.boot({ link: hl.link });
      if ((await guest("[ -x /sbin/sctp-echo ]")).code !== 0) {
        noTool = "the oracle image has no sctp-echo (tools/ipvs-oracle/build.sh needs gcc with a static libc)";
        return;
      }
      await mustGuest(
        [
          "mkdir -p /run/netns /var; [ -e /var/run ] || ln -s /run /var/run",
          "modprobe sctp && modprobe macvlan",
          "/sbin/ip link set eth0 up",
          "/sbin/ip netns add cl; /sbin/ip netns add rs",
          "/sbin/ip link add cl0 link eth0 type macvlan mode bridge; /sbin/ip link set cl0 netns cl",
          "/sbin/ip link add rs0 link eth0 type macvlan mode bridge; /sbin/ip link set rs0 netns rs",
          `/sbin/ip -n cl addr add ${CLIENT}/24 dev cl0; /sbin/ip -n cl link set cl0 up; /sbin/ip -n cl link set lo up`,
          `/sbin/ip -n rs addr add ${RS}/24 dev rs0; /sbin/ip -n rs link set rs0 up; /sbin/ip -n rs link set lo up`,
          // NAT: answers from the real server's address go back through tvsd (a source rule);
          // DR: answers from the VIP (on lo, never in ARP) go to the client directly.
          `/sbin/ip -n rs rule add from ${RS} lookup 100; /sbin/ip -n rs route add ${CLIENT}/32 via ${DIR} table 100`,
          `/sbin/ip -n rs addr add ${VIP_DR}/32 dev lo`,
          "/sbin/ip netns exec rs sh -c 'echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore; echo 2 > /proc/sys/net/ipv4/conf/all/arp_announce'",
          `/sbin/ip netns exec rs sctp-echo server ${RS} 6000 rs-nat </dev/null >/dev/null 2>&1 &`,
          `/sbin/ip netns exec rs sctp-echo server ${VIP_DR} 5000 rs-dr </dev/null >/dev/null 2>&1 &`,
          "sleep 0.5",
        ].join("\n"),
      );
      const p = spawnIn(d.ns, process.execPath, [
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
      await tvsadm("-A", "--sctp-service", `${VIP_NAT}:5000`, "-s", "rr");
      await tvsadm("-a", "--sctp-service", `${VIP_NAT}:5000`, "-r", `${RS}:6000`, "-m");
      await tvsadm("-A", "--sctp-service", `${VIP_DR}:5000`, "-s", "rr");
      await tvsadm("-a", "--sctp-service", `${VIP_DR}:5000`, "-r", `${RS}:5000`, "-g");
    });

    after(async () => {
      for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
      await vm?.close();
      await hl?.lab.destroy();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    for (const [method, vip, answer] of [
      ["NAT", VIP_NAT, "rs-nat"],
      ["DR", VIP_DR, "rs-dr"],
    ] as const) {
      test(`${method}: an association completes through tvsd and its entry ends CLOSED`, async (t) => {
        if (noTool) {
          t.skip(noTool);
          return;
        }
        for (let round = 1; round <= 2; round++) {
          const r = await guest(`/sbin/ip netns exec cl sctp-echo client ${CLIENT} ${vip} 5000 hello${round}`);
          if (r.code !== 0) {
            const why = await guest(
              "for n in cl rs; do echo == $n; /sbin/ip netns exec $n cat /proc/net/sctp/snmp | grep -E 'InSCTPPacks|OutSCTPPacks|ChecksumErrors|OutOfBlues|InCtrlChunks'; /sbin/ip -n $n neigh; done",
            );
            assert.fail(
              `association ${round} through ${vip}: ${r.stdout}${r.stderr}\n${why.stdout}\n${await tvsadm("-L", "-n", "-c")}`,
            );
          }
          assert.equal(r.stdout.trim(), `${answer}:hello${round}`);
        }
        const listing = await tvsadm("-L", "-n", "-c");
        const rows = listing.split("\n").filter((l) => l.includes(` ${vip}:5000 `));
        assert.equal(rows.length, 2, `two associations listed:\n${listing}`);
        for (const row of rows) {
          t.diagnostic(row);
          assert.match(row, /^SCTP \S+ +CLOSED /, row);
        }
        const stats = await tvsadm("-L", "-n", "--stats", "--sctp-service", `${vip}:5000`);
        const svcLine = stats.split("\n").find((l) => l.startsWith("SCTP"));
        assert.ok(svcLine, stats);
        const [, , conns, inPkts, outPkts] = svcLine.trim().split(/\s+/);
        assert.equal(Number(conns), 2, stats);
        // INIT, COOKIE ECHO, DATA, SACK, SHUTDOWN and SHUTDOWN COMPLETE at least, per association.
        assert.ok(Number(inPkts) >= 2 * 5, stats);
        if (method === "NAT") assert.ok(Number(outPkts) >= 2 * 4, stats);
        else assert.equal(Number(outPkts), 0, stats);
      });
    }
  },
);
