// `tvs lab keepalived` end to end: seed 002's keepalived.conf on two tvsd directors (packet data
// plane, DR), the master killed (SIGKILL) in the middle of a curl loop. The backup takes over after
// master_down (advert_int 1, priority 50: 3.8 s), requests before the kill go through director1 and
// after the takeover through director2, and only the requests inside the takeover window fail.
import assert from "node:assert/strict";
import { test } from "node:test";
import { findExperiment } from "../../src/lab/registry.ts";

const root = process.getuid?.() === 0;

test(
  "tvs lab keepalived: the backup director takes over from a killed master",
  { skip: !root && "needs root", timeout: 180_000 },
  async () => {
    const entry = findExperiment("keepalived");
    assert.ok(entry);
    const exp = await entry.load();
    const { SEED001_ADDRESSES } = await import("../../src/lab/addresses.ts");
    const out = await exp.run(
      { peer: "tvsd", requests: "60", interval: "100", "kill-at": "10", kill: "kill" },
      { log: () => {}, keep: false, addresses: SEED001_ADDRESSES },
    );
    const s = out.summary as {
      failed: number;
      takeoverMs: number | null;
      vrrpTakeoverMs: number | null;
      masterDownMs: number;
      byDirector: Record<string, number>;
      sequence: { i: number; server: string; director: string }[];
    };
    assert.ok(out.ok, JSON.stringify(s));
    // Before the kill: director1 served everything, alternating rs1/rs2 (rr).
    const first = s.sequence.slice(0, 10);
    assert.deepEqual(new Set(first.map((r) => r.director)), new Set(["director1"]));
    assert.deepEqual(new Set(first.map((r) => r.server)), new Set(["rs1", "rs2"]));
    // The VRRP takeover happens at master_down (measured from the kill, give or take an advert).
    assert.ok(
      s.vrrpTakeoverMs !== null && s.vrrpTakeoverMs <= s.masterDownMs + 500,
      `vrrp takeover ${s.vrrpTakeoverMs}`,
    );
    assert.ok(
      s.vrrpTakeoverMs !== null && s.vrrpTakeoverMs >= s.masterDownMs - 1100,
      `vrrp takeover ${s.vrrpTakeoverMs}`,
    );
    // Afterwards director2 serves every request; only the window's requests failed (curl -m 1 each).
    const last = s.sequence.slice(-10);
    assert.deepEqual(new Set(last.map((r) => r.director)), new Set(["director2"]));
    assert.ok(s.failed >= 1 && s.failed <= 6, `failed ${s.failed}`);
  },
);
