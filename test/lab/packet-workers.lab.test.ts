// tvsd's packet plane with two worker threads sharing the director's interface: for NAT and FULLNAT
// (whose replies must reach the worker that owns the connection) and DR, every request of a curl
// loop is answered, both workers carry traffic, and the daemon's listings are the sum over workers
// (--stats counts every connection, -c lists every entry, -Z zeroes the workers' counters). Table
// changes reach every worker (a quiesced real server gets no new connection on either), and a
// persistent service keeps one client on one real server even though its connections come from
// many source ports (the steering program keeps a client on one worker, whose template decides).
import assert from "node:assert/strict";
import { test } from "node:test";
import { Experiment } from "../../src/lab/experiment.ts";
import { FULLNAT_LOCAL_IP, type LabMode, VIP } from "../../src/lab/topology.ts";

const root = process.getuid?.() === 0;
const FWD = { nat: "-m", dr: "-g", tun: "-i", fullnat: "--fullnat" } as const;

interface Snap {
  services: {
    key: { protocol?: string; port?: number };
    stats: { conns: number; inPkts: number; outPkts: number };
    dests: { addr: string; activeConns: number; inactConns: number; stats: { conns: number } }[];
  }[];
}

async function httpStats(exp: Experiment) {
  const snap = JSON.parse(await exp.tvsadm(["-L", "-n", "--stats", "--json"], true)) as Snap;
  const http = snap.services.find((s) => s.key.protocol === "tcp" && s.key.port === 80);
  assert.ok(http, "the HTTP service is listed");
  return http;
}

for (const mode of ["nat", "fullnat", "dr"] as const satisfies readonly LabMode[]) {
  test(
    `two packet workers, ${mode}: every flow answered, listings summed over workers`,
    {
      skip: root ? false : "needs root",
      timeout: 240_000,
    },
    async (t) => {
      const exp = await Experiment.start({ mode, workers: 2 });
      t.after(() => exp.stop());
      const [rs1, rs2] = exp.topo.realServers;
      assert.ok(rs1 && rs2);

      // 40 connections from 40 source ports: the steering spreads them over both workers.
      const { sequence } = await exp.curlLoop(40);
      const count = (n: string) => sequence.filter((s) => s === n).length;
      assert.equal(count(""), 0, `no request failed (${sequence.join(" ")})`);
      // rr runs per worker: each alternates on its own, so the totals differ by at most one per worker.
      assert.ok(Math.abs(count("rs1") - count("rs2")) <= 2, `rr balance ${count("rs1")}/${count("rs2")}`);

      const http = await httpStats(exp);
      assert.equal(http.stats.conns, 40, "every connection counted once, whichever worker took it");
      assert.equal(
        http.dests.reduce((n, d) => n + d.stats.conns, 0),
        40,
        "the destinations' connection counters add up",
      );
      if (mode === "dr") assert.equal(http.stats.outPkts, 0, "DR replies bypass the director");
      else assert.ok(http.stats.outPkts > 0, "replies came back through the director");

      // -c: every worker's entries for the 40 connections.
      const conns = await exp.tvsadm(["-L", "-n", "-c"], true);
      const entries = conns.split("\n").filter((l) => l.startsWith("TCP") && l.includes(`${VIP}:80`));
      assert.equal(entries.length, 40, `connection entries listed:\n${conns}`);

      // Both workers carried traffic (tvs status shows each worker's frames).
      const statusOut = await exp.tvs(["status"]);
      const frames = [...statusOut.matchAll(/worker (\d+): (\d+) frames/g)].map((m) => Number(m[2]));
      assert.equal(frames.length, 2, `two workers in tvs status:\n${statusOut}`);
      assert.ok(
        frames.every((n) => n > 0),
        `both workers received frames (${frames.join(", ")})`,
      );

      // -Z reaches the workers' own counters.
      await exp.tvsadm(["-Z"]);
      for (let i = 0; i < 4; i++) assert.match(await exp.request(), /^rs[12]$/);
      assert.equal((await httpStats(exp)).stats.conns, 4, "counted from zero after -Z");

      // A table change reaches every worker: quiesce rs1, and no worker sends it new connections.
      await exp.tvsadm(["-e", "-t", `${VIP}:80`, "-r", `${rs1.ip}:80`, FWD[mode], "-w", "0"]);
      const after = await exp.curlLoop(12);
      assert.deepEqual(new Set(after.sequence), new Set(["rs2"]), `only rs2 after quiescing rs1: ${after.sequence}`);
      await exp.tvsadm(["-e", "-t", `${VIP}:80`, "-r", `${rs1.ip}:80`, FWD[mode], "-w", "1"]);

      if (mode === "fullnat") assert.equal(await exp.request("/peer"), FULLNAT_LOCAL_IP);

      if (mode === "nat") {
        // Persistence: one client, many source ports, one real server.
        await exp.tvsadm(["-E", "-t", `${VIP}:80`, "-s", "rr", "-p", "60"]);
        const sticky = await exp.curlLoop(12);
        assert.equal(new Set(sticky.sequence).size, 1, `a persistent client stays on one server: ${sticky.sequence}`);
        assert.match(sticky.sequence[0] ?? "", /^rs[12]$/);
        // One template for the client: with its connections spread over both workers there would
        // be one per worker (and, half the time, two servers).
        const listing = await exp.tvsadm(["-L", "-n", "-c"], true);
        const templates = listing.split("\n").filter((l) => /\bNONE\b/.test(l) && l.includes(`${VIP}:80`));
        assert.equal(templates.length, 1, `one persistence template:\n${listing}`);
      }
    },
  );
}
