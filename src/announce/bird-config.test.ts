import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { birdConfig } from "./bird-config.ts";
import type { AnnounceSpec } from "./spec.ts";

const spec: AnnounceSpec = {
  daemon: "bird",
  asn: 65001,
  routerId: "10.0.0.2",
  peers: [
    { addr: "10.0.0.1", asn: 65000, bfd: true },
    { addr: "2001:db8::1", asn: 65000, port: 1179 },
  ],
  holdTimeS: 6,
  bfdIntervalMs: 50,
  bfdMultiplier: 4,
  birdPath: "bird",
  birdcPath: "birdc",
  runDir: "/tmp",
};

function hasBird(): boolean {
  try {
    execFileSync("bird", ["--version"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}

test("each VIP is a blackhole static route of its family, exported only to peers of that family", () => {
  const text = birdConfig(spec, ["10.0.0.100", "2001:db8::100"], "/tmp/x.log");
  assert.match(text, /protocol static tvs_vips4 \{\n {2}ipv4;\n {2}route 10\.0\.0\.100\/32 blackhole;\n\}/);
  assert.match(text, /protocol static tvs_vips6 \{\n {2}ipv6;\n {2}route 2001:db8::100\/128 blackhole;\n\}/);
  assert.match(text, /router id 10\.0\.0\.2;/);
  assert.match(text, /neighbor 10\.0\.0\.1 as 65000;[^}]*bfd on;[^}]*ipv4 \{[^}]*export where proto = "tvs_vips4";/s);
  assert.match(text, /neighbor 2001:db8::1 port 1179 as 65000;[^}]*ipv6 \{[^}]*export where proto = "tvs_vips6";/s);
  assert.match(text, /hold time 6;\n {2}keepalive time 2;/);
  assert.match(text, /interval 50 ms;\n {4}multiplier 4;/);
  assert.doesNotMatch(text, /protocol kernel/, "BIRD never touches the director's own routing table");
  assert.equal((text.match(/import none;/g) ?? []).length, 2);
});

test("no VIP: the static protocols are empty (everything withdrawn); no BFD without a bfd peer", () => {
  const text = birdConfig({ ...spec, peers: [{ addr: "10.0.0.1", asn: 65000 }] }, [], "/tmp/x.log");
  assert.doesNotMatch(text, /route /);
  assert.doesNotMatch(text, /protocol bfd/);
});

test("BIRD itself accepts the generated configuration (bird -p)", { skip: !hasBird() && "bird2 not installed" }, () => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-bird-"));
  try {
    for (const vips of [[], ["10.0.0.100", "10.0.0.101", "2001:db8::100"]]) {
      const file = join(dir, "bird.conf");
      writeFileSync(file, birdConfig(spec, vips, join(dir, "bird.log")));
      execFileSync("bird", ["-p", "-c", file], { stdio: "pipe" });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("FULLNAT local addresses: own ones always exported, other directors' with the AS prepended", () => {
  const withLocals = {
    ...spec,
    localAddrs: ["10.0.8.2", "2001:db8:8::2"],
    backupAddrs: ["10.0.8.3", "10.0.8.4"],
  };
  const text = birdConfig(withLocals, [], "/tmp/x.log");
  assert.match(text, /protocol static tvs_locals4 \{\n {2}ipv4;\n {2}route 10\.0\.8\.2\/32 blackhole;\n\}/);
  assert.match(text, /protocol static tvs_locals6 \{\n {2}ipv6;\n {2}route 2001:db8:8::2\/128 blackhole;\n\}/);
  assert.match(
    text,
    /protocol static tvs_backup4 \{\n {2}ipv4;\n {2}route 10\.0\.8\.3\/32 blackhole;\n {2}route 10\.0\.8\.4\/32 blackhole;\n\}/,
  );
  assert.match(
    text,
    /ipv4 \{\n {4}import none;\n {4}export filter \{\n {6}if proto = "tvs_vips4" \|\| proto = "tvs_locals4" then accept;\n {6}if proto = "tvs_backup4" then \{\n( {8}bgp_path\.prepend\(65001\);\n){3} {8}accept;/,
  );
  assert.match(
    text,
    /ipv6 \{\n {4}import none;\n {4}export filter \{\n {6}if proto = "tvs_vips6" \|\| proto = "tvs_locals6"/,
  );
  if (hasBird()) {
    const dir = mkdtempSync(join(tmpdir(), "tvs-bird-"));
    try {
      writeFileSync(join(dir, "bird.conf"), text);
      execFileSync("bird", ["-p", "-c", join(dir, "bird.conf")], { stdio: "pipe" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});
