// The seeds' experiments through tvsd's packet data plane, one per forwarding method, with real
// kernels' TCP stacks in network namespaces: rr alternates, wrr 2:1 gives 66/33 over 99 requests
// (seed 001's 67/33), DR and TUN replies bypass the director (its counters and a capture agree),
// NAT maps ports, FULLNAT real servers see the director's local address, UDP works, and a 20 MB
// transfer arrives intact.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Experiment } from "../../src/lab/experiment.ts";
import { bulkBody, sha256 } from "../../src/lab/servers.ts";
import { CLIENT_IP, FULLNAT_LOCAL_IP, type LabMode, MAPPED_PORT, VIP } from "../../src/lab/topology.ts";

const root = process.getuid?.() === 0;

for (const mode of ["nat", "dr", "tun", "fullnat"] as const satisfies readonly LabMode[]) {
  test(
    `lab ${mode}: distribution, bypass, UDP and bulk transfer`,
    { skip: root ? false : "needs root", timeout: 240_000 },
    async (t) => {
      const exp = await Experiment.start({ mode });
      t.after(() => exp.stop());

      // rr: the kernel's list has the last-added destination first, so rs2 answers first.
      const rr: string[] = [];
      for (let i = 0; i < 6; i++) rr.push(await exp.request());
      assert.deepEqual(rr, ["rs2", "rs1", "rs2", "rs1", "rs2", "rs1"]);

      // Seed 001: wrr with rs1 weight 2 and rs2 weight 1.
      await exp.tvsadm(["-E", "-t", `${VIP}:80`, "-s", "wrr"]);
      const fwd = { nat: "-m", dr: "-g", tun: "-i", fullnat: "--fullnat" }[mode];
      await exp.tvsadm(["-e", "-t", `${VIP}:80`, "-r", `${exp.topo.realServers[0]?.ip}:80`, fwd, "-w", "2"]);
      await exp.tvsadm(["-e", "-t", `${VIP}:80`, "-r", `${exp.topo.realServers[1]?.ip}:80`, fwd, "-w", "1"]);
      const { sequence, captured } = await exp.curlLoop(99);
      const count = (n: string) => sequence.filter((s) => s === n).length;
      assert.equal(count(""), 0, "no request failed");
      assert.equal(count("rs1"), 66);
      assert.equal(count("rs2"), 33);

      const snap = JSON.parse(await exp.tvsadm(["-L", "-n", "--stats", "--json"], true)) as {
        services: { key: { protocol?: string; port?: number }; stats: { conns: number; outPkts: number } }[];
      };
      const http = snap.services.find((s) => s.key.protocol === "tcp" && s.key.port === 80);
      assert.ok(http, "the HTTP service is listed");
      assert.ok(http.stats.conns >= 105, `conns counted (${http.stats.conns})`);
      if (mode === "dr" || mode === "tun") {
        assert.equal(http.stats.outPkts, 0, "the director saw no replies (OutPkts)");
        assert.equal(captured, 0, "no reply crossed the director's interface");
      } else {
        assert.ok(http.stats.outPkts > 0, "replies went through the director");
        assert.ok(captured > 0, "the capture saw replies from the real servers");
      }

      // UDP through the same director.
      const udp = await exp.udpRequest();
      assert.match(udp, /^rs[12]$/);

      // A 20 MB transfer arrives intact.
      const size = 20 * 1024 * 1024;
      const body = await exp.fetchBytes(`/bulk/${size}`);
      assert.equal(body.length, size);
      assert.equal(sha256(body), sha256(bulkBody(size)));

      if (mode === "nat") {
        // Port mapping: VIP:8000 → RS:8080.
        await exp.tvsadm(["-A", "-t", `${VIP}:8000`, "-s", "rr"]);
        await exp.tvsadm(["-a", "-t", `${VIP}:8000`, "-r", `${exp.topo.realServers[0]?.ip}:${MAPPED_PORT}`, "-m"]);
        assert.equal(await exp.request("/", 8000), "rs1");
      }
      const peer = await exp.request("/peer");
      assert.equal(peer, mode === "fullnat" ? FULLNAT_LOCAL_IP : CLIENT_IP);
    },
  );
}
