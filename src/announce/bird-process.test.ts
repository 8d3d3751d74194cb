// BirdAnnouncer's refusals (the running BIRD is exercised by test/lab/ecmp.lab.test.ts): a missing
// BIRD is named with the way to install it, before anything is started.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "../core/log.ts";
import { BirdAnnouncer } from "./bird-process.ts";

test("a missing BIRD is refused with its path and how to install it; nothing runs", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-bird-missing-"));
  try {
    const a = new BirdAnnouncer(
      {
        daemon: "bird",
        asn: 65001,
        routerId: "10.0.0.2",
        peers: [{ addr: "10.0.0.1", asn: 65000 }],
        holdTimeS: 3,
        bfdIntervalMs: 100,
        bfdMultiplier: 3,
        birdPath: join(dir, "no-such-bird"),
        birdcPath: "birdc",
        runDir: join(dir, "run"),
      },
      silentLogger,
    );
    await assert.rejects(a.start(["10.0.0.9"]), /BIRD 2 not found as ".*no-such-bird" \(apt-get install bird2/);
    assert.equal(a.status().pid, undefined);
    assert.deepEqual(a.status().announced, []);
    await a.apply(["10.0.0.9"]); // no BIRD: nothing to apply, and no error
    await a.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
