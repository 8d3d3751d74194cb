// The tvs_announce block: every keyword read into the spec, and anything wrong refused at
// file:line:col (the block is tvs's own, so nothing unknown is ignored).
import assert from "node:assert/strict";
import { test } from "node:test";
import { loadConfigText } from "../load.ts";
import { ownBackupAddrs } from "./announce.ts";

function load(lines: string[]) {
  return loadConfigText(
    "/etc/keepalived/keepalived.conf",
    ["tvs_announce {", ...lines.map((l) => `  ${l}`), "}", ""].join("\n"),
  );
}

test("tvs_announce with every keyword", () => {
  const r = load([
    "daemon bird",
    "bgp_asn 65001",
    "router_id 10.0.1.2",
    "bgp_peer 10.0.1.1 as 65000 bfd",
    "bgp_peer 2001:db8::1 as 4200000000 port 1179",
    "hold_time 9",
    "bfd_interval 50",
    "bfd_multiplier 5",
    "bird_path /usr/sbin/bird",
    "birdc_path /usr/sbin/birdc",
    "run_dir /run/tvs/bird",
    "backup_addr 10.0.8.3 10.0.8.4",
    "backup_addr 2001:db8:8::3",
  ]);
  assert.ok("config" in r, JSON.stringify(r.diagnostics));
  const { origin, ...a } = r.config.announce!;
  assert.equal(`${origin.line}:${origin.column}`, "1:1");
  assert.deepEqual(a, {
    daemon: "bird",
    asn: 65001,
    routerId: "10.0.1.2",
    peers: [
      { addr: "10.0.1.1", asn: 65000, bfd: true },
      { addr: "2001:db8::1", asn: 4200000000, port: 1179 },
    ],
    holdTimeS: 9,
    bfdIntervalMs: 50,
    bfdMultiplier: 5,
    birdPath: "/usr/sbin/bird",
    birdcPath: "/usr/sbin/birdc",
    runDir: "/run/tvs/bird",
    backupAddrs: ["10.0.8.3", "10.0.8.4", "2001:db8:8::3"],
    backupAddrOrigins: [
      { file: "/etc/keepalived/keepalived.conf", line: 13, column: 15 },
      { file: "/etc/keepalived/keepalived.conf", line: 13, column: 24 },
      { file: "/etc/keepalived/keepalived.conf", line: 14, column: 15 },
    ],
  });
});

test("a backup_addr that is one of the director's own local addresses is named at its word", () => {
  const r = load([
    "bgp_asn 65001",
    "router_id 10.0.1.2",
    "bgp_peer 10.0.1.1 as 65000",
    "backup_addr 10.0.8.3 10.0.8.4",
    "backup_addr 2001:db8:8::3",
  ]);
  assert.ok("config" in r, JSON.stringify(r.diagnostics));
  const announce = r.config.announce!;
  assert.deepEqual(ownBackupAddrs(announce, ["10.0.9.1"]), []);
  const own = ownBackupAddrs(announce, ["10.0.8.4", "2001:DB8:8:0::3"]);
  assert.deepEqual(
    own.map((o) => `${o.origin.line}:${o.origin.column} ${o.addr}`),
    ["5:24 10.0.8.4", "6:15 2001:db8:8::3"],
  );
  assert.match(own[0]!.message, /^backup_addr 10\.0\.8\.4 is one of this director's --local-addrs/);
});

test("a configuration without tvs_announce announces nothing", () => {
  const r = loadConfigText("/etc/keepalived/keepalived.conf", "global_defs {\n  router_id x\n}\n");
  assert.ok("config" in r);
  assert.equal(r.config.announce, undefined);
});

test("bad tvs_announce settings are refused where they are written", () => {
  const errs = (lines: string[]) => {
    const r = load(lines);
    assert.ok(!("config" in r), lines.join("; "));
    return r.diagnostics.filter((d) => d.severity === "error").map((d) => `${d.line}:${d.column} ${d.message}`);
  };
  const ok = ["bgp_asn 65001", "router_id 10.0.1.2", "bgp_peer 10.0.1.1 as 65000"];
  assert.deepEqual(errs([...ok, "daemon frr"]), [
    '5:10 Unsupported tvs_announce daemon "frr" (tvs drives BIRD 2: daemon bird)',
  ]);
  assert.deepEqual(errs([...ok, "hold_time 1"]), ['5:13 Invalid hold_time "1" (expected seconds 3..65535)']);
  assert.deepEqual(errs([...ok, "backup_addr 10.0.8.3 10.0.8"]), ['5:24 Invalid IP address "10.0.8" for backup_addr']);
  assert.deepEqual(errs([...ok, "backup_addr"]), ["5:3 backup_addr needs at least one address"]);
  assert.deepEqual(errs([...ok, "colour blue"]), ['5:3 Unknown keyword "colour" in tvs_announce']);
  assert.deepEqual(errs(["bgp_asn 65001", "router_id 2001:db8::2", "bgp_peer 10.0.1.1 as 65000"]), [
    '3:13 Invalid tvs_announce router_id "2001:db8::2" (expected an IPv4 address)',
    "1:1 tvs_announce needs router_id (an IPv4 address)",
  ]);
  assert.deepEqual(errs(["bgp_asn 65001", "router_id 10.0.1.2", "bgp_peer 10.0.1.1 as 0 ttl"]), [
    '4:24 Invalid bgp_peer as "0" (expected 1..4294967295)',
    '4:26 Unknown option "ttl" for bgp_peer (expected as, port or bfd)',
    "4:3 bgp_peer needs the peer's AS: bgp_peer ADDR as ASN",
    "1:1 tvs_announce needs at least one bgp_peer",
  ]);
});
