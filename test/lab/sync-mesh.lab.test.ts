// A sync mesh: three tvsd directors on the packet plane, in network namespaces on one bridge, each
// running a master and a backup sync daemon at once (`tvsadm --start-daemon master --syncid N` and
// `--start-daemon backup --syncid 0`, multicast 224.0.0.81:8848 on eth0), as active-active
// directors behind ECMP need. A client holds connections open through each director (one VIP per
// director: the client's neighbour entry for VIP i points at director i; DR to one real server).
// Then:
//   - `tvsadm -L --daemon` prints both daemons on every director, as ipvsadm prints the kernel's;
//   - every director's `tvsadm -L -n -c` lists every held connection, its own and the others';
//   - each director's backup created exactly the other two directors' connections: a master's
//     messages never come back to its own host's backup (multicast loop off, as the kernel's).
// Needs root and the built addon; skips with the reason otherwise.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ipIn, isRoot, run, runIn, sleep, spawnIn } from "../../src/lab/exec.ts";
import { HOLDING_CLIENT, LINE_SERVER, lines } from "../../src/lab/held-connections.ts";
import { Lab } from "../../src/lab/netns.ts";
import { REPO_ROOT } from "../../src/lab/topology.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, raw sockets)";
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

const TVSD = join(REPO_ROOT, "bin", "tvsd.js");
const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");

const CLIENT = "10.87.0.100";
const DIRECTORS = ["10.87.0.2", "10.87.0.3", "10.87.0.4"];
const RS = "10.87.0.21";
const VIPS = ["10.87.0.10", "10.87.0.11", "10.87.0.12"];
const HELD = 8;

/** -L -n -c without the expire column, sorted. */
function entries(listing: string): string[] {
  return listing
    .split("\n")
    .slice(2)
    .filter((l) => l.trim() !== "")
    .map((l) => {
      const f = l.trim().split(/\s+/);
      return [f[0], f[2], f[3], f[4], f[5]].join(" ");
    })
    .sort();
}

async function macOf(ns: string): Promise<string> {
  const r = await ipIn(ns, "-j", "link", "show", "eth0");
  return (JSON.parse(r.stdout) as { address: string }[])[0]?.address as string;
}

test(
  "three tvsd directors, each a sync master and backup at once, each list everyone's connections",
  { skip: skip ?? false, timeout: 120_000 },
  async (t) => {
    const lab = new Lab();
    const procs: ChildProcess[] = [];
    const dir = mkdtempSync(join(tmpdir(), "tvs-sync-mesh-"));
    t.after(async () => {
      for (const p of procs) if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, "SIGKILL");
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
    await lab.createSwitch();
    const client = await lab.addHost("client");
    const ds = [await lab.addHost("d1"), await lab.addHost("d2"), await lab.addHost("d3")];
    const rs = await lab.addHost("rs");
    await ipIn(client.ns, "addr", "add", `${CLIENT}/24`, "dev", "eth0");
    for (const [i, d] of ds.entries()) await ipIn(d.ns, "addr", "add", `${DIRECTORS[i]}/24`, "dev", "eth0");
    await ipIn(rs.ns, "addr", "add", `${RS}/24`, "dev", "eth0");
    for (const v of VIPS) await ipIn(rs.ns, "addr", "add", `${v}/32`, "dev", "lo");
    for (const k of ["net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2"])
      await runIn(rs.ns, "sysctl", ["-qw", k]);
    const server = spawnIn(rs.ns, process.execPath, ["-e", LINE_SERVER, "rs", "80"]);
    procs.push(server);
    assert.equal(await lines(server)(), "listening");

    const rules = join(dir, "rules");
    writeFileSync(
      rules,
      VIPS.flatMap((v) => [`-A -t ${v}:80 -s rr`, `-a -t ${v}:80 -r ${RS}:80 -g -w 1`, ""]).join("\n"),
    );
    const tvsadm = async (socket: string, ...args: string[]) =>
      (await run(process.execPath, [TVSADM, "--socket", socket, ...args])).stdout;
    const sockets: string[] = [];
    for (const [i, d] of ds.entries()) {
      const socket = join(dir, `d${i + 1}.sock`);
      const proc = spawnIn(d.ns, process.execPath, [
        TVSD,
        ...["--dataplane", "packet", "--interface", "eth0", "--socket", socket, "--rules", rules, "--http", "none"],
      ]);
      let err = "";
      proc.stderr?.on("data", (b: Buffer) => {
        err = (err + b.toString()).slice(-4000);
      });
      proc.stdout?.resume();
      procs.push(proc);
      for (let k = 0; ; k++) {
        if (proc.exitCode !== null || k > 200) throw new Error(`tvsd d${i + 1} did not come up: ${err}`);
        const r = await run(process.execPath, [TVSADM, "--socket", socket, "-L", "-n"]).catch(() => undefined);
        if (r?.stdout.includes(VIPS[2]!)) break;
        await sleep(100);
      }
      sockets.push(socket);
    }
    for (const [i, s] of sockets.entries()) {
      await tvsadm(s, "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", String(i + 1));
      await tvsadm(s, "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "0");
      assert.equal(
        await tvsadm(s, "-L", "--daemon"),
        `master sync daemon (mcast=eth0, syncid=${i + 1}, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n` +
          "backup sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n",
      );
    }

    // Every backup's start-up resync is answered before any connection opens: a late answer
    // would bring entries the backup already learnt, counted as updates, which below mean a loop.
    for (const s of sockets)
      for (let k = 0; ; k++) {
        const st = (await run(process.execPath, [join(REPO_ROOT, "bin", "tvs.js"), "status", "--socket", s])).stdout;
        if (/Sync backup on eth0 .*resync complete/.test(st)) break;
        if (k > 100) assert.fail(`no resync completed on ${s}:\n${st}`);
        await sleep(100);
      }

    // VIP i is reached through director i.
    for (const [i, d] of ds.entries())
      await ipIn(
        client.ns,
        "neigh",
        "replace",
        VIPS[i]!,
        "lladdr",
        await macOf(d.ns),
        "dev",
        "eth0",
        "nud",
        "permanent",
      );
    const holder = spawn(
      "ip",
      ["netns", "exec", client.ns, process.execPath, "-e", HOLDING_CLIENT, VIPS.join(","), String(HELD)],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    procs.push(holder);
    const next = lines(holder);
    const ping = async (): Promise<string[]> => {
      holder.stdin?.write("ping\n");
      return JSON.parse(await next()) as string[];
    };
    // Two rounds: SYN, ACK and two data segments in, past the sync threshold (3 packets).
    for (const round of [1, 2])
      assert.deepEqual(
        await ping(),
        Array.from({ length: 3 * HELD }, (_, k) => `rs:r${round}c${k}`),
      );

    // Each director forwarded only its own VIP's connections...
    const own = await Promise.all(sockets.map(async (s) => entries(await tvsadm(s, "--list", "-n", "-c"))));
    // ...which the others learn within the 2 s flush: every listing becomes the union.
    const union = [...new Set(own.flat())].sort();
    assert.equal(union.length, 3 * HELD);
    assert.ok(
      union.every((e) => e.startsWith("TCP ESTABLISHED")),
      union.join("\n"),
    );
    for (const [i, s] of sockets.entries()) {
      let got: string[] = [];
      for (let k = 0; k < 50; k++) {
        got = entries(await tvsadm(s, "-L", "-n", "-c"));
        if (got.length === union.length) break;
        await sleep(200);
      }
      assert.deepEqual(got, union, `d${i + 1} lists every director's connections`);
      const mine = got.filter((e) => e.includes(`${VIPS[i]}:80`));
      assert.equal(mine.length, HELD);
    }
    // Nothing came back to its sender: each backup created the other two directors' 2 × HELD.
    for (const [i, s] of sockets.entries()) {
      const st = (await run(process.execPath, [join(REPO_ROOT, "bin", "tvs.js"), "status", "--socket", s])).stdout;
      assert.match(st, new RegExp(`Sync master on eth0 \\(syncid ${i + 1}, 224\\.0\\.0\\.81:8848\\)`));
      assert.match(
        st,
        new RegExp(
          `Sync backup on eth0 \\(syncid 0, .*: \\d+ messages, ${2 * HELD} entries, ${2 * HELD} created, 0 updated`,
        ),
        st,
      );
    }
    holder.stdin?.write("quit\n");
  },
);
