// The next hop towards a client whose MAC the plane has not learned: the kernel's routing table
// read from /proc/net/route and /proc/net/ipv6_route (longest prefix, then metric; on-link routes
// give the address itself), and a FULLNAT reply for a synced entry that no client packet has
// passed here goes to the router that the host's route names, not to an ARP for the client.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TCP_S_ESTABLISHED } from "../../core/conn/tcp-states.ts";
import { DIRECTOR_MAC, fixtureDirector, RS1, RS1_MAC, VIP } from "./fixtures.ts";
import { tcp4Frame } from "./frame-builder.ts";
import { nextHopIn, parseRoutes4, parseRoutes6 } from "./kernel-routes.ts";

// `ip route`: default via 10.90.0.1 dev eth0; 10.90.0.0/24 dev eth0; 10.77.0.0/16 via 10.90.0.9
// metric 5 and via 10.90.0.8 metric 1; 192.168.5.0/24 via 10.1.1.1 dev eth1 (another interface).
const PROC_ROUTE = `Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t01005A0A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t00005A0A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth0\t00004D0A\t09005A0A\t0003\t0\t0\t5\t0000FFFF\t0\t0\t0
eth0\t00004D0A\t08005A0A\t0003\t0\t0\t1\t0000FFFF\t0\t0\t0
eth1\t0005A8C0\t0101010A\t0003\t0\t0\t0\t00FFFFFF\t0\t0\t0
`;
// default via fd00::1 dev eth0; fd00::/64 dev eth0 (on-link).
const PROC_ROUTE6 = `fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000003 00000000 00000003     eth0
00000000000000000000000000000000 00 00000000000000000000000000000000 00 00000000000000000000000000000000 ffffffff 00000001 00000000 00200200       lo
`;

test("routes from /proc: longest prefix, then lowest metric; on-link gives the address; other interfaces ignored", () => {
  const r = [...parseRoutes4(PROC_ROUTE, "eth0"), ...parseRoutes6(PROC_ROUTE6, "eth0")];
  assert.equal(r.length, 6);
  assert.equal(nextHopIn(r, "203.0.113.7"), "10.90.0.1", "default route");
  assert.equal(nextHopIn(r, "10.90.0.44"), "10.90.0.44", "on-link");
  assert.equal(nextHopIn(r, "10.77.3.4"), "10.90.0.8", "the /16 beats the default; metric 1 beats 5");
  assert.equal(nextHopIn(r, "192.168.5.5"), "10.90.0.1", "eth1's route is not this interface's");
  assert.equal(nextHopIn(r, "2001:db8::7"), "fd00::1");
  assert.equal(nextHopIn(r, "fd00::99"), "fd00::99");
  assert.equal(nextHopIn([], "198.51.100.1"), "198.51.100.1", "no route: taken as on-link (as before)");
});

const ROUTER = "10.0.0.254";
const ROUTER_MAC = "02:00:00:00:00:fe";
const FAR_CLIENT = "192.0.2.7";
const OTHER_LOCAL = "10.0.0.60"; // another director's FULLNAT local address

function synced(clientNextHop?: (addr: string) => string) {
  const d = fixtureDirector(
    {
      services: [{ protocol: "tcp", vip: VIP, port: 80, dests: [{ addr: RS1, port: 80, fwd: "fullnat" }] }],
      neighbours: { [RS1]: RS1_MAC, [ROUTER]: ROUTER_MAC },
    },
    clientNextHop ? { clientNextHop } : {},
  );
  // An entry another director made (its local address), learned by sync; no client packet yet.
  d.conns.ingestSynced(
    {
      protocol: "tcp",
      caddr: FAR_CLIENT,
      cport: 40000,
      vaddr: VIP,
      vport: 80,
      daddr: RS1,
      dport: 80,
      fwmark: 0,
      fwd: "fullnat",
      template: false,
      inactive: false,
      noOutput: false,
      state: TCP_S_ESTABLISHED,
      timeoutS: 900,
      laddr: OTHER_LOCAL,
      lport: 5000,
    },
    d.clock.now(),
  );
  d.io.inject(tcp4Frame(DIRECTOR_MAC, ROUTER_MAC, RS1, OTHER_LOCAL, { sport: 80, dport: 5000, flags: 0x18 }));
  d.engine.drain();
  return d.io.sent.splice(0);
}

test("a synced FULLNAT entry's reply goes to the router the host's route names when no client packet taught the MAC", () => {
  const [out, ...rest] = synced((a) => (a === FAR_CLIENT ? ROUTER : a));
  assert.ok(out);
  assert.equal(rest.length, 0);
  assert.equal(out.subarray(0, 6).toString("hex"), ROUTER_MAC.replaceAll(":", ""), "to the router's MAC");
  assert.equal([...out.subarray(26, 30)].join("."), VIP, "from the VIP");
  assert.equal([...out.subarray(30, 34)].join("."), FAR_CLIENT, "to the client");
  assert.equal(out.readUInt16BE(34), 80);
  assert.equal(out.readUInt16BE(36), 40000);
});

test("without a route lookup the plane asks the segment for the client itself (ARP), as before", () => {
  const [arp] = synced();
  assert.ok(arp);
  assert.equal(arp.readUInt16BE(12), 0x0806, "an ARP request");
  assert.equal([...arp.subarray(38, 42)].join("."), FAR_CLIENT);
});
