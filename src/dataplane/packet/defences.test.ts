// IPVS's defences and conn_reuse_mode on the packet plane (core/conn/defense.ts, docs/defences.md),
// through the pipeline with fixture frames: drop_packet refuses new connections with the
// dropPacket reason; a SYN on a TIME_WAIT entry is scheduled afresh with conn_reuse_mode 1 (rr moves
// it to the other real server) and revives the old entry with 0.
import assert from "node:assert/strict";
import { test } from "node:test";
import { TCP_S_SYN_RECV, TCP_S_TIME_WAIT } from "../../core/conn/tcp-states.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, fixtureDirector, VIP } from "./fixtures.ts";
import { tcp4Frame } from "./frame-builder.ts";

const SYN = 0x02;
const REALS = ["10.0.0.21", "10.0.0.22"];
const MACS = ["02:00:00:00:00:21", "02:00:00:00:00:22"];

function director() {
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
    { scheduler: "rr" },
  );
}

const syn = (sport: number) => tcp4Frame(DIRECTOR_MAC, CLIENT_MAC, CLIENT, VIP, { sport, dport: 80, flags: SYN });

function sendTo(d: ReturnType<typeof director>, frame: Buffer): string | undefined {
  d.io.inject(frame);
  d.engine.drain();
  const out = d.io.drain();
  if (out.length === 0) return undefined;
  const mac = [...out[0]!.subarray(0, 6)].map((b) => b.toString(16).padStart(2, "0")).join(":");
  return REALS[MACS.indexOf(mac)];
}

test("drop_packet=3 with am_droprate 3: every third new connection is dropped as dropPacket", () => {
  const d = director();
  d.conns.setSysctl("am_droprate", 3);
  d.conns.setSysctl("drop_packet", 3);
  const got = Array.from({ length: 9 }, (_, i) => sendTo(d, syn(44000 + i)) !== undefined);
  assert.deepEqual(got, [true, true, false, true, true, false, true, true, false]);
  assert.equal(d.pipeline.counters.drops.dropPacket, 3);
  assert.equal(d.conns.size, 6);
});

test("conn_reuse_mode 1: a SYN on a TIME_WAIT entry gets a new entry; 0 revives the old one", () => {
  const d = director();
  const first = sendTo(d, syn(45000));
  assert.ok(first);
  const old = d.conns.lookupIn("tcp", CLIENT, 45000, VIP, 80)!;
  d.conns.setState(old, TCP_S_TIME_WAIT, 0);
  const second = sendTo(d, syn(45000));
  assert.equal(old.live, false, "the finished entry went");
  assert.notEqual(second, first, "rescheduled: rr moved on to the other real server");
  const fresh = d.conns.lookupIn("tcp", CLIENT, 45000, VIP, 80)!;
  assert.equal(fresh.state, TCP_S_SYN_RECV);

  d.conns.setSysctl("conn_reuse_mode", 0);
  d.conns.setState(fresh, TCP_S_TIME_WAIT, 0);
  const third = sendTo(d, syn(45000));
  assert.equal(fresh.live, true, "kept and revived");
  assert.equal(third, second, "same real server as before");
  assert.equal(fresh.state, TCP_S_SYN_RECV);
});
