// tvsd's ECMP flags: --announce bird with the --bgp-* options, --sloppy-tcp (packet plane only),
// --sloppy-sctp on the packet plane only; every refusal names the flag and the value.
import assert from "node:assert/strict";
import { test } from "node:test";
import { parseBgpPeer, parseTvsdArgs, UsageError } from "./tvsd-main.ts";

const packet = ["--dataplane", "packet", "--interface", "eth0"];
const usage = (argv: string[], re: RegExp) =>
  assert.throws(
    () => parseTvsdArgs(argv),
    (e: unknown) => e instanceof UsageError && re.test(e.message),
  );

test("--announce bird with its BGP settings", () => {
  const a = parseTvsdArgs([
    ...packet,
    "--announce",
    "bird",
    "--bgp-asn",
    "65001",
    "--bgp-router-id",
    "10.0.1.2",
    "--bgp-peer",
    "10.0.1.1=65000,bfd",
    "--bgp-peer=2001:db8::1=65000,port=1179",
    "--bgp-hold-time",
    "6",
    "--bird-dir",
    "/tmp/d1",
    "--bgp-backup-addr",
    "10.0.8.3,10.0.8.4",
    "--bgp-backup-addr=2001:db8:8::3",
  ]);
  assert.deepEqual(a.announce, {
    daemon: "bird",
    asn: 65001,
    routerId: "10.0.1.2",
    peers: [
      { addr: "10.0.1.1", asn: 65000, bfd: true },
      { addr: "2001:db8::1", asn: 65000, port: 1179 },
    ],
    holdTimeS: 6,
    birdDir: "/tmp/d1",
    backupAddrs: ["10.0.8.3", "10.0.8.4", "2001:db8:8::3"],
  });
  assert.equal(parseTvsdArgs(packet).announce, undefined);
});

test("incomplete or bad announce settings are usage errors naming the flag", () => {
  const base = ["--announce", "bird", "--bgp-asn", "65001", "--bgp-router-id", "10.0.1.2"];
  usage([...base], /needs at least one --bgp-peer/);
  usage(["--announce", "frr"], /Invalid --announce "frr" \(expected bird/);
  usage(["--bgp-asn", "65001", "--bgp-router-id", "10.0.1.2", "--bgp-peer", "10.0.1.1=1"], /need --announce bird/);
  usage([...base, "--bgp-peer", "10.0.1.1"], /Invalid --bgp-peer "10.0.1.1" \(expected ADDR=ASN/);
  usage([...base, "--bgp-peer", "10.0.1.1=65000,ttl=2"], /Invalid --bgp-peer option "ttl=2"/);
  usage([...base, "--bgp-peer", "10.0.1.1=65000", "--bgp-hold-time", "1"], /Invalid --bgp-hold-time "1"/);
  usage(["--announce", "bird", "--bgp-asn", "65001", "--bgp-router-id", "::1"], /Invalid --bgp-router-id "::1"/);
  usage(
    [...base, "--bgp-backup-addr", "10.0.8.3,10.0.8"],
    /Invalid --bgp-backup-addr address "10.0.8" in "10.0.8.3,10.0.8"/,
  );
  usage(
    [
      ...base,
      "--bgp-peer",
      "10.0.1.1=65000",
      "--local-addrs",
      "10.0.8.1,10.0.8.2",
      "--bgp-backup-addr",
      "10.0.8.3,10.0.8.2",
    ],
    /--bgp-backup-addr 10\.0\.8\.2 is one of this director's --local-addrs/,
  );
  assert.deepEqual(parseBgpPeer("10.0.1.1=4200000000"), { addr: "10.0.1.1", asn: 4200000000 });
});

test("--sloppy-tcp and --sloppy-sctp on the packet plane; refused on the socket plane", () => {
  assert.equal(parseTvsdArgs([...packet, "--sloppy-tcp"]).sloppyTcp, true);
  assert.equal(parseTvsdArgs(packet).sloppyTcp, false);
  usage(["--sloppy-tcp"], /--sloppy-tcp needs --dataplane packet/);
  assert.equal(parseTvsdArgs([...packet, "--sloppy-sctp"]).sloppySctp, true);
  assert.equal(parseTvsdArgs(packet).sloppySctp, false);
  usage(["--sloppy-sctp"], /--sloppy-sctp needs --dataplane packet/);
});

test("--sync-daemon STATE:IF[,options]: a master and a backup at most, bad values named", () => {
  const a = parseTvsdArgs([
    "--sync-daemon",
    "master:eth0,syncid=1",
    "--sync-daemon=backup:eth0,group=239.1.2.3,port=9000,ttl=2,maxlen=1400",
  ]);
  assert.deepEqual(a.syncDaemons, [
    { state: "master", mcastIfn: "eth0", syncId: 1, syncMaxLen: 0, mcastGroup: "", mcastPort: 0, mcastTtl: 0 },
    {
      state: "backup",
      mcastIfn: "eth0",
      syncId: 0,
      syncMaxLen: 1400,
      mcastGroup: "239.1.2.3",
      mcastPort: 9000,
      mcastTtl: 2,
    },
  ]);
  assert.deepEqual(parseTvsdArgs([]).syncDaemons, []);
  usage(["--sync-daemon", "eth0"], /Invalid --sync-daemon "eth0" \(expected master\|backup:IFACE/);
  usage(["--sync-daemon", "master:eth0,syncid=256"], /Invalid --sync-daemon syncid "256" \(expected 0..255\)/);
  usage(["--sync-daemon", "master:eth0,colour=red"], /Invalid --sync-daemon option "colour=red"/);
  usage(["--sync-daemon", "backup:eth0,group=x"], /Invalid --sync-daemon group "x"/);
  usage(["--sync-daemon", "master:eth0", "--sync-daemon", "master:eth1"], /a master daemon is given twice/);
});
