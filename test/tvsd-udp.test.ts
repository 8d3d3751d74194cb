// UDP through tvsd's socket data plane: per-client flows (one entry per client address and port,
// state UDP, counted inactive), replies sent back from the VIP, and one-packet scheduling (-o)
// where every datagram is scheduled on its own and leaves no entry behind.

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { adm, count, freeUdpPort, startTvsd, type Tvsd, udpClient, udpNameServer, waitFor } from "./tvsd-harness.ts";

let tvsd: Tvsd;
let u1: { port: number; close(): Promise<void> };
let u2: { port: number; close(): Promise<void> };

before(async () => {
  u1 = await udpNameServer("u1");
  u2 = await udpNameServer("u2");
  tvsd = await startTvsd();
});

after(async () => {
  await tvsd?.stop();
  await u1?.close();
  await u2?.close();
});

test("a UDP client's datagrams stay on one flow; a new client port is scheduled anew", async () => {
  const port = await freeUdpPort();
  const vip = `127.0.0.1:${port}`;
  await adm(tvsd, "-A", "-u", vip, "-s", "rr");
  await adm(tvsd, "-a", "-u", vip, "-r", `127.0.0.1:${u1.port}`, "-m");
  await adm(tvsd, "-a", "-u", vip, "-r", `127.0.0.1:${u2.port}`, "-m");
  const a = await udpClient();
  const b = await udpClient();
  const fromA = [];
  for (let i = 0; i < 4; i++) fromA.push((await a.ask(port, `a${i}`)).split(":")[0]);
  const fromB = (await b.ask(port, "b0")).split(":")[0];
  assert.equal(new Set(fromA).size, 1);
  assert.notEqual(fromB, fromA[0]);
  assert.equal(await a.ask(port, "hello"), `${fromA[0]}:hello`);
  const snap = await tvsd.snapshot(true);
  const flows = (snap.conns ?? []).filter((c) => c.protocol === "udp" && c.vport === port);
  assert.equal(flows.length, 2);
  assert.ok(flows.every((c) => c.state === "UDP"));
  const svc = snap.services.find((s) => s.key.kind === "vip" && s.key.port === port);
  assert.equal(svc?.stats.conns, 2);
  assert.equal(svc?.stats.inPkts, 6);
  assert.equal(svc?.stats.outPkts, 6);
  const inact = (svc?.dests ?? []).map((d) => d.inactConns + d.activeConns * 100);
  assert.deepEqual(inact.sort(), [1, 1]);
  await a.close();
  await b.close();
  await adm(tvsd, "-D", "-u", vip);
});

test("one-packet scheduling (-o): each datagram is scheduled, no entries stay", async () => {
  const port = await freeUdpPort();
  const vip = `127.0.0.1:${port}`;
  await adm(tvsd, "-A", "-u", vip, "-s", "rr", "-o");
  await adm(tvsd, "-a", "-u", vip, "-r", `127.0.0.1:${u1.port}`, "-m");
  await adm(tvsd, "-a", "-u", vip, "-r", `127.0.0.1:${u2.port}`, "-m");
  const a = await udpClient();
  const names = [];
  for (let i = 0; i < 6; i++) names.push((await a.ask(port, `p${i}`)).split(":")[0] as string);
  assert.deepEqual(count(names), { u1: 3, u2: 3 });
  assert.notEqual(names[0], names[1]);
  const snap = await tvsd.snapshot(true);
  assert.equal((snap.conns ?? []).filter((c) => c.vport === port).length, 0);
  const svc = snap.services.find((s) => s.key.kind === "vip" && s.key.port === port);
  assert.equal(svc?.stats.conns, 6);
  await a.close();
  await adm(tvsd, "-D", "-u", vip);
});

test("--set changes the udp timeout that new flows get", async () => {
  await adm(tvsd, "--set", "0", "0", "40");
  const out = await adm(tvsd, "-L", "--timeout");
  assert.match(out, /Timeout \(tcp tcpfin udp\): 900 120 40/);
  const port = await freeUdpPort();
  const vip = `127.0.0.1:${port}`;
  await adm(tvsd, "-A", "-u", vip, "-s", "rr");
  await adm(tvsd, "-a", "-u", vip, "-r", `127.0.0.1:${u1.port}`, "-m");
  const a = await udpClient();
  await a.ask(port, "x");
  const c = await waitFor("the flow", async () =>
    ((await tvsd.snapshot(true)).conns ?? []).find((x) => x.vport === port),
  );
  assert.ok(c.expiresInMs <= 40_000 && c.expiresInMs > 30_000, String(c.expiresInMs));
  await a.close();
  await adm(tvsd, "-D", "-u", vip);
  await adm(tvsd, "--set", "0", "0", "300");
});
