// Tests for the set-up mistakes tvs status points out: a VIP that is the host's own address (with
// the DR explanation when real servers are reached by DR), and NAT real servers whose replies do
// not come back through the director; nothing on the socket plane, nothing for a healthy table.

import assert from "node:assert/strict";
import { test } from "node:test";
import { destSpec } from "../core/dest.ts";
import { serviceOptions } from "../core/service.ts";
import type { DestView, ServiceView, Snapshot } from "./api/protocol.ts";
import { hostAddresses, NAT_SILENT_MIN_PACKETS, pitfallNotes } from "./pitfalls.ts";

const zero = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
const rates = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

function dest(addr: string, fwd: "droute" | "masq" | "tunnel", inPkts = 0, outPkts = 0): DestView {
  return {
    spec: destSpec(addr, 80, { fwd }),
    activeConns: 0,
    inactConns: 0,
    persistConns: 0,
    overloaded: false,
    stats: { ...zero, inPkts, outPkts },
    rates,
  };
}

function snap(vip: string, dests: DestView[]): Snapshot {
  const svc: ServiceView = {
    key: { kind: "vip", protocol: "tcp", addr: vip, port: 80 },
    options: serviceOptions(4, { scheduler: "rr" }),
    dests,
    stats: zero,
    rates,
  };
  return {
    version: "1.2.1",
    connTableSize: 4096,
    services: [svc],
    stats: zero,
    rates,
    timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
    daemons: [],
  };
}

const host = new Set(["192.168.122.30", "127.0.0.1"]);

test("a VIP equal to the director's own address is pointed out, with the DR reason for DR real servers", () => {
  const dr = pitfallNotes({
    plane: "packet",
    snapshot: snap("192.168.122.30", [dest("192.168.122.45", "droute")]),
    hostAddrs: host,
  });
  assert.equal(dr.length, 1);
  assert.match(
    dr[0] ?? "",
    /^VIP 192\.168\.122\.30 of tcp 192\.168\.122\.30:80 is also this host's own address: DR\/TUN real servers/,
  );
  const nat = pitfallNotes({
    plane: "packet",
    snapshot: snap("192.168.122.30", [dest("192.168.122.45", "masq")]),
    hostAddrs: host,
  });
  assert.equal(nat.length, 1);
  assert.doesNotMatch(nat[0] ?? "", /DR\/TUN/);
  assert.deepEqual(
    pitfallNotes({
      plane: "packet",
      snapshot: snap("192.168.122.22", [dest("192.168.122.45", "droute")]),
      hostAddrs: host,
    }),
    [],
  );
});

test("NAT real servers that get packets and send none back through the director are pointed out", () => {
  const n = NAT_SILENT_MIN_PACKETS;
  const notes = pitfallNotes({
    plane: "packet",
    snapshot: snap("192.168.122.22", [
      dest("192.168.122.45", "masq", n, 0),
      dest("192.168.122.46", "masq", n, 3),
      dest("192.168.122.47", "masq", n - 1, 0),
      dest("192.168.122.48", "droute", 50, 0),
    ]),
    hostAddrs: host,
  });
  assert.deepEqual(notes, [
    `NAT real server 192.168.122.45:80 of tcp 192.168.122.22:80 got ${n} packets and no reply came back through this director: unless it is down, make the director its default gateway (or route the clients through it), or use --fullnat`,
  ]);
});

test("a real server that is the director itself (loopback or its own address) is pointed out", () => {
  const notes = pitfallNotes({
    plane: "packet",
    snapshot: snap("192.168.122.22", [
      dest("127.0.0.1", "droute"),
      dest("192.168.122.30", "droute"),
      dest("192.168.122.45", "droute"),
    ]),
    hostAddrs: host,
  });
  assert.equal(notes.length, 2);
  assert.match(notes[0] ?? "", /^Real server 127\.0\.0\.1:80 of tcp 192\.168\.122\.22:80 is this director itself: /);
  assert.match(
    notes[1] ?? "",
    /^Real server 192\.168\.122\.30:80 of tcp 192\.168\.122\.22:80 is this director itself: /,
  );
});

test("the socket data plane gets no such notes (its VIPs are the host's, its replies always return)", () => {
  assert.deepEqual(
    pitfallNotes({ plane: "proxy", snapshot: snap("127.0.0.1", [dest("127.0.0.2", "masq", 99, 0)]), hostAddrs: host }),
    [],
  );
});

test("a persistence engine without persistence is pointed out on both planes; with -p it is not", () => {
  const s = snap("10.0.0.1", [dest("10.0.1.2", "masq", 0, 0)]);
  const svc = s.services[0]!;
  svc.key = { kind: "vip", protocol: "udp", addr: "10.0.0.1", port: 5060 };
  svc.options = serviceOptions(4, { scheduler: "rr", pe: "sip" });
  const note = "udp 10.0.0.1:5060: --pe sip has no effect without persistence (-p), as in the kernel";
  for (const plane of ["proxy", "packet"])
    assert.deepEqual(pitfallNotes({ plane, snapshot: s, hostAddrs: host }), [note], plane);
  svc.options = serviceOptions(4, { scheduler: "rr", pe: "sip", persistent: true, timeout: 60 });
  assert.deepEqual(pitfallNotes({ plane: "proxy", snapshot: s, hostAddrs: host }), []);
});

test("hostAddresses lists loopback", () => {
  assert.ok(hostAddresses().has("127.0.0.1"));
});
