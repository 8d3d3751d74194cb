// tvsd --tcp-relay on a real tvsd: the relay named is the one that runs (tvs status says so and a
// client is served through it), and a relay this build cannot run refuses the start with a
// message, rather than another relay running in its place.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { freePort, nameServer, ROOT, startTvsd, whoAnswers } from "./tvsd-harness.ts";

for (const relay of ["handle", "stream"] as const) {
  test(`tvsd --tcp-relay ${relay}: status names it and clients are served through it`, async (t) => {
    const rs = await nameServer("rs1");
    t.after(() => rs.close());
    const vport = await freePort();
    const dir = mkdtempSync(join(tmpdir(), "tvs-relay-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const rules = join(dir, "rules");
    writeFileSync(rules, `-A -t 127.0.0.1:${vport} -s rr\n-a -t 127.0.0.1:${vport} -r 127.0.0.1:${rs.port} -m\n`);
    const tvsd = await startTvsd(["--rules", rules, "--http", "none", "--tcp-relay", relay]);
    t.after(() => tvsd.stop());
    assert.equal(await whoAnswers(vport), "rs1");
    const status = spawnSync(
      process.execPath,
      ["--import", "tsx", join(ROOT, "bin/tvs.ts"), "status", "--socket", tvsd.socket],
      {
        cwd: ROOT,
        encoding: "utf8",
      },
    );
    assert.match(status.stdout, new RegExp(`TCP relay: .*\\(--tcp-relay ${relay}\\)`));
  });
}

test("tvsd --tcp-relay native without the addon refuses the start, naming what is missing", async () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-relay-"));
  try {
    const r = spawnSync(
      process.execPath,
      [
        "--import",
        "tsx",
        join(ROOT, "bin/tvsd.ts"),
        "--socket",
        join(dir, "s.sock"),
        "--http",
        "none",
        "--tcp-relay",
        "native",
      ],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 30_000,
        env: { ...process.env, TVS_NATIVE_PATH: join(dir, "missing.node") },
      },
    );
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /--tcp-relay native needs the native addon/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
