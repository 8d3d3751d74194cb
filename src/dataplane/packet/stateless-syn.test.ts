// stateless_syn on the packet plane: with the switch on, a SYN to a DR service under mh or sh is
// forwarded to the real server the hash picks and leaves no entry; the client's ACK then makes the
// entry on that same real server. With the switch off, or for a service that does not qualify
// (rr, persistent, NAT), the SYN makes its entry as before and a lone ACK is still dropped.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TCP_S_ESTABLISHED } from "../../core/conn/tcp-states.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, fixtureDirector, VIP } from "./fixtures.ts";
import { tcp4Frame } from "./frame-builder.ts";
import { statelessSynProblem, statelessSynQualifies } from "./stateless-syn.ts";

const SYN = 0x02;
const ACK = 0x10;
const RST = 0x04;
const REALS = ["10.0.0.21", "10.0.0.22", "10.0.0.23", "10.0.0.24"];
const MACS = REALS.map((_, i) => `02:00:00:00:00:${(0x21 + i).toString(16)}`);

function director(
  scheduler: string,
  statelessSyn: boolean,
  o: { fwd?: "droute" | "masq"; persistent?: number; sloppyTcp?: boolean } = {},
) {
  const d = fixtureDirector(
    {
      services: [
        {
          protocol: "tcp",
          vip: VIP,
          port: 80,
          dests: REALS.map((addr) => ({ addr, port: 80, fwd: o.fwd ?? ("droute" as const) })),
          ...(o.persistent !== undefined ? { persistent: o.persistent } : {}),
        },
      ],
      neighbours: Object.fromEntries(REALS.map((r, i) => [r, MACS[i]!])),
    },
    {
      scheduler,
      schedFlags: scheduler === "mh" ? ["mh-port"] : scheduler === "sh" ? ["sh-port"] : [],
      connOptions: { sloppyTcp: o.sloppyTcp ?? false },
    },
  );
  d.conns.setSysctl("stateless_syn", statelessSyn ? 1 : 0);
  return d;
}

const seg = (sport: number, flags: number) =>
  tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport, dport: 80, flags });

/** The real server a forwarded frame went to (its destination MAC), or undefined when dropped. */
function sendTo(d: ReturnType<typeof director>, frame: Buffer): string | undefined {
  d.io.inject(frame);
  d.engine.drain();
  const out = d.io.drain();
  if (out.length === 0) return undefined;
  const mac = [...out[0]!.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
  return REALS[MACS.indexOf(mac)];
}

for (const sched of ["mh", "sh"]) {
  test(`stateless_syn + ${sched}: SYNs leave no entry; each flow's ACK makes its entry on the SYN's real server`, () => {
    const d = director(sched, true);
    const used = new Set<string>();
    for (let sport = 42000; sport < 42200; sport++) {
      const synTo = sendTo(d, seg(sport, SYN));
      assert.ok(synTo, `flow ${sport}: the SYN is forwarded`);
      used.add(synTo);
      assert.equal(d.conns.lookupIn("tcp", CLIENT, sport, VIP, 80), undefined, "no entry for a SYN");
    }
    assert.equal(d.conns.size, 0, "200 SYNs, an empty table");
    assert.equal(used.size, REALS.length, "SYNs spread over every real server");
    for (let sport = 42000; sport < 42200; sport++) {
      const synAgain = sendTo(d, seg(sport, SYN));
      const ackTo = sendTo(d, seg(sport, ACK));
      assert.equal(ackTo, synAgain, `flow ${sport}: the ACK goes where the SYN went`);
      const c = d.conns.lookupIn("tcp", CLIENT, sport, VIP, 80)!;
      assert.ok(c, "the ACK makes the entry");
      assert.equal(c.daddr, ackTo);
      assert.equal(c.state, TCP_S_ESTABLISHED);
      // Later segments use the entry.
      assert.equal(sendTo(d, seg(sport, ACK)), ackTo);
    }
    assert.equal(d.conns.size, 200);
  });
}

test("stateless_syn off (the default): the SYN makes the entry and a lone ACK is dropped", () => {
  const d = director("mh", false);
  assert.equal(d.conns.sysctl("stateless_syn"), 0);
  assert.ok(sendTo(d, seg(43000, SYN)));
  assert.ok(d.conns.lookupIn("tcp", CLIENT, 43000, VIP, 80), "entry made by the SYN");
  assert.equal(sendTo(d, seg(43001, ACK)), undefined);
  assert.equal(d.pipeline.reasons.at(-1), "noConn");
});

test("stateless_syn never schedules a RST without an entry", () => {
  const d = director("mh", true);
  const svc = d.services.services()[0]!;
  assert.equal(statelessSynProblem(svc), undefined);
  assert.equal(statelessSynQualifies(svc), true, "the per-segment check agrees: a DR mh service qualifies");
  assert.equal(sendTo(d, seg(43100, RST | ACK)), undefined);
  assert.equal(d.conns.size, 0);
});

for (const [what, sched, o] of [
  ["rr", "rr", {}],
  ["a persistent service", "mh", { persistent: 300 }],
  ["NAT", "mh", { fwd: "masq" }],
] as const) {
  test(`stateless_syn does not apply to ${what}: the SYN makes its entry, a lone ACK is dropped`, () => {
    const d = director(sched, true, o);
    const svc = d.services.services()[0]!;
    assert.match(statelessSynProblem(svc) ?? "", /scheduler rr|persistent|not direct routing/);
    assert.equal(statelessSynQualifies(svc), false, "the per-segment check agrees with the reason");
    assert.ok(sendTo(d, seg(44000, SYN)));
    assert.ok(d.conns.lookupIn("tcp", CLIENT, 44000, VIP, 80), "the SYN made the entry");
    assert.equal(sendTo(d, seg(44001, ACK)), undefined, "no entry-less ACK scheduling");
  });
}

test("stateless_syn with sloppy_tcp on a non-qualifying service keeps sloppy_tcp's rule", () => {
  const d = director("rr", true, { sloppyTcp: true });
  assert.ok(sendTo(d, seg(45000, ACK)), "sloppy_tcp schedules the ACK");
  assert.ok(d.conns.lookupIn("tcp", CLIENT, 45000, VIP, 80));
});
