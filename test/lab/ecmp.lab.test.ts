// ECMP announcing end to end, in network namespaces with Debian's BIRD 2 as the router:
//   1. `tvs lab ecmp`: three tvsd directors (DR, --sloppy-tcp, tvs_announce) behind a multipath
//      router; under mh no held connection breaks when a director is killed or joins, the route is
//      withdrawn well within a second of the kill, and the flows were spread over the directors.
//   2. One director configured by tvsd's own options (--announce bird --bgp-*): a real server's
//      health check failing loses the quorum and the router loses the route within a second of
//      tvsd's decision; the check passing again brings it back; SIGTERM withdraws it within a
//      second; SIGKILL takes BIRD down with tvsd; with BFD on the session (`,bfd`), a director whose
//      link dies without a word is dropped by the router within a second.
// Needs root, bird2 and the native addon; skips with the reason otherwise.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { SEED001_ADDRESSES } from "../../src/lab/addresses.ts";
import { ipIn, isRoot, run, spawnIn } from "../../src/lab/exec.ts";
import type { EcmpSummary } from "../../src/lab/experiments/ecmp.ts";
import { ECMP_LAB, ecmpRouterConf } from "../../src/lab/experiments/ecmp.ts";
import { LINE_SERVER, lines } from "../../src/lab/held-connections.ts";
import { Lab } from "../../src/lab/netns.ts";
import { findExperiment } from "../../src/lab/registry.ts";
import { startTvsdConf, stopChild, waitFor } from "../../src/lab/vrrp-pair.ts";
import { nativeStatus } from "../../src/platform/native-addon.ts";

function skipReason(): string | undefined {
  if (process.platform !== "linux") return "needs Linux";
  if (!isRoot()) return "needs root (network namespaces, raw sockets)";
  try {
    execFileSync("bird", ["--version"], { stdio: "ignore" });
  } catch {
    return "needs bird2 (apt-get install bird2)";
  }
  const s = nativeStatus();
  return s.ok ? undefined : s.reason;
}
const skip = skipReason();

test(
  "tvs lab ecmp: mh keeps every held connection when a director leaves and joins",
  { skip, timeout: 120_000 },
  async () => {
    const entry = findExperiment("ecmp");
    assert.ok(entry);
    const exp = await entry.load();
    const out = await exp.run(
      { held: "30", schedulers: "mh,wlc", forward: "dr", sync: "", family: "4" },
      { log: () => {}, keep: false, addresses: SEED001_ADDRESSES },
    );
    const s = out.summary as EcmpSummary;
    assert.ok(out.ok, JSON.stringify(s));
    const mh = s.runs.find((r) => r.scheduler === "mh")!;
    const wlc = s.runs.find((r) => r.scheduler === "wlc")!;
    assert.equal(mh.leave.broken, 0, "no held connection breaks under mh when a director dies");
    assert.equal(mh.join.broken, 0, "nor when it joins again");
    for (const r of s.runs) {
      assert.ok(r.leave.routeMs < 1000, `${r.scheduler}: route withdrawn ${r.leave.routeMs} ms after the kill`);
      assert.ok(r.spread.filter((n) => n > 0).length >= 2, `${r.scheduler}: spread ${r.spread}`);
      assert.equal(
        r.spread.reduce((a, b) => a + b, 0),
        30,
      );
    }
    assert.ok(wlc.held === 30);
  },
);

test(
  "tvs lab ecmp --forward fullnat: with a sync mesh no held connection breaks when a director leaves or joins; without, some do",
  { skip, timeout: 180_000 },
  async () => {
    const exp = await findExperiment("ecmp")!.load();
    const out = await exp.run(
      { held: "30", schedulers: "mh", forward: "fullnat", sync: "on,off", family: "4" },
      { log: () => {}, keep: false, addresses: SEED001_ADDRESSES },
    );
    const s = out.summary as EcmpSummary;
    assert.ok(out.ok, JSON.stringify(s));
    assert.equal(s.forward, "fullnat");
    const on = s.runs.find((r) => r.sync === true)!;
    const off = s.runs.find((r) => r.sync === false)!;
    assert.equal(on.forward, "fullnat");
    assert.equal(on.leave.broken, 0, "with sync, the dead director's flows continue through the others");
    assert.equal(on.join.broken, 0, "with sync, flows that move to the joining director continue");
    // Without sync at least the dead director's own flows break (the spread puts some on each).
    assert.ok(off.spread[2]! > 0, `spread ${off.spread}`);
    assert.ok(off.leave.broken >= off.spread[2]!, `without sync: ${off.leave.broken} broken, d3 had ${off.spread[2]}`);
    for (const r of s.runs) {
      assert.ok(r.leave.routeMs < 1000, `route withdrawn ${r.leave.routeMs} ms after the kill`);
      assert.equal(
        r.spread.reduce((a, b) => a + b, 0),
        30,
        `every connection scheduled by one director: ${r.spread}`,
      );
    }
  },
);

test(
  "tvs lab ecmp --family 6: an IPv6 VIP over IPv6 BGP; mh keeps every held connection when a director leaves and joins",
  { skip, timeout: 120_000 },
  async () => {
    const exp = await findExperiment("ecmp")!.load();
    const out = await exp.run(
      { held: "30", schedulers: "mh", forward: "dr", sync: "", family: "6" },
      { log: () => {}, keep: false, addresses: SEED001_ADDRESSES },
    );
    const s = out.summary as EcmpSummary;
    assert.ok(out.ok, JSON.stringify(s));
    assert.equal(s.family, 6);
    assert.equal(s.vip, "fd99::1");
    const mh = s.runs[0]!;
    assert.equal(mh.leave.broken, 0);
    assert.equal(mh.join.broken, 0);
    assert.ok(mh.leave.routeMs < 1000, `route withdrawn ${mh.leave.routeMs} ms after the kill`);
    assert.ok(mh.spread.filter((n) => n > 0).length >= 2, `spread ${mh.spread}`);
    assert.equal(
      mh.spread.reduce((a, b) => a + b, 0),
      30,
    );
  },
);

test("tvs lab ecmp refuses --forward nat and --sync with DR, naming the option", async () => {
  const exp = await findExperiment("ecmp")!.load();
  const ctx = { log: () => {}, keep: false, addresses: SEED001_ADDRESSES };
  await assert.rejects(
    exp.run({ held: "3", schedulers: "mh", forward: "nat", sync: "", family: "4" }, ctx),
    /--forward "nat" must be dr or fullnat/,
  );
  await assert.rejects(
    exp.run({ held: "3", schedulers: "mh", forward: "dr", sync: "on", family: "4" }, ctx),
    /--sync "on" applies to --forward fullnat/,
  );
  await assert.rejects(
    exp.run({ held: "3", schedulers: "mh", forward: "fullnat", sync: "maybe", family: "4" }, ctx),
    /--sync "maybe" must be on, off or on,off/,
  );
  await assert.rejects(
    exp.run({ held: "3", schedulers: "mh", forward: "dr", sync: "", family: "5" }, ctx),
    /--family "5" must be 4 or 6/,
  );
  await assert.rejects(
    exp.run({ held: "3", schedulers: "mh", forward: "fullnat", sync: "", family: "6" }, ctx),
    /--family 6 runs with --forward dr/,
  );
});

test("quorum loss, recovery, drain and death move the route within a second", { skip, timeout: 90_000 }, async (t) => {
  const L = ECMP_LAB;
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), "tvs-ecmp-test-"));
  const kill: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const k of kill.reverse()) await k().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  await lab.createSwitch();
  const router = await lab.addHost("router");
  const d1 = await lab.addHost("d1");
  const rs = await lab.addHost("rs1");
  await ipIn(router.ns, "addr", "add", `${L.routerInside}/24`, "dev", "eth0");
  await ipIn(d1.ns, "addr", "add", `${L.directors[0]}/24`, "dev", "eth0");
  await ipIn(rs.ns, "addr", "add", `${L.reals[0]}/24`, "dev", "eth0");
  writeFileSync(join(dir, "router.conf"), ecmpRouterConf(join(dir, "router.log"), true));
  const bird = spawnIn(router.ns, "bird", ["-f", "-c", join(dir, "router.conf"), "-s", join(dir, "router.ctl")]);
  kill.push(() => stopChild(bird, 2000));
  const startLine = async () => {
    const p = spawnIn(rs.ns, process.execPath, ["-e", LINE_SERVER, "rs1", "80"]);
    assert.equal(await lines(p)(), "listening");
    kill.push(() => stopChild(p, 2000));
    return p;
  };
  let server = await startLine();
  const routed = async () =>
    (await run("ip", ["-n", router.ns, "route", "show", `${L.vip}/32`])).stdout.includes("via");

  const conf = `virtual_server ${L.vip} 80 {
    delay_loop 1
    lb_algo mh
    lb_kind DR
    protocol TCP
    real_server ${L.reals[0]} 80 {
        TCP_CHECK {
            connect_timeout 1
            retry 0
        }
    }
}
`;
  const args = [
    "--dataplane",
    "packet",
    "--interface",
    "eth0",
    "--sloppy-tcp",
    "--announce",
    "bird",
    "--bgp-asn",
    String(L.directorAsn),
    "--bgp-router-id",
    L.directors[0],
    "--bgp-peer",
    `${L.routerInside}=${L.routerAsn},bfd`,
    "--bird-dir",
    join(dir, "bird-d1"),
  ];
  let tvsd = startTvsdConf(d1.ns, dir, conf, "d1", args);
  kill.push(() => tvsd.stop("SIGKILL"));
  await waitFor("the VIP routed via d1", routed, 30_000, 50);
  const st = await tvsd.client.status();
  assert.deepEqual(st.announce?.announced, [L.vip]);
  assert.equal(st.announce?.decisions[0]?.reason, "every service on it can serve");

  // The real server's check fails: quorum lost, the VIP withdrawn.
  await stopChild(server, 2000);
  let decidedAt = 0;
  await waitFor(
    "tvsd to decide the withdrawal",
    async () => {
      const s = await tvsd.client.status();
      return s.announce?.decisions[0]?.announce === false;
    },
    15_000,
    10,
  );
  decidedAt = performance.now();
  const decision = (await tvsd.client.status()).announce?.decisions[0];
  assert.match(decision?.reason ?? "", /lost quorum/);
  await waitFor("the route withdrawn", async () => !(await routed()), 5_000, 10);
  const withdrawMs = performance.now() - decidedAt;
  assert.ok(withdrawMs < 1000, `withdrawn ${Math.round(withdrawMs)} ms after the quorum loss`);

  // The check passes again: announced again.
  server = await startLine();
  await waitFor("the route back", routed, 15_000, 20);

  // SIGTERM: withdrawn before the connections drain, within a second.
  const termAt = performance.now();
  process.kill(tvsd.child.pid!, "SIGTERM");
  await waitFor("the route withdrawn on SIGTERM", async () => !(await routed()), 5_000, 10);
  assert.ok(performance.now() - termAt < 1000, "SIGTERM withdraws within a second");
  await stopChild(tvsd.child, 10_000);

  // SIGKILL: BIRD dies with tvsd (pdeathsig), so the session and the route go at once.
  tvsd = startTvsdConf(d1.ns, dir, conf, "d1b", [...args.slice(0, -1), join(dir, "bird-d1b")]);
  kill.push(() => tvsd.stop("SIGKILL"));
  await waitFor("the route back after restart", routed, 30_000, 20);
  const birdPid = (await tvsd.client.status()).announce?.pid;
  assert.ok(birdPid !== undefined);
  const killAt = performance.now();
  await tvsd.stop("SIGKILL");
  await waitFor("the route withdrawn after SIGKILL", async () => !(await routed()), 5_000, 10);
  assert.ok(performance.now() - killAt < 1000, "tvsd's death withdraws within a second");
  await waitFor(
    "BIRD gone",
    () => {
      try {
        process.kill(birdPid, 0);
        return false;
      } catch {
        return true;
      }
    },
    2_000,
    10,
  );

  // The director's link dies (nothing is sent): BFD at the router notices within interval × 3.
  tvsd = startTvsdConf(d1.ns, dir, conf, "d1c", [...args.slice(0, -1), join(dir, "bird-d1c")]);
  kill.push(() => tvsd.stop("SIGKILL"));
  await waitFor("the route back after the second restart", routed, 30_000, 20);
  await new Promise((r) => setTimeout(r, 1500)); // BFD session up
  const downAt = performance.now();
  await ipIn(d1.ns, "link", "set", "eth0", "down");
  await waitFor("the route withdrawn by BFD", async () => !(await routed()), 5_000, 10);
  const bfdMs = performance.now() - downAt;
  assert.ok(bfdMs < 1000, `BFD withdrew the route ${Math.round(bfdMs)} ms after the link died (hold time is 3 s)`);
});

test("a reload that changes tvs_announce restarts BIRD with the new settings", { skip, timeout: 60_000 }, async (t) => {
  const L = ECMP_LAB;
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), "tvs-ecmp-reload-"));
  const kill: (() => Promise<void>)[] = [];
  t.after(async () => {
    for (const k of kill.reverse()) await k().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  await lab.createSwitch();
  const router = await lab.addHost("router");
  const d1 = await lab.addHost("d1");
  await ipIn(router.ns, "addr", "add", `${L.routerInside}/24`, "dev", "eth0");
  await ipIn(d1.ns, "addr", "add", `${L.directors[0]}/24`, "dev", "eth0");
  writeFileSync(join(dir, "router.conf"), ecmpRouterConf(join(dir, "router.log")));
  const bird = spawnIn(router.ns, "bird", ["-f", "-c", join(dir, "router.conf"), "-s", join(dir, "router.ctl")]);
  kill.push(() => stopChild(bird, 2000));
  const routed = async () =>
    (await run("ip", ["-n", router.ns, "route", "show", `${L.vip}/32`])).stdout.includes("via");
  // The wrong AS for the router first: the session never comes up, nothing is routed.
  const conf = (routerAsn: number) => `tvs_announce {
    bgp_asn ${L.directorAsn}
    router_id ${L.directors[0]}
    bgp_peer ${L.routerInside} as ${routerAsn}
    run_dir ${join(dir, "bird-d1")}
}
virtual_server ${L.vip} 80 {
    lb_algo mh
    lb_kind DR
    protocol TCP
    real_server ${L.reals[0]} 80 {
    }
}
`;
  const tvsd = startTvsdConf(d1.ns, dir, conf(64999), "d1", ["--dataplane", "packet", "--interface", "eth0"]);
  kill.push(() => tvsd.stop("SIGKILL"));
  await waitFor(
    "tvsd's BIRD",
    async () => (await tvsd.client.status().catch(() => undefined))?.announce?.pid !== undefined,
    30_000,
    50,
  );
  const firstPid = (await tvsd.client.status()).announce?.pid;
  await new Promise((r) => setTimeout(r, 2000));
  assert.equal(await routed(), false, "a session to the wrong AS announces nothing");
  writeFileSync(join(dir, "d1.conf"), conf(L.routerAsn));
  process.kill(tvsd.child.pid!, "SIGHUP");
  await waitFor("the VIP routed after the reload", routed, 15_000, 20);
  const st = await tvsd.client.status();
  assert.notEqual(st.announce?.pid, firstPid, "BIRD was restarted");
  assert.deepEqual(st.announce?.announced, [L.vip]);
});
