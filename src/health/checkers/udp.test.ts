// UDP_CHECK against loopback UDP servers: reply required and given, reply required but silent,
// silence accepted without require_reply, the closed port (ICMP port unreachable), reply data and
// length limits, and the payload on the wire.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, DEFAULT_UDP_MAX_REPLY, type UdpCheckSpec } from "../checker-spec.ts";
import { listenUdp } from "../test-listeners.ts";
import { createUdpChecker, parseHex } from "./udp.ts";

const spec = (over: Partial<UdpCheckSpec> = {}): UdpCheckSpec => ({
  ...checkerCommon("UDP_CHECK", { connectTimeoutMs: 300 }),
  type: "UDP_CHECK",
  requireReply: false,
  minReplyLength: 0,
  maxReplyLength: DEFAULT_UDP_MAX_REPLY,
  ...over,
});

test("parseHex reads hex and rejects anything else, quoting it", () => {
  assert.deepEqual(parseHex("de ad BE ef", "x"), Buffer.from([0xde, 0xad, 0xbe, 0xef]));
  assert.throws(() => parseHex("abc", "UDP_CHECK payload"), /Invalid hex string "abc" in UDP_CHECK payload/);
});

test("UDP_CHECK with require_reply passes on a reply and sends the payload", async (t) => {
  const srv = await listenUdp((msg, reply) => reply(Buffer.concat([Buffer.from("OK:"), msg])));
  t.after(() => srv.close());
  const c = createUdpChecker(spec({ payloadHex: "70696e67", requireReply: true, replyHex: "4f4b3a" }));
  const r = await checkWithTimeout(c, { address: "127.0.0.1", port: srv.port }, 300);
  assert.equal(r.ok, true, r.reason);
  assert.deepEqual(srv.received, [Buffer.from("ping")]);
});

test("UDP_CHECK with require_reply fails on silence, on mismatched data and on length limits", async (t) => {
  const silent = await listenUdp(() => {});
  t.after(() => silent.close());
  const r = await checkWithTimeout(
    createUdpChecker(spec({ requireReply: true })),
    { address: "127.0.0.1", port: silent.port },
    200,
  );
  assert.equal(r.ok, false);
  assert.equal(r.reason, "No UDP reply within 200 ms");
  const echo = await listenUdp((msg, reply) => reply(msg));
  t.after(() => echo.close());
  const target = { address: "127.0.0.1", port: echo.port };
  const mismatch = await checkWithTimeout(
    createUdpChecker(spec({ payloadHex: "0102", requireReply: true, replyHex: "0103" })),
    target,
    300,
  );
  assert.equal(mismatch.ok, false);
  assert.equal(mismatch.reason, "UDP reply data mismatch");
  const tooShort = await checkWithTimeout(
    createUdpChecker(spec({ payloadHex: "0102", requireReply: true, minReplyLength: 3 })),
    target,
    300,
  );
  assert.equal(tooShort.ok, false);
  assert.equal(tooShort.reason, "UDP reply of 2 bytes outside 3..255");
});

test("UDP_CHECK without require_reply passes on silence", async (t) => {
  const silent = await listenUdp(() => {});
  t.after(() => silent.close());
  const r = await checkWithTimeout(createUdpChecker(spec()), { address: "127.0.0.1", port: silent.port }, 150);
  assert.equal(r.ok, true, r.reason);
  assert.equal(r.reason, "No ICMP error");
  assert.equal(silent.received.length, 1);
});

test("UDP_CHECK fails on ICMP port unreachable, with or without require_reply", async () => {
  const srv = await listenUdp(() => {});
  const port = srv.port;
  await srv.close();
  for (const requireReply of [false, true]) {
    const r = await checkWithTimeout(createUdpChecker(spec({ requireReply })), { address: "127.0.0.1", port }, 2000);
    assert.equal(r.ok, false);
    assert.equal(r.reason, "Connection refused");
  }
});
