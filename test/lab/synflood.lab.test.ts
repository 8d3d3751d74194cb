// `tvs lab synflood`, bounded: a spoofed-source SYN flood from hping3 (--rand-source, 20 000/s
// asked, 3 s) at a NAT service on tvsd's packet plane with an 8192-entry table and drop_entry /
// secure_tcp automatic, during a rate-capped download and a new client every 10 ms. The flood
// fills the table (so the defences and the full-table policy are what is tested), and still the
// download survives at its rate, ≥ 99 % of the legitimate connections succeed, the table stays
// within its limit and drop_entry removed entries. Needs root, hping3 and the native addon.
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

test(
  "a spoofed SYN flood that fills the table: established flows survive, ≥ 99 % of new clients get in",
  { skip, timeout: 120_000 },
  async () => {
    const limit = 8192;
    const s = await runSynflood(
      {
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
