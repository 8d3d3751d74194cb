// `tvs realserver` in a fresh network namespace: start puts the VIP on lo and sets the ARP sysctls,
// status reports it, stop restores every value it changed; bad input is refused with exit 2.
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";

const TVS = join(import.meta.dirname, "..", "..", "bin", "tvs.js");
const root = process.getuid?.() === 0;

function tvsIn(ns: string, ...args: string[]) {
  return spawnSync("ip", ["netns", "exec", ns, process.execPath, TVS, "realserver", ...args], { encoding: "utf8" });
}

function sysctlIn(ns: string, name: string): string {
  return execFileSync("ip", ["netns", "exec", ns, "cat", `/proc/sys/${name.replaceAll(".", "/")}`], {
    encoding: "utf8",
  }).trim();
}

test("realserver start/status/stop is reversible", { skip: root ? false : "needs root" }, (t) => {
  const ns = `trs${randomBytes(3).toString("hex")}`;
  execFileSync("ip", ["netns", "add", ns]);
  t.after(() => execFileSync("ip", ["netns", "del", ns]));
  // A non-default value beforehand, to prove stop restores rather than resets.
  execFileSync("ip", ["netns", "exec", ns, "sh", "-c", "echo 2 > /proc/sys/net/ipv4/conf/all/arp_ignore"]);

  const start = tvsIn(ns, "start", "--vip", "10.77.0.53", "--mode", "dr", "--json");
  assert.equal(start.status, 0, start.stderr);
  assert.equal(JSON.parse(start.stdout).vip, "10.77.0.53");
  assert.equal(sysctlIn(ns, "net.ipv4.conf.all.arp_ignore"), "1");
  assert.equal(sysctlIn(ns, "net.ipv4.conf.all.arp_announce"), "2");
  assert.equal(sysctlIn(ns, "net.ipv4.conf.lo.arp_announce"), "2");
  const lo = execFileSync("ip", ["-n", ns, "-4", "-o", "addr", "show", "dev", "lo"], { encoding: "utf8" });
  assert.match(lo, /inet 10\.77\.0\.53\/32/);

  const status = tvsIn(ns, "status", "--json");
  assert.equal(status.status, 0, status.stderr);
  const st = JSON.parse(status.stdout);
  assert.deepEqual(st.vipsOnLo, ["10.77.0.53"]);
  assert.equal(st.configured[0].mode, "dr");

  const stop = tvsIn(ns, "stop", "--vip", "10.77.0.53");
  assert.equal(stop.status, 0, stop.stderr);
  assert.equal(sysctlIn(ns, "net.ipv4.conf.all.arp_ignore"), "2");
  assert.equal(sysctlIn(ns, "net.ipv4.conf.all.arp_announce"), "0");
  const lo2 = execFileSync("ip", ["-n", ns, "-4", "-o", "addr", "show", "dev", "lo"], { encoding: "utf8" });
  assert.doesNotMatch(lo2, /10\.77\.0\.53/);
});

test("realserver refuses bad input with a usage error", { skip: root ? false : "needs root" }, () => {
  const r = spawnSync(process.execPath, [TVS, "realserver", "start", "--vip", "10.1.2.300"], { encoding: "utf8" });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /Invalid VIP "10\.1\.2\.300"/);
  const m = spawnSync(process.execPath, [TVS, "realserver", "start", "--vip", "10.1.2.3", "--mode", "nat"], {
    encoding: "utf8",
  });
  assert.equal(m.status, 2);
  assert.match(m.stderr, /Mode "nat" must be dr or tun/);
});

test(
  "realserver with an IPv6 VIP: a /128 on lo, no IPv4 sysctl touched, TUN decapsulator running, all undone",
  {
    skip: root ? false : "needs root",
  },
  (t) => {
    const ns = `trs${randomBytes(3).toString("hex")}`;
    execFileSync("ip", ["netns", "add", ns]);
    t.after(() => execFileSync("ip", ["netns", "del", ns]));
    execFileSync("ip", ["netns", "exec", ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/lo/disable_ipv6"]);
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    const vip = "fd00:77::53";
    for (const mode of ["dr", "tun"]) {
      const start = tvsIn(ns, "start", "--vip", vip, "--mode", mode, "--json");
      assert.equal(start.status, 0, start.stderr);
      const state = JSON.parse(start.stdout);
      assert.equal(state.vip, vip);
      assert.deepEqual(state.sysctls, {}, "no sysctl needed (or touched) for an IPv6 VIP");
      assert.equal(sysctlIn(ns, "net.ipv4.conf.all.arp_ignore"), "0");
      const lo = execFileSync("ip", ["-n", ns, "-6", "-o", "addr", "show", "dev", "lo"], { encoding: "utf8" });
      assert.match(lo, /inet6 fd00:77::53\/128/);
      const status = JSON.parse(tvsIn(ns, "status", "--json").stdout);
      assert.ok(status.vipsOnLo.includes(vip), `status lists the VIP: ${status.vipsOnLo}`);
      if (mode === "tun") {
        assert.equal(status.decapRunning[vip], true, "the decapsulator runs");
        const link = execFileSync("ip", ["-n", ns, "-o", "link", "show", state.tunDevice], { encoding: "utf8" });
        assert.match(link, /[<,]UP[,>]/);
      }
      const stop = tvsIn(ns, "stop", "--vip", vip);
      assert.equal(stop.status, 0, stop.stderr);
      const lo2 = execFileSync("ip", ["-n", ns, "-6", "-o", "addr", "show", "dev", "lo"], { encoding: "utf8" });
      assert.doesNotMatch(lo2, /fd00:77::53/);
    }
  },
);

test(
  "realserver start replaces a stale record left by a deleted namespace whose inode was reused",
  {
    skip: root ? false : "needs root",
  },
  (t) => {
    const ns = `trs${randomBytes(3).toString("hex")}`;
    execFileSync("ip", ["netns", "add", ns]);
    const stateDir = mkdtempSync(join(tmpdir(), "tvs-rs-state-"));
    t.after(() => {
      execFileSync("ip", ["netns", "del", ns]);
      rmSync(stateDir, { recursive: true, force: true });
    });
    const inode = execFileSync("ip", ["netns", "exec", ns, "stat", "-L", "-c", "%i", "/proc/self/ns/net"], {
      encoding: "utf8",
    }).trim();
    // What a namespace with the same inode left behind when it was deleted without `stop`.
    const stale = { vip: "10.77.0.54", mode: "dr", sysctls: {}, addedAddress: true, addedRoute: true, startedAt: "x" };
    writeFileSync(join(stateDir, `${inode}-10.77.0.54.json`), JSON.stringify(stale));
    const env = { ...process.env, TVS_STATE_DIR: stateDir };
    const start = spawnSync(
      "ip",
      ["netns", "exec", ns, process.execPath, TVS, "realserver", "start", "--vip", "10.77.0.54"],
      {
        encoding: "utf8",
        env,
      },
    );
    assert.equal(start.status, 0, start.stderr);
    const lo = execFileSync("ip", ["-n", ns, "-4", "-o", "addr", "show", "dev", "lo"], { encoding: "utf8" });
    assert.match(lo, /inet 10\.77\.0\.54\/32/, "the VIP is on lo although a record existed");
    assert.equal(sysctlIn(ns, "net.ipv4.conf.all.arp_ignore"), "1");
  },
);
