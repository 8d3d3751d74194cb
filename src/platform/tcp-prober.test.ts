// TcpProber against real loopback listeners: a connect that completes (and is closed: the server
// sees the connection end), refused, bindto/bind_port, IPv6, a probe that never completes
// cancelled without a callback, many probes collected in batches, and IPv6 address packing.
// Skips when the native addon is not built.
import assert from "node:assert/strict";
import { isIPv6 } from "node:net";
import { test } from "node:test";
import { closedPort, listenTcp, unansweredTcp } from "../health/test-listeners.ts";
import { nativeStatus } from "./native-addon.ts";
import { ipv6Bytes, TcpProber } from "./tcp-prober.ts";

const ECONNREFUSED = 111;
const native = nativeStatus();
const skip = native.ok ? false : `native addon unavailable: ${native.reason}`;

function prober(t: { after(fn: () => void): void }): TcpProber {
  const p = new TcpProber();
  t.after(() => p.close());
  return p;
}

const probe = (p: TcpProber, target: Parameters<TcpProber["start"]>[0]) =>
  new Promise<number>((resolve) => {
    const t = p.start(target, resolve);
    if (t < 0) resolve(-t);
  });

test("a probe connects, reports 0, and the connection is closed", { skip }, async (t) => {
  let closed = 0;
  const l = await listenTcp((s) => s.on("close", () => closed++));
  t.after(() => l.close());
  const p = prober(t);
  assert.equal(await probe(p, { address: "127.0.0.1", port: l.port }), 0);
  assert.equal(p.inFlight, 0);
  for (let i = 0; i < 100 && closed === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(l.accepted, 1);
  assert.equal(closed, 1, "the server saw the connection end");
});

test("a refused probe reports ECONNREFUSED", { skip }, async (t) => {
  const p = prober(t);
  assert.equal(await probe(p, { address: "127.0.0.1", port: await closedPort() }), ECONNREFUSED);
});

test("bindto and bind_port set the probe's source", { skip }, async (t) => {
  let peer = "";
  const l = await listenTcp((s) => {
    peer = `${s.remoteAddress}:${s.remotePort}`;
  });
  t.after(() => l.close());
  const p = prober(t);
  const bindPort = await closedPort();
  assert.equal(await probe(p, { address: "127.0.0.1", port: l.port, bindTo: "127.0.0.2", bindPort }), 0);
  for (let i = 0; i < 100 && peer === ""; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(peer, `127.0.0.2:${bindPort}`);
  assert.throws(() => p.start({ address: "127.0.0.1", port: l.port, bindTo: "::1" }, () => {}), /families differ/);
  assert.throws(() => p.start({ address: "localhost", port: l.port }, () => {}), /not an IP address/);
});

test("IPv6: a probe to ::1", { skip }, async (t) => {
  let l: Awaited<ReturnType<typeof listenTcp>>;
  try {
    l = await listenTcp(() => {}, "::1");
  } catch {
    t.skip("no IPv6 loopback");
    return;
  }
  t.after(() => l.close());
  const p = prober(t);
  assert.equal(await probe(p, { address: "::1", port: l.port }), 0);
  const dead = await listenTcp(() => {}, "::1");
  await dead.close();
  assert.equal(await probe(p, { address: "::1", port: dead.port }), ECONNREFUSED);
});

test("cancel closes a probe that never completes, and no callback follows", { skip }, async (t) => {
  const u = await unansweredTcp();
  if (!u) {
    t.skip("python3 is not available for the never-accepting listener");
    return;
  }
  t.after(() => u.close());
  const p = prober(t);
  let called = 0;
  const ticket = p.start({ address: "127.0.0.1", port: u.port }, () => called++);
  assert.ok(ticket >= 0);
  await new Promise((r) => setTimeout(r, 150));
  assert.equal(called, 0, "still in flight");
  assert.equal(p.inFlight, 1);
  p.cancel(ticket);
  p.cancel(ticket);
  assert.equal(p.inFlight, 0);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(called, 0);
});

test("600 probes in flight at once are all collected, each exactly once", { skip }, async (t) => {
  const l = await listenTcp(() => {});
  t.after(() => l.close());
  const dead = await closedPort();
  const p = prober(t);
  const calls = new Map<number, number[]>();
  for (let i = 0; i < 600; i++) {
    const port = i % 3 === 0 ? dead : l.port;
    const ticket = p.start({ address: "127.0.0.1", port }, (errno) => {
      calls.set(i, [...(calls.get(i) ?? []), errno]);
    });
    assert.ok(ticket >= 0);
  }
  for (let i = 0; i < 200 && calls.size < 600; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(calls.size, 600);
  for (const [i, errs] of calls) assert.deepEqual(errs, [i % 3 === 0 ? ECONNREFUSED : 0]);
  assert.equal(p.inFlight, 0);
});

test("IPv6 addresses pack to their 16 bytes", () => {
  const hex = (a: string) => ipv6Bytes(a).toString("hex");
  assert.equal(hex("::1"), `${"0".repeat(30)}01`);
  assert.equal(hex("::"), "0".repeat(32));
  assert.equal(hex("2001:db8::8:800:200c:417a"), "20010db8000000000008080020 0c417a".replace(" ", ""));
  assert.equal(hex("fe80::1"), `fe80${"0".repeat(26)}01`);
  assert.equal(hex("::ffff:192.0.2.1"), `${"0".repeat(20)}ffffc0000201`);
  assert.equal(hex("1:2:3:4:5:6:7:8"), "00010002000300040005000600070008");
  assert.equal(hex("1::"), `0001${"0".repeat(28)}`);
  assert.ok(isIPv6("2001:db8::8:800:200c:417a"));
});

test("the addon refuses ports out of range (no silent truncation to 16 bits)", { skip }, async () => {
  const { loadNative } = await import("./native-addon.ts");
  const a = loadNative() as unknown as {
    probeOpen(): number;
    probeConnect(...args: unknown[]): number;
    close(fd: number): void;
  };
  const ep = a.probeOpen();
  try {
    const lo = Buffer.from([127, 0, 0, 1]);
    // 65536 + 4464 would have been port 4464 (bindPort) and 80 (port).
    assert.throws(() => a.probeConnect(ep, 1, 4, lo, 80, null, 70000), TypeError);
    assert.throws(() => a.probeConnect(ep, 1, 4, lo, 80, null, -1), TypeError);
    assert.throws(() => a.probeConnect(ep, 1, 4, lo, 65616, null, 0), TypeError);
  } finally {
    a.close(ep);
  }
});
