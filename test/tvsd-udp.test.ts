// UDP through tvsd's socket data plane: per-client flows (one entry per client address and port,
// state UDP, counted inactive), replies sent back from the VIP, and one-packet scheduling (-o)
// where every datagram is scheduled on its own and leaves no entry behind; --pe sip, where a
// persistent service's templates are keyed by the SIP Call-ID of real SIP messages.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import dgram from "node:dgram";
import { join } from "node:path";
import { after, before, test } from "node:test";
import * as sip from "../src/core/pe/sip-messages.ts";
import {
  adm,
  count,
  freeUdpPort,
  ROOT,
  startTvsd,
  type Tvsd,
  udpClient,
  udpNameServer,
  waitFor,
} from "./tvsd-harness.ts";

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

test("--pe sip: one call's messages from three client ports reach one real server; a message without Call-ID opens no flow", async () => {
  const port = await freeUdpPort();
  const vip = `127.0.0.1:${port}`;
  await adm(tvsd, "-A", "-u", vip, "-s", "rr", "-p", "60", "--pe", "sip");
  await adm(tvsd, "-a", "-u", vip, "-r", `127.0.0.1:${u1.port}`, "-m");
  await adm(tvsd, "-a", "-u", vip, "-r", `127.0.0.1:${u2.port}`, "-m");
  const clients = [await udpClient(), await udpClient(), await udpClient(), await udpClient()];
  const server = async (i: number, text: string) => (await clients[i]!.ask(port, text)).split(":")[0];
  const invite = await server(0, sip.INVITE);
  assert.equal(await server(1, sip.ACK), invite, "ACK from another port");
  assert.equal(await server(2, sip.BYE), invite, "BYE from a third port");
  assert.notEqual(await server(3, sip.INVITE_2), invite, "another call is scheduled anew");

  // A datagram without Call-ID is dropped: the first answer this socket gets is the INVITE's.
  const raw = dgram.createSocket("udp4");
  await new Promise<void>((r) => raw.bind(0, "127.0.0.1", () => r()));
  const first = new Promise<string>((res) => raw.once("message", (m) => res(m.toString("latin1"))));
  raw.send(sip.NO_CALL_ID, port, "127.0.0.1");
  raw.send(sip.INVITE, port, "127.0.0.1");
  assert.equal((await first).split(":")[0], invite);
  assert.match(await first, /^u\d:INVITE /);
  await new Promise<void>((r) => raw.close(() => r()));

  const listing = await adm(tvsd, "-L", "-n", "-c", "--persistent-conn");
  const templates = listing.split("\n").filter((l) => l.includes(" sip "));
  assert.equal(templates.length, 2, listing);
  assert.ok(templates.some((l) => l.trimEnd().endsWith(sip.CALL_1)));
  assert.ok(templates.some((l) => l.trimEnd().endsWith(sip.CALL_2)));
  for (const c of clients) await c.close();
  await adm(tvsd, "-D", "-u", vip);
});

test("--pe sip without -p is accepted as ipvsadm does, and tvs status says it has no effect", async () => {
  const port = await freeUdpPort();
  await adm(tvsd, "-A", "-u", `127.0.0.1:${port}`, "-s", "rr", "--pe", "sip");
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "tvs.js"), "status", "--json"], {
    encoding: "utf8",
    env: { ...process.env, TVS_SOCKET: tvsd.socket },
  });
  assert.equal(r.status, 0, r.stderr);
  const notes = JSON.parse(r.stdout).notes as string[];
  assert.ok(
    notes.includes(`udp 127.0.0.1:${port}: --pe sip has no effect without persistence (-p), as in the kernel`),
    notes.join("\n"),
  );
  await adm(tvsd, "-D", "-u", `127.0.0.1:${port}`);
});

test("--pe sip on a persistent TCP service is refused on the socket plane", async () => {
  const port = await freeUdpPort();
  await assert.rejects(
    adm(tvsd, "-A", "-t", `127.0.0.1:${port}`, "-p", "60", "--pe", "sip"),
    /Persistence engine "sip" reads UDP datagrams/,
  );
});
