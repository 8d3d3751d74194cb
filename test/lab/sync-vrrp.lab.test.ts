// `tvs lab sync` end to end: two tvsd (packet plane) with VRRP and lvs_sync_daemon, DR and NAT; the
// master is killed during a rate-limited download (24 MB at 4 MB/s) with 12 connections held open
// per VIP and a persistent client. After the takeover: the backup runs the master sync daemon,
// every held connection answers from its real server, the download completes with the right
// checksum, the persistent client stays on its real server; resets 0. Needs root and the addon.
import assert from "node:assert/strict";
import { test } from "node:test";
import { SEED001_ADDRESSES } from "../../src/lab/addresses.ts";
import { isRoot } from "../../src/lab/exec.ts";
import type { SyncLabSummary } from "../../src/lab/experiments/sync.ts";
import { findExperiment } from "../../src/lab/registry.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, raw sockets)";
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

test(
  "tvs lab sync: held connections, a download and a persistent client survive the master's death",
  { skip: skip ?? false, timeout: 180_000 },
  async (t) => {
    const entry = findExperiment("sync");
    assert.ok(entry);
    const exp = await entry.load();
    const lines: string[] = [];
    const out = await exp.run(
      { held: "12", "download-mb": "24", "rate-mb": "4", workers: "1" },
      { log: (l) => lines.push(l), keep: false, addresses: SEED001_ADDRESSES },
    );
    const s = out.summary as SyncLabSummary;
    t.diagnostic(`takeover ${s.takeoverMs} ms, resets ${s.resets}, download ${s.download.seconds} s`);
    assert.match(
      s.daemons.before,
      /^master sync daemon \(mcast=eth0, syncid=51, maxlen=1472, group=224\.0\.0\.81, port=8848, ttl=1\) \| backup sync daemon/,
    );
    assert.match(s.daemons.after, /^master sync daemon \(mcast=eth0, syncid=51/);
    assert.ok(
      s.backupEntries >= 25,
      `the backup held the connections before the kill (${s.backupEntries})\n${lines.join("\n")}`,
    );
    assert.equal(s.resets, 0, lines.join("\n"));
    assert.equal(s.sameRealServer, true);
    assert.deepEqual(s.download, { ...s.download, bytes: 24 << 20, intact: true, err: "" });
    assert.equal(s.persistent.sticky, true, `persistent client: ${s.persistent.before} / ${s.persistent.after}`);
    assert.ok(s.takeoverMs < 6000, `VRRP takeover within master_down (${s.takeoverMs} ms)`);
    assert.equal(out.ok, true);
  },
);
