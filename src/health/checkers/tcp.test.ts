// TCP_CHECK against real loopback listeners: connect succeeds, refused, never answered (timeout),
// bind options, and ldirectord's simpletcp request/answer.
import assert from "node:assert/strict";
import { test } from "node:test";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, type TcpCheckSpec } from "../checker-spec.ts";
import { closedPort, listenTcp, silentTcp, unansweredTcp } from "../test-listeners.ts";
import { createTcpChecker, netConnect, TCP_CONNECT_PATH } from "./tcp.ts";

const spec = (over: Partial<TcpCheckSpec> = {}): TcpCheckSpec => ({
  ...checkerCommon("TCP_CHECK", { connectTimeoutMs: 400 }),
  type: "TCP_CHECK",
  ...over,
});

test("TCP_CHECK passes when the connection completes, and closes it", async (t) => {
  let closed = 0;
  const l = await listenTcp((s) => s.on("close", () => closed++));
  t.after(() => l.close());
  const r = await checkWithTimeout(createTcpChecker(spec()), { address: "127.0.0.1", port: l.port }, 400);
  assert.equal(r.ok, true);
  assert.equal(r.reason, "Connected");
  assert.ok(r.latencyMs >= 0);
  for (let i = 0; i < 100 && closed === 0; i++) await new Promise((res) => setTimeout(res, 10));
  assert.equal(l.accepted, 1);
  assert.equal(closed, 1);
});

test("TCP_CHECK fails on a refused connection", async () => {
  const port = await closedPort();
  const r = await checkWithTimeout(createTcpChecker(spec()), { address: "127.0.0.1", port }, 400);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "Connection refused");
});

test("TCP_CHECK fails with a timeout when the server never answers the handshake", async (t) => {
  const u = await unansweredTcp();
  if (!u) {
    t.skip("python3 is not available for the never-accepting listener");
    return;
  }
  t.after(() => u.close());
  const r = await checkWithTimeout(createTcpChecker(spec()), { address: "127.0.0.1", port: u.port }, 300);
  assert.equal(r.ok, false);
  assert.equal(r.reason, "Timed out after 300 ms");
});

test("TCP_CHECK connects from bindto/bind_port", async (t) => {
  let peer = "";
  const l = await listenTcp((s) => {
    peer = `${s.remoteAddress}:${s.remotePort}`;
  });
  t.after(() => l.close());
  const bindPort = await closedPort();
  const r = await checkWithTimeout(
    createTcpChecker(spec()),
    { address: "127.0.0.1", port: l.port, bindTo: "127.0.0.2", bindPort },
    400,
  );
  assert.equal(r.ok, true, r.reason);
  for (let i = 0; i < 100 && peer === ""; i++) await new Promise((res) => setTimeout(res, 10));
  assert.equal(peer, `127.0.0.2:${bindPort}`);
});

test("simpletcp: sends the request and needs an answer matching the regex", async (t) => {
  const got: string[] = [];
  const l = await listenTcp((s) =>
    s.on("data", (d) => {
      got.push(d.toString());
      s.end(d.toString().includes("PING") ? "+PONG\r\n" : "-ERR\r\n");
    }),
  );
  t.after(() => l.close());
  const good = createTcpChecker(spec({ send: "PING\r\n", expectRegex: "^\\+PONG" }));
  const r = await checkWithTimeout(good, { address: "127.0.0.1", port: l.port }, 400);
  assert.equal(r.ok, true, r.reason);
  assert.equal(got[0], "PING\r\n");
  const bad = createTcpChecker(spec({ send: "HELLO\r\n", expectRegex: "^\\+PONG" }));
  const r2 = await checkWithTimeout(bad, { address: "127.0.0.1", port: l.port }, 400);
  assert.equal(r2.ok, false);
  assert.match(r2.reason, /No answer matching/);
});

test("simpletcp: a silent server fails at the time limit", async (t) => {
  const l = await silentTcp();
  t.after(() => l.close());
  const c = createTcpChecker(spec({ send: "PING\r\n", expectRegex: "PONG" }));
  const r = await checkWithTimeout(c, { address: "127.0.0.1", port: l.port }, 200);
  assert.equal(r.ok, false);
  assert.match(r.reason, /Timed out after 200 ms/);
});

test("the portable net.Socket path gives the same verdicts as the fast path", async (t) => {
  const l = await listenTcp(() => {});
  t.after(() => l.close());
  const ok = await netConnect({ address: "127.0.0.1", port: l.port }, AbortSignal.timeout(400));
  assert.equal(ok.ok, true);
  assert.equal(ok.reason, "Connected");
  const refused = await netConnect({ address: "127.0.0.1", port: await closedPort() }, AbortSignal.timeout(400));
  assert.equal(refused.ok, false);
  assert.equal(refused.reason, "Connection refused");
  assert.ok(TCP_CONNECT_PATH === "tcp_wrap" || TCP_CONNECT_PATH === "net");
});
