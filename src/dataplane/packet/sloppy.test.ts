// sloppy_tcp on the packet plane, with two directors built from the same fixture as ECMP would see
// them: a flow starts on director A, then its mid-connection segments arrive at director B (A left
// the ECMP group, or B joined). Without sloppy_tcp B drops them (no entry, no SYN); with it B
// schedules them, and under mh B picks the same real server A did for every flow, so DR carries on.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TCP_S_ESTABLISHED } from "../../core/conn/tcp-states.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, fixtureDirector, VIP } from "./fixtures.ts";
import { tcp4Frame } from "./frame-builder.ts";

const SYN = 0x02;
const ACK = 0x10;
const RST = 0x04;
const REALS = ["10.0.0.21", "10.0.0.22", "10.0.0.23", "10.0.0.24"];
const MACS = REALS.map((_, i) => `02:00:00:00:00:${(0x21 + i).toString(16)}`);

function director(scheduler: string, sloppyTcp: boolean) {
  return fixtureDirector(
    {
      services: [
        {
          protocol: "tcp",
          vip: VIP,
          port: 80,
          dests: REALS.map((addr) => ({ addr, port: 80, fwd: "droute" as const })),
        },
      ],
      neighbours: Object.fromEntries(REALS.map((r, i) => [r, MACS[i]!])),
    },
    // mh-port: one client's many source ports spread over the real servers (the lab's client).
    { scheduler, schedFlags: scheduler === "mh" ? ["mh-port"] : [], connOptions: { sloppyTcp } },
  );
}

const seg = (sport: number, flags: number) =>
  tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport, dport: 80, flags, payload: Buffer.from("x") });

/** The real server a forwarded DR frame went to (its destination MAC), or undefined when dropped. */
function sendTo(d: ReturnType<typeof director>, frame: Buffer): string | undefined {
  d.io.inject(frame);
  d.engine.drain();
  const out = d.io.drain();
  if (out.length === 0) return undefined;
  const mac = [...out[0]!.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
  return REALS[MACS.indexOf(mac)];
}

test("without sloppy_tcp a mid-connection segment with no entry is dropped (noConn)", () => {
  const b = director("mh", false);
  assert.equal(sendTo(b, seg(41000, ACK)), undefined);
  assert.equal(b.conns.lookupIn("tcp", CLIENT, 41000, VIP, 80), undefined);
  assert.equal(b.pipeline.reasons[0], "noConn");
});

test("sloppy_tcp + mh: every flow A started is taken over by B on the same real server", () => {
  const a = director("mh", false);
  const b = director("mh", true);
  const used = new Set<string>();
  for (let sport = 42000; sport < 42200; sport++) {
    const onA = sendTo(a, seg(sport, SYN));
    assert.ok(onA, "A schedules the SYN");
    used.add(onA);
    const onB = sendTo(b, seg(sport, ACK));
    assert.equal(onB, onA, `flow ${sport}: B forwards the ACK to A's real server`);
    const c = b.conns.lookupIn("tcp", CLIENT, sport, VIP, 80)!;
    assert.equal(c.state, TCP_S_ESTABLISHED, "the taken-over entry is ESTABLISHED");
  }
  assert.equal(used.size, REALS.length, "flows spread over every real server");
});

test("sloppy_tcp never schedules a RST", () => {
  const b = director("mh", true);
  assert.equal(sendTo(b, seg(43000, RST | ACK)), undefined);
  assert.equal(b.conns.lookupIn("tcp", CLIENT, 43000, VIP, 80), undefined);
});

test("sloppy_tcp + rr: B schedules the segment, but not necessarily on A's real server", () => {
  const a = director("rr", false);
  const b = director("rr", true);
  // rr on A has advanced once per flow; B starts afresh, so the choices differ for some flows.
  let moved = 0;
  for (let sport = 44000; sport < 44040; sport++) {
    const onA = sendTo(a, seg(sport, SYN));
    sendTo(a, seg(sport + 1000, SYN));
    const onB = sendTo(b, seg(sport, ACK));
    assert.ok(onB, "scheduled");
    if (onB !== onA) moved++;
  }
  assert.ok(moved > 0, "rr does not keep flows on their real server across directors");
});
