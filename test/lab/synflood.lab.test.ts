// `tvs lab synflood`, bounded (hping3 runs under timeout(1)): spoofed-source SYN floods from
// hping3 --rand-source during a rate-capped download and a new client every 10 ms.
//   - NAT and DR, 20 000/s asked for 3 s, an 8192-entry table, drop_entry / secure_tcp automatic:
//     the flood fills the table (the defences and the full-table policy are what is tested), and
//     still the download survives at its rate, ≥ 99 % of the legitimate connections succeed, the
//     table stays within its limit and drop_entry removed entries.
//   - NAT with the SYN proxy (synproxy=1) at hping3 --flood, two packet workers: the spoofed SYNs
//     are answered with cookies and make no entry (the table holds the legitimate connections
//     only), the download survives and ≥ 99 % of the legitimate connections succeed.
//   - DR under mh with stateless_syn=1 at hping3 --flood, two packet workers: the spoofed SYNs are
//     forwarded without an entry (the table holds the legitimate connections only), the download
//     survives and ≥ 99 % of the legitimate connections succeed.
// Needs root, hping3 and the native addon.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { isRoot } from "../../src/lab/exec.ts";
import { runSynflood } from "../../src/lab/experiments/synflood.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, raw sockets)";
  try {
    execFileSync("hping3", ["--version"], { stdio: "ignore" });
  } catch {
    return "needs hping3 (apt-get install hping3)";
  }
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

for (const mode of ["nat", "dr"] as const)
  test(
    `${mode}: a spoofed SYN flood that fills the table: established flows survive, ≥ 99 % of new clients get in`,
    { skip, timeout: 120_000 },
    async () => {
      const limit = 8192;
      const s = await runSynflood(
        {
          mode,
          connLimit: limit,
          sysctls: ["drop_entry=1", "secure_tcp=1", "amemthresh=2048"],
          rate: "20000",
          beforeS: 1,
          floodS: 3,
          afterS: 1,
          dlRate: 2_000_000,
          keep: false,
        },
        () => undefined,
      );
      assert.ok(s.floodSent > 10_000, `hping3 sent ${s.floodSent}`);
      assert.ok(s.maxEntries >= limit * 0.9, `the flood filled the table (max ${s.maxEntries})`);
      assert.ok(s.maxEntries <= limit);
      assert.ok(s.defense.entriesDropped > 0, "drop_entry went on and removed entries");
      assert.equal(s.downloadSurvived, true);
      assert.ok(s.downloadBytesPerS.during >= 0.8 * s.downloadBytesPerS.before, JSON.stringify(s.downloadBytesPerS));
      assert.ok(s.legit.during.tried >= 100, `legitimate attempts during the flood: ${s.legit.during.tried}`);
      assert.ok(
        s.legit.during.successPct >= 99,
        `legitimate success during the flood: ${JSON.stringify(s.legit.during)}`,
      );
      assert.equal(s.legit.after.successPct, 100);
    },
  );

test(
  "NAT with the SYN proxy at hping3's full rate, two workers: spoofed SYNs make no entry, ≥ 99 % of new clients get in",
  { skip, timeout: 120_000 },
  async () => {
    const s = await runSynflood(
      {
        mode: "nat",
        workers: 2,
        connLimit: 65536,
        sysctls: ["synproxy=1"],
        rate: "flood",
        beforeS: 1,
        floodS: 3,
        afterS: 1,
        dlRate: 2_000_000,
        keep: false,
      },
      () => undefined,
    );
    assert.ok(s.floodSent > 10_000, `hping3 sent ${s.floodSent}`);
    assert.ok(s.cookies.sent > 10_000, `SYN cookies sent: ${JSON.stringify(s.cookies)}`);
    // Legitimate connections only: one every 10 ms for 5 s, each kept a short while.
    assert.ok(s.maxEntries < 2000, `the table held spoofed entries (max ${s.maxEntries})`);
    assert.ok(s.cookies.valid >= s.legit.during.ok, JSON.stringify(s.cookies));
    assert.equal(s.downloadSurvived, true);
    assert.ok(s.legit.during.tried >= 100, `legitimate attempts during the flood: ${s.legit.during.tried}`);
    assert.ok(
      s.legit.during.successPct >= 99,
      `legitimate success during the flood: ${JSON.stringify(s.legit.during)}, kernel socket drops ${s.socketDrops}`,
    );
    assert.equal(s.legit.after.successPct, 100);
  },
);

test(
  "DR under mh with stateless_syn at hping3's full rate, two workers: spoofed SYNs make no entry, ≥ 99 % of new clients get in",
  { skip, timeout: 120_000 },
  async () => {
    const s = await runSynflood(
      {
        mode: "dr",
        workers: 2,
        scheduler: "mh",
        connLimit: 65536,
        sysctls: ["stateless_syn=1"],
        rate: "flood",
        beforeS: 1,
        floodS: 3,
        afterS: 1,
        dlRate: 2_000_000,
        keep: false,
      },
      () => undefined,
    );
    assert.ok(s.floodSent > 10_000, `hping3 sent ${s.floodSent}`);
    // Legitimate connections only: one every 10 ms for 5 s, each kept a short while.
    assert.ok(s.maxEntries < 2000, `the table held spoofed entries (max ${s.maxEntries})`);
    assert.equal(s.downloadSurvived, true);
    assert.ok(s.legit.during.tried >= 100, `legitimate attempts during the flood: ${s.legit.during.tried}`);
    assert.ok(
      s.legit.during.successPct >= 99,
      `legitimate success during the flood: ${JSON.stringify(s.legit.during)}, kernel socket drops ${s.socketDrops}`,
    );
    assert.equal(s.legit.after.successPct, 100);
  },
);
