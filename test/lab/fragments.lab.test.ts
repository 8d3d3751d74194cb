// Fragmented UDP through tvsd's packet plane, with real kernels on both ends: an 8000-byte
// datagram leaves the client as fragments; the director's packet socket gets it reassembled by the
// kernel (PACKET_FANOUT_FLAG_DEFRAG), schedules it on its ports, and sends it on cut again; the
// real server echoes it (its reply fragmented as well, which NAT and FULLNAT bring back through the
// director). The client must get its bytes back intact — as through kernel IPVS behind defrag.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Experiment } from "../../src/lab/experiment.ts";
import type { LabMode } from "../../src/lab/topology.ts";

const root = process.getuid?.() === 0;

const cases: [LabMode, number][] = [
  ["nat", 1],
  ["dr", 1],
  ["fullnat", 1],
  ["tun", 1],
  ["nat", 2],
];

for (const [mode, workers] of cases) {
  test(
    `${mode}, ${workers} worker(s): an 8000-byte UDP datagram and its echo cross as fragments`,
    {
      skip: root ? false : "needs root",
      timeout: 180_000,
    },
    async (t) => {
      const exp = await Experiment.start({ mode, workers });
      t.after(() => exp.stop());
      assert.match(await exp.udpRequest(), /^rs[12]$/, "small datagrams pass");
      for (let i = 0; i < 4; i++) assert.match(await exp.udpRequest(undefined, 8000), /^rs[12] echo-ok$/);
      const status = await exp.tvs(["status"]);
      assert.match(status, /frames rx \d+/);
    },
  );
}
