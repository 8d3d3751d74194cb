// SCTP on the packet plane beyond the frames: the association's packets drive the kernel's state
// table (NAT: INPUT / OUTPUT rows; DR: INPUT_ONLY), the destination's active / inactive counts
// and the state timeouts; an INIT on a CLOSED entry is scheduled afresh (conn_reuse_mode);
// sloppy_sctp lets a mid-association packet start an entry but never an ABORT.
import assert from "node:assert/strict";
import { test } from "node:test";
import { known, svc } from "./fixtures/kit.ts";
import { sctpAssociation } from "./fixtures/sctp.ts";
import { CLIENT, CLIENT_MAC, DIRECTOR_MAC, fixtureDirector, RS1, RS1_MAC, VIP } from "./fixtures.ts";
import { ETH_P_IP, eth, IPPROTO, ipv4 } from "./frame-builder.ts";
import { sctpChunks as ch, sctp } from "./sctp-builder.ts";

const VPORT = 36412;

function director(fwd: "masq" | "droute", connOptions = {}) {
  return fixtureDirector(
    { services: [svc("sctp", VPORT, fwd, fwd === "masq" ? 38412 : VPORT)], neighbours: known },
    { connOptions },
  );
}

type D = ReturnType<typeof director>;

function send(d: D, dir: "in" | "out", chunks: Uint8Array[], vtag: number, sport = 40000): string {
  const frame =
    dir === "in"
      ? eth(
          DIRECTOR_MAC,
          CLIENT_MAC,
          ETH_P_IP,
          ipv4(CLIENT, VIP, IPPROTO.sctp, sctp({ sport, dport: VPORT, vtag, chunks })),
        )
      : eth(
          DIRECTOR_MAC,
          RS1_MAC,
          ETH_P_IP,
          ipv4(RS1, CLIENT, IPPROTO.sctp, sctp({ sport: 38412, dport: sport, vtag, chunks })),
        );
  d.io.inject(frame);
  d.engine.runOnce();
  d.io.drain();
  d.clock.advance(10);
  return d.pipeline.verdicts[0] ?? "none";
}

function entry(d: D, sport = 40000) {
  return d.conns.lookupIn("sctp", CLIENT, sport, VIP, VPORT);
}

test("NAT: the association walks the kernel's states; ESTABLISHED counts as active; SHUTDOWN COMPLETE closes", () => {
  const d = director("masq");
  const expected = [
    "INIT1", // INIT in
    "C-SENT", // INIT ACK out
    "C-REPLIED", // COOKIE ECHO in
    "ESTABLISHED", // COOKIE ACK out
    "ESTABLISHED",
    "ESTABLISHED",
    "ESTABLISHED",
    "ESTABLISHED",
    "S-RECEIVED", // SHUTDOWN in
    "S-ACK-SENT", // SHUTDOWN ACK out
    "CLOSED", // SHUTDOWN COMPLETE in
  ];
  const dest = d.services.services()[0]!.dests[0]!;
  sctpAssociation().forEach((s, i) => {
    assert.equal(send(d, s.dir, s.chunks, s.vtag), "forward", s.name);
    const c = entry(d);
    assert.ok(c, s.name);
    assert.equal(c.stateName, expected[i], s.name);
    if (c.stateName === "ESTABLISHED") assert.equal(dest.activeConns, 1, `${s.name}: active`);
  });
  assert.equal(dest.activeConns, 0);
  assert.equal(dest.inactConns, 1);
  // ESTABLISHED's timeout is the kernel's 900 s, CLOSED's 61 s (IP_VS_SCTP_MAX_RTO).
  assert.equal(d.conns.stateTimeoutMs("sctp", 8), 900_000);
  assert.equal(entry(d)!.timeoutMs, 61_000);
});

test("DR: replies bypass the director, so the INPUT_ONLY row applies (COOKIE ECHO establishes)", () => {
  const d = director("droute");
  assert.equal(send(d, "in", [ch.init(1, 1)], 0), "forward");
  assert.equal(entry(d)!.stateName, "INIT1");
  assert.equal(send(d, "in", [ch.cookieEcho(Buffer.from("cookie"))], 7), "forward");
  assert.equal(entry(d)!.stateName, "ESTABLISHED");
  assert.equal(send(d, "in", [ch.abort()], 7), "forward");
  assert.equal(entry(d)!.stateName, "CLOSED");
});

test("a COOKIE ECHO bundled with an ABORT counts as the ABORT", () => {
  const d = director("masq");
  send(d, "in", [ch.init(1, 1)], 0);
  send(d, "out", [ch.initAck(2, 1, Buffer.from("c"))], 1);
  assert.equal(entry(d)!.stateName, "C-SENT");
  send(d, "in", [ch.cookieEcho(Buffer.from("c")), ch.abort()], 2);
  assert.equal(entry(d)!.stateName, "CLOSED");
});

test("conn_reuse_mode: an INIT on a CLOSED entry gets a newly scheduled one", () => {
  const d = director("masq");
  for (const s of sctpAssociation()) send(d, s.dir, s.chunks, s.vtag);
  const closed = entry(d)!;
  assert.equal(closed.stateName, "CLOSED");
  assert.equal(send(d, "in", [ch.init(9, 9)], 0), "forward");
  const fresh = entry(d)!;
  assert.notEqual(fresh, closed);
  assert.equal(fresh.stateName, "INIT1");
});

test("sloppy_sctp: a DATA packet without an entry starts one (an ABORT still does not)", () => {
  const strict = director("droute");
  assert.equal(send(strict, "in", [ch.data(1, 0, 0, 0, Buffer.from("x"))], 5), "drop");
  assert.equal(strict.pipeline.reasons[0], "noConn");
  const sloppy = director("droute", { sloppySctp: true });
  assert.equal(send(sloppy, "in", [ch.abort()], 5, 40001), "drop");
  assert.equal(entry(sloppy, 40001), undefined);
  assert.equal(send(sloppy, "in", [ch.data(1, 0, 0, 0, Buffer.from("x"))], 5), "forward");
  // From NONE, INPUT_ONLY DATA → ESTABLISHED: the flow is taken over as it is.
  assert.equal(entry(sloppy)!.stateName, "ESTABLISHED");
});
