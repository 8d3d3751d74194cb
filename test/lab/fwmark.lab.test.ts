// A persistent fwmark service on tvsd's packet plane, with real kernels' TCP stacks: tvsd classifies
// frames with `--fwmark-rule 'tcp VIP 80,443 mark 1'` (iptables' MARK cannot reach a packet
// socket), tvsadm -A -f 1 -s rr -p 300 and -a -f 1 -r RS make the service, and every real server
// listens on 80 and 443. For DR and NAT: each of six client addresses reaches one real server on
// both ports (the template is keyed by the mark, not the port), the clients spread over both
// real servers, tvs fwmark shows the rule feeding FWM 1, and a mark no rule sets is warned about.
// NAT runs once more with two packet workers (the steering keeps a persistent client on one). DR
// reads the rule from a file; SIGHUP reads it again, and a broken file is refused. The last test
// routes a /24 to the director and marks it with one rule, on two packet workers.
import assert from "node:assert/strict";
import type { ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ipIn, runIn, sleep } from "../../src/lab/exec.ts";
import { Experiment, FORWARD_FLAG } from "../../src/lab/experiment.ts";
import { startNameServer } from "../../src/lab/servers.ts";
import { UDP_PORT } from "../../src/lab/topology.ts";

const root = process.getuid?.() === 0;

async function waitFor(ok: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`Not reached within ${ms} ms`);
    await sleep(200);
  }
}
const HTTPS_PORT = 443;

const CASES = [
  // DR reads its rule from --fwmark-rules FILE, and a SIGHUP later reads the file again.
  { mode: "dr", workers: 1, file: true },
  { mode: "nat", workers: 1, file: false },
  // Two packet workers: the steering program keeps a persistent fwmark service's client on one worker.
  { mode: "nat", workers: 2, file: false },
] as const;

for (const { mode, workers, file } of CASES) {
  test(
    `fwmark ${mode}${workers > 1 ? `, ${workers} packet workers` : ""}: one client's ports 80 and 443 reach one real server; clients spread`,
    { skip: root ? false : "needs root (network namespaces, raw sockets)", timeout: 180_000 },
    async (t) => {
      const vip = "192.168.122.22";
      const dir = mkdtempSync(join(tmpdir(), "fwmark-lab-"));
      const rulesFile = join(dir, "fwmark.rules");
      writeFileSync(rulesFile, `# web: http and https share mark 1\ntcp ${vip} 80,${HTTPS_PORT} mark 1\n`);
      const exp = await Experiment.start({
        mode,
        workers,
        configure: false,
        tvsdArgs: file ? ["--fwmark-rules", rulesFile] : ["--fwmark-rule", `tcp ${vip} 80,${HTTPS_PORT} mark 1`],
      });
      const extra: ChildProcess[] = [];
      t.after(async () => {
        for (const c of extra) if (c.exitCode === null && c.pid !== undefined) c.kill("SIGTERM");
        await exp.stop();
        rmSync(dir, { recursive: true, force: true });
      });
      assert.equal(exp.vip, vip);
      const { client, director } = exp.topo;
      // A second listener on each real server: "https" on 443 (plain HTTP; the port is what counts).
      for (const rs of exp.topo.realServers)
        extra.push(startNameServer(rs.host.ns, rs.name, [HTTPS_PORT], UDP_PORT + 1));

      await exp.tvsadm(["-A", "-f", "1", "-s", "rr", "-p", "300"]);
      for (const rs of exp.topo.realServers) await exp.tvsadm(["-a", "-f", "1", "-r", rs.ip, FORWARD_FLAG[mode]]);
      const listing = await exp.tvsadm(["-L", "-n"], true);
      assert.match(listing, /FWM {2}1 rr persistent 300/, listing);

      // Six clients on the segment; NAT real servers send their replies back through the director.
      const clients = [71, 72, 73, 74, 75, 76].map((o) => `192.168.122.${o}`);
      for (const c of clients) {
        await ipIn(client.ns, "addr", "add", `${c}/24`, "dev", "eth0");
        if (mode === "nat")
          for (const rs of exp.topo.realServers)
            await ipIn(rs.host.ns, "route", "replace", `${c}/32`, "via", exp.topo.plan.director);
      }
      const get = (src: string, port: number) =>
        runIn(client.ns, "curl", ["-s", "-m", "3", "--interface", src, `http://${vip}:${port}/`]).then(
          (r) => r.stdout.trim(),
          () => "",
        );

      const servedBy = new Map<string, string>();
      for (const c of clients) {
        const seen: string[] = [];
        for (const port of [80, HTTPS_PORT, 80, HTTPS_PORT]) seen.push(await get(c, port));
        assert.ok(
          seen.every((s) => /^rs[12]$/.test(s)),
          `${c}: every request answered (${seen.join(" ")})`,
        );
        assert.equal(new Set(seen).size, 1, `${c}: ports 80 and 443 on one real server (${seen.join(" ")})`);
        servedBy.set(c, seen[0]!);
      }
      assert.deepEqual(
        new Set(servedBy.values()),
        new Set(["rs1", "rs2"]),
        `clients spread over both real servers: ${[...servedBy].join(", ")}`,
      );

      // One template per client, keyed by the mark (ipvsadm shows the port as 0 with the mark).
      const conns = await exp.tvsadm(["-L", "-n", "-c"], true);
      const templates = conns.split("\n").filter((l) => /\bNONE\b/.test(l));
      assert.equal(templates.length, clients.length, `one persistence template per client:\n${conns}`);

      // The host kernel is kept out of the rule's address; the rule is listed with its service.
      const nft = await runIn(director.ns, "nft", ["list", "table", "netdev", "tvs_eth0"]);
      assert.match(nft.stdout, new RegExp(`ip daddr ${vip.replace(/\./g, "\\.")} drop`));
      let shown = await exp.tvs(["fwmark"]);
      const from = file ? `${rulesFile}:2` : "--fwmark-rule 1";
      assert.ok(
        shown.split("\n").some((l) => /^ +1 +tcp +\S+ +80,443 +\* +1 +FWM 1 +/.test(l) && l.endsWith(from)),
        shown,
      );

      // A service whose mark no rule sets is warned about (its traffic could never arrive).
      await exp.tvsadm(["-A", "-f", "2", "-s", "rr"]);
      shown = await exp.tvs(["fwmark"]);
      assert.match(shown, /Warning: FWM 2: no rule sets mark 2 for IPv4/, shown);
      assert.match(await exp.tvs(["status"]), /FWM 2: no firewall-mark rule sets mark 2/);

      if (file) {
        // SIGHUP reads the file again: 443 leaves the rule, so a new client's https finds no
        // service on the director's own VIP (dropped) while its http still works.
        const pid = exp.tvsdProcess?.pid;
        assert.ok(pid !== undefined);
        writeFileSync(rulesFile, `tcp ${vip} 80 mark 1\n`);
        process.kill(pid, "SIGHUP");
        await waitFor(async () => /tcp +\S+ +80 +\* +1 +FWM 1/.test(await exp.tvs(["fwmark"])), 10_000);
        const late = "192.168.122.77";
        await ipIn(client.ns, "addr", "add", `${late}/24`, "dev", "eth0");
        assert.match(await get(late, 80), /^rs[12]$/, "http still marked after the reload");
        assert.equal(await get(late, HTTPS_PORT), "", "https no longer marked: no service takes it");
        // A broken file is refused with its position; the rules in force stay.
        writeFileSync(rulesFile, `tcp ${vip} 80 mark one\n`);
        process.kill(pid, "SIGHUP");
        await waitFor(async () => /Last reload .*refused.*fwmark\.rules:1:/.test(await exp.tvs(["status"])), 10_000);
        assert.match(await exp.tvs(["fwmark"]), /tcp +\S+ +80 +\* +1 +FWM 1/);
        assert.match(await get(late, 80), /^rs[12]$/);
      }
    },
  );
}

// A rule's wider prefix: a router (here the client's own route) sends 10.99.0.0/24 to the director,
// which answers ARP for none of its addresses but takes what the rule marks. NAT on two packet
// workers: the steering program matches the prefix, so each request and its reply meet on one
// worker; the template is keyed by the mark, not the address, so one client's http to one address
// of the prefix and https to another reach one real server.
test(
  "fwmark nat, 2 packet workers, a routed /24: requests to any of its addresses served, one client on one real server",
  { skip: root ? false : "needs root (network namespaces, raw sockets)", timeout: 180_000 },
  async (t) => {
    const prefix = "10.99.0";
    const exp = await Experiment.start({
      mode: "nat",
      workers: 2,
      configure: false,
      tvsdArgs: ["--fwmark-rule", `tcp ${prefix}.0/24 80,${HTTPS_PORT} mark 1`],
    });
    const extra: ChildProcess[] = [];
    t.after(async () => {
      for (const c of extra) if (c.exitCode === null && c.pid !== undefined) c.kill("SIGTERM");
      await exp.stop();
    });
    const { client, director } = exp.topo;
    const dip = exp.topo.plan.director;
    for (const rs of exp.topo.realServers) extra.push(startNameServer(rs.host.ns, rs.name, [HTTPS_PORT], UDP_PORT + 1));
    await exp.tvsadm(["-A", "-f", "1", "-s", "rr", "-p", "300"]);
    for (const rs of exp.topo.realServers) await exp.tvsadm(["-a", "-f", "1", "-r", rs.ip, "-m"]);
    await ipIn(client.ns, "route", "add", `${prefix}.0/24`, "via", dip);
    const clients = [81, 82, 83, 84, 85, 86].map((o) => `192.168.122.${o}`);
    for (const c of clients) {
      await ipIn(client.ns, "addr", "add", `${c}/24`, "dev", "eth0");
      for (const rs of exp.topo.realServers) await ipIn(rs.host.ns, "route", "replace", `${c}/32`, "via", dip);
    }
    const get = (src: string, dst: string, port: number) =>
      runIn(client.ns, "curl", ["-s", "-m", "3", "--interface", src, `http://${dst}:${port}/`]).then(
        (r) => r.stdout.trim(),
        () => "",
      );
    const servedBy = new Map<string, string>();
    for (const [i, c] of clients.entries()) {
      const seen = [
        await get(c, `${prefix}.${10 + i}`, 80),
        await get(c, `${prefix}.${100 + i}`, HTTPS_PORT),
        await get(c, `${prefix}.${200 + i}`, 80),
      ];
      assert.ok(
        seen.every((s) => /^rs[12]$/.test(s)),
        `${c}: every request answered (${seen.join(" ")})`,
      );
      assert.equal(new Set(seen).size, 1, `${c}: one real server for the mark (${seen.join(" ")})`);
      servedBy.set(c, seen[0]!);
    }
    assert.deepEqual(new Set(servedBy.values()), new Set(["rs1", "rs2"]), [...servedBy].join(", "));
    // A port no rule covers is left to the host, which does not serve it.
    assert.equal(await get(clients[0]!, `${prefix}.5`, 8080), "");
    const nft = await runIn(director.ns, "nft", ["list", "table", "netdev", "tvs_eth0"]);
    assert.match(nft.stdout, /ip daddr 10\.99\.0\.0\/24 tcp dport \{ 80, 443 \} drop/, nft.stdout);
    const status = await exp.tvs(["status"]);
    const frames = [...status.matchAll(/worker (\d+): (\d+) frames/g)].map((m) => Number(m[2]));
    assert.equal(frames.length, 2, status);
  },
);
