// tvsd and Debian's keepalived 2.2.7 as a VRRP pair on one segment (network namespaces, a bridge),
// both running the same kind of keepalived.conf, for VRRPv2 with PASS authentication, VRRPv3
// multicast and VRRPv3 unicast. One walk through each:
//  1. keepalived MASTER (150), tvsd BACKUP (100): tvsd stays backup, never holds the VIP, and the
//     client's ARP for the VIP is answered by keepalived's MAC only.
//  2. keepalived's link goes down: tvsd owns the VIP within master_down + 0.5 s and serves the
//     virtual service on it (the client's ARP cache follows the gratuitous ARP).
//  3. keepalived's link comes back with its higher priority: tvsd yields (BACKUP, VIP released).
//  4. keepalived restarted as BACKUP (50) behind tvsd MASTER: its notify record says BACKUP and
//     stays so; tvsd stops (SIGTERM: priority 0) and keepalived is MASTER after about its skew.
// Skipped when not root or when keepalived is not installed (.ci/packages.txt lists it).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ipIn, run, runIn, sleep } from "../../src/lab/exec.ts";
import { Lab } from "../../src/lab/netns.ts";
import { startNameServer } from "../../src/lab/servers.ts";
import {
  arpOwner,
  hasAddress,
  macOf,
  startKeepalived,
  startTvsd,
  stopChild,
  type VrrpSide,
  vrrpConf,
  waitFor,
} from "../../src/lab/vrrp-pair.ts";

const root = process.getuid?.() === 0;
const haveKeepalived = await run("keepalived", ["--version"]).then(
  () => true,
  () => false,
);
const skip = !root ? "needs root" : !haveKeepalived ? "needs keepalived (apt-get install keepalived)" : false;

const NET = "172.16.0";
const KA_IP = `${NET}.11`;
const TV_IP = `${NET}.12`;
const CLIENT_IP = `${NET}.100`;
const RS_IP = `${NET}.21`;
const VIP = `${NET}.30`;

interface Variant {
  name: string;
  version: 2 | 3;
  advertInt: number;
  authPass?: string;
  unicast: boolean;
}

function masterDownMs(v: Variant, prio: number): number {
  const adv = v.advertInt * 1000;
  return 3 * adv + (v.version === 2 ? ((256 - prio) * 1000) / 256 : ((256 - prio) * adv) / 256);
}

async function walk(v: Variant, t: import("node:test").TestContext): Promise<void> {
  const lab = new Lab();
  const dir = mkdtempSync(join(tmpdir(), "tvs-vrrp-"));
  const children: { stop(): Promise<void> }[] = [];
  t.after(async () => {
    for (const c of children.reverse()) await c.stop().catch(() => undefined);
    await lab.destroy();
    rmSync(dir, { recursive: true, force: true });
  });
  await lab.createSwitch();
  const ka = await lab.addHost("ka");
  const tv = await lab.addHost("tv");
  const client = await lab.addHost("client");
  const rs = await lab.addHost("rs");
  await ipIn(ka.ns, "addr", "add", `${KA_IP}/24`, "dev", "eth0");
  await ipIn(tv.ns, "addr", "add", `${TV_IP}/24`, "dev", "eth0");
  await ipIn(client.ns, "addr", "add", `${CLIENT_IP}/24`, "dev", "eth0");
  await ipIn(rs.ns, "addr", "add", `${RS_IP}/24`, "dev", "eth0");
  const server = startNameServer(rs.ns, "rs1", [80], 5353);
  children.push({ stop: () => stopChild(server, 2000) });

  const common = {
    vrid: 51,
    advertInt: v.advertInt,
    version: v.version,
    vip: `${VIP}/24`,
    ...(v.authPass !== undefined ? { authPass: v.authPass } : {}),
  };
  const kaSide = (state: "MASTER" | "BACKUP", priority: number): VrrpSide => ({
    ...common,
    state,
    priority,
    ...(v.unicast ? { unicast: { src: KA_IP, peer: TV_IP } } : {}),
  });
  const tvSide: VrrpSide = {
    ...common,
    state: "BACKUP",
    priority: 100,
    ...(v.unicast ? { unicast: { src: TV_IP, peer: KA_IP } } : {}),
    virtualServer: `virtual_server ${VIP} 80 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server ${RS_IP} 80 {\n    }\n}`,
  };

  // 1. keepalived MASTER, tvsd BACKUP.
  const kaMac = await macOf(ka.ns);
  let keepalived = startKeepalived(ka.ns, dir, kaSide("MASTER", 150));
  children.push(keepalived);
  await waitFor("keepalived MASTER", () => keepalived.last() === "MASTER", 15_000, 50);
  const tvsd = startTvsd(tv.ns, dir, tvSide);
  children.push(tvsd);
  await waitFor("tvsd hearing keepalived", async () => (await tvsd.vrrp())?.masterAddress === KA_IP, 20_000, 50);
  const backupUntil = performance.now() + masterDownMs(v, 100) + 500;
  while (performance.now() < backupUntil) {
    const s = await tvsd.vrrp();
    assert.equal(s?.state, "BACKUP", "tvsd stays BACKUP behind keepalived's higher priority");
    assert.equal(s?.vipsOwned, false);
    assert.equal(await hasAddress(tv.ns, VIP), false, "a BACKUP tvsd never holds the VIP");
    await sleep(Math.max(50, v.advertInt * 250));
  }
  for (let i = 0; i < 3; i++) assert.equal(await arpOwner(client.ns, VIP), kaMac, "only keepalived answers ARP");
  const backupStatus = await tvsd.vrrp();
  assert.ok((backupStatus?.counters.advert_rcvd ?? 0) >= 3, "tvsd receives keepalived's adverts");
  const errs = Object.entries(backupStatus?.counters ?? {}).filter(
    ([k, n]) => n > 0 && !["advert_rcvd", "advert_sent", "become_master", "release_master"].includes(k),
  );
  assert.deepEqual(errs, [], "keepalived's adverts pass every check (checksum, TTL, auth, interval, addresses)");

  // 2. keepalived's link goes down: tvsd takes over within master_down + 0.5 s and serves.
  await ipIn(ka.ns, "link", "set", "eth0", "down");
  const limit = masterDownMs(v, 100) + 500;
  const took = await waitFor("tvsd MASTER", async () => (await tvsd.vrrp())?.state === "MASTER", limit + 2000, 10);
  assert.ok(took <= limit, `takeover ${took.toFixed(0)} ms within master_down + 0.5 s (${limit.toFixed(0)} ms)`);
  await waitFor("VIP on tvsd", () => hasAddress(tv.ns, VIP), 2000, 20);
  const served = await runIn(client.ns, "curl", ["-s", "-m", "3", `http://${VIP}/`], { timeoutMs: 10_000 });
  assert.equal(served.stdout, "rs1\n", "tvsd serves the virtual service on the VIP it took");
  assert.equal(await arpOwner(client.ns, VIP), await macOf(tv.ns), "the client now reaches tvsd for the VIP");

  // 3. keepalived returns with its higher priority: tvsd yields.
  await ipIn(ka.ns, "link", "set", "eth0", "up");
  await waitFor("keepalived MASTER again", () => keepalived.last() === "MASTER", 20_000, 50);
  await waitFor("tvsd BACKUP", async () => (await tvsd.vrrp())?.state === "BACKUP", 5000, 20);
  await waitFor("VIP gone from tvsd", async () => !(await hasAddress(tv.ns, VIP)), 3000, 20);
  const yielded = await tvsd.vrrp();
  assert.match(yielded?.lastTransition?.reason ?? "", /higher priority 150 advert from 172\.16\.0\.11/);

  // 4. keepalived as BACKUP (50) behind tvsd MASTER; then tvsd stops and keepalived takes over.
  await keepalived.stop();
  await waitFor(
    "tvsd MASTER after keepalived's priority 0",
    async () => (await tvsd.vrrp())?.state === "MASTER",
    5000,
    20,
  );
  rmSync(keepalived.record, { force: true });
  keepalived = startKeepalived(ka.ns, dir, kaSide("BACKUP", 50));
  children.push(keepalived);
  await waitFor("keepalived BACKUP", () => keepalived.last() === "BACKUP", 15_000, 50);
  await sleep(masterDownMs(v, 50) + 500);
  assert.deepEqual(
    keepalived.states().map((s) => s.state),
    ["BACKUP"],
    "keepalived stays BACKUP behind tvsd's higher priority",
  );
  assert.equal(await hasAddress(ka.ns, VIP), false);

  // SIGHUP with the same file: the MASTER stays MASTER, no transition, no advert gap (keepalived
  // stays BACKUP). A file naming a missing interface is refused with its position; nothing moves.
  const pid = tvsd.child.pid as number;
  const beforeHup = await tvsd.vrrp();
  process.kill(pid, "SIGHUP");
  await sleep(masterDownMs(v, 50));
  const afterHup = await tvsd.vrrp();
  assert.equal(afterHup?.state, "MASTER");
  assert.deepEqual(afterHup?.lastTransition, beforeHup?.lastTransition, "the reload kept the running instance");
  assert.equal(afterHup?.counters.become_master, beforeHup?.counters.become_master);
  writeFileSync(join(dir, "tvsd.conf"), vrrpConf({ ...tvSide, iface: "tvsnosuch0" }));
  process.kill(pid, "SIGHUP");
  await waitFor(
    "the refused reload",
    async () => (await tvsd.client.status()).notes.some((n) => n.includes("refused")),
    5000,
    50,
  );
  const notes = (await tvsd.client.status()).notes.join("\n");
  assert.match(notes, /tvsd\.conf:4:1: vrrp_instance VI_1: interface "tvsnosuch0" does not exist/);
  assert.equal((await tvsd.vrrp())?.state, "MASTER");
  assert.deepEqual(
    keepalived.states().map((s) => s.state),
    ["BACKUP"],
    "keepalived saw no gap in tvsd's adverts across both reloads",
  );
  const stopAt = Date.now();
  await tvsd.stop();
  await waitFor("keepalived MASTER after tvsd stops", () => keepalived.last() === "MASTER", 10_000, 20);
  const handover = (keepalived.states().at(-1)?.at ?? 0) - stopAt;
  // Priority 0 makes keepalived's down timer just its skew ((256 - 50)/256 s for v2).
  const skew = v.version === 2 ? (206 * 1000) / 256 : (206 * v.advertInt * 1000) / 256;
  assert.ok(
    handover < masterDownMs(v, 50),
    `keepalived took over ${handover} ms after tvsd stopped: after its skew (${skew.toFixed(0)} ms), not master_down`,
  );
  assert.equal(await hasAddress(tv.ns, VIP), false, "tvsd released the VIP when it stopped");
  t.diagnostic(
    `${v.name}: tvsd takeover ${took.toFixed(0)} ms (master_down ${masterDownMs(v, 100).toFixed(0)} ms); keepalived takeover after tvsd stop ${handover} ms (skew ${skew.toFixed(0)} ms)`,
  );
}

test("VRRPv2 with PASS authentication: tvsd and keepalived 2.2.7", { skip, timeout: 120_000 }, (t) =>
  walk({ name: "v2 PASS", version: 2, advertInt: 1, authPass: "1111", unicast: false }, t),
);

test("VRRPv3 multicast: tvsd and keepalived 2.2.7", { skip, timeout: 120_000 }, (t) =>
  walk({ name: "v3 multicast", version: 3, advertInt: 0.2, unicast: false }, t),
);

test("VRRPv3 unicast: tvsd and keepalived 2.2.7", { skip, timeout: 120_000 }, (t) =>
  walk({ name: "v3 unicast", version: 3, advertInt: 0.2, unicast: true }, t),
);

test(
  "VRRPv3 over IPv6 (ff02::12, link-local sources): tvsd and keepalived 2.2.7",
  { skip, timeout: 120_000 },
  async (t) => {
    const lab = new Lab();
    const dir = mkdtempSync(join(tmpdir(), "tvs-vrrp6-"));
    const children: { stop(): Promise<void> }[] = [];
    t.after(async () => {
      for (const c of children.reverse()) await c.stop().catch(() => undefined);
      await lab.destroy();
      rmSync(dir, { recursive: true, force: true });
    });
    await lab.createSwitch();
    const ka = await lab.addHost("ka");
    const tv = await lab.addHost("tv");
    for (const h of [ka, tv]) {
      for (const k of ["all", "default", "eth0"])
        await runIn(h.ns, "sysctl", ["-qw", `net.ipv6.conf.${k}.disable_ipv6=0`]);
      await ipIn(h.ns, "link", "set", "eth0", "down");
      await ipIn(h.ns, "link", "set", "eth0", "up");
    }
    await ipIn(ka.ns, "addr", "add", "fd00:16::11/64", "dev", "eth0", "nodad");
    await ipIn(tv.ns, "addr", "add", "fd00:16::12/64", "dev", "eth0", "nodad");
    // Link-local addresses come after DAD on the new link.
    await waitFor(
      "link-local addresses",
      async () => {
        for (const h of [ka, tv]) {
          const r = await run("ip", ["-n", h.ns, "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"]);
          if (!r.stdout.includes("fe80::") || r.stdout.includes("tentative")) return false;
        }
        return true;
      },
      10_000,
      100,
    );
    const side = (state: "MASTER" | "BACKUP", priority: number): VrrpSide => ({
      state,
      priority,
      vrid: 61,
      advertInt: 0.2,
      version: 3,
      vip: "fd00:16::30/64",
    });
    const keepalived = startKeepalived(ka.ns, dir, side("MASTER", 150));
    children.push(keepalived);
    await waitFor("keepalived MASTER", () => keepalived.last() === "MASTER", 15_000, 50);
    const tvsd = startTvsd(tv.ns, dir, side("BACKUP", 100));
    children.push(tvsd);
    await waitFor(
      "tvsd hearing keepalived",
      async () => (await tvsd.vrrp())?.masterAddress?.startsWith("fe80::") ?? false,
      20_000,
      50,
    );
    await sleep(1000);
    const s = await tvsd.vrrp();
    assert.equal(s?.state, "BACKUP");
    assert.equal(s?.family, 6);
    assert.match(s?.sourceAddress ?? "", /^fe80::/);
    assert.equal(await hasAddress(tv.ns, "fd00:16::30"), false);
    const errs = Object.entries(s?.counters ?? {}).filter(
      ([k, n]) => n > 0 && !["advert_rcvd", "advert_sent", "become_master", "release_master"].includes(k),
    );
    assert.deepEqual(errs, [], "keepalived's IPv6 adverts pass every check (hop limit 255 included)");
    await ipIn(ka.ns, "link", "set", "eth0", "down");
    const took = await waitFor("tvsd MASTER", async () => (await tvsd.vrrp())?.state === "MASTER", 3000, 10);
    assert.ok(took <= 3 * 200 + (156 * 200) / 256 + 500, `takeover ${took} ms`);
    await waitFor("IPv6 VIP on tvsd", () => hasAddress(tv.ns, "fd00:16::30"), 2000, 20);
    await ipIn(ka.ns, "link", "set", "eth0", "up");
    await waitFor("tvsd yields", async () => (await tvsd.vrrp())?.state === "BACKUP", 10_000, 20);
    await waitFor("keepalived MASTER again", () => keepalived.last() === "MASTER", 10_000, 50);
  },
);
