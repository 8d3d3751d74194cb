// tvsd's socket-plane extensions and sysctl-like switches, end to end: fwmark services listening on
// a configured address list (--fwmark-addr), PROXY protocol v1/v2 towards real servers
// (--proxy-protocol, per service and per destination), retrying a refusing real server on another
// destination (--retry-connect), and expire_nodest_conn (--expire-nodest-conn) resetting the
// connections of a removed destination.

import assert from "node:assert/strict";
import net from "node:net";
import { after, before, test } from "node:test";
import {
  adm,
  count,
  freePort,
  type NameServer,
  nameServer,
  openClient,
  startTvsd,
  type Tvsd,
  waitFor,
  whoAnswers,
} from "./tvsd-harness.ts";

let tvsd: Tvsd;
let rs1: NameServer;
let rs2: NameServer;
let fwPort: number;
let ppPort: number;
let ppDestPort: number;
/** A real server that answers with the first line (or 28 bytes of a v2 header) it receives, hex-encoded. */
let recorder: net.Server;
let recorderPort: number;

before(async () => {
  rs1 = await nameServer("rs1");
  rs2 = await nameServer("rs2");
  recorder = net.createServer((s) => {
    s.on("error", () => {});
    let buf = Buffer.alloc(0);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const nl = buf.indexOf("\r\n");
      const v2 = buf.length >= 28 && buf[12] === 0x21;
      if (v2 || (nl !== -1 && buf.subarray(0, 5).toString() === "PROXY")) {
        s.end(`${(v2 ? buf.subarray(0, 28) : buf.subarray(0, nl)).toString("hex")}\n`);
      }
    });
  });
  await new Promise<void>((r) => recorder.listen(0, "127.0.0.1", () => r()));
  recorderPort = (recorder.address() as net.AddressInfo).port;
  fwPort = await freePort();
  ppPort = await freePort();
  ppDestPort = await freePort();
  tvsd = await startTvsd([
    "--fwmark-addr",
    `7=tcp:127.0.0.6:${fwPort}`,
    "--fwmark-addr",
    `7=tcp:127.0.0.7:${fwPort}`,
    "--proxy-protocol",
    `tcp:127.0.0.1:${ppPort}=v1`,
    "--proxy-protocol",
    `tcp:127.0.0.1:${ppDestPort}->127.0.0.1:${recorderPort}=v2`,
    "--retry-connect",
    "--expire-nodest-conn",
  ]);
});

after(async () => {
  await tvsd?.stop();
  await rs1?.close();
  await rs2?.close();
  await new Promise<void>((r) => recorder.close(() => r()));
});

test("an fwmark service listens on its configured addresses and schedules them as one service", async () => {
  await adm(tvsd, "-A", "-f", "7", "-s", "rr");
  await adm(tvsd, "-a", "-f", "7", "-r", `127.0.0.1:${rs1.port}`, "-m");
  await adm(tvsd, "-a", "-f", "7", "-r", `127.0.0.1:${rs2.port}`, "-m");
  const seq = [];
  for (let i = 0; i < 3; i++) {
    seq.push(await whoAnswers(fwPort, { host: "127.0.0.6" }));
    seq.push(await whoAnswers(fwPort, { host: "127.0.0.7" }));
  }
  assert.deepEqual(seq, ["rs2", "rs1", "rs2", "rs1", "rs2", "rs1"]);
  const conns = (await tvsd.snapshot(true)).conns ?? [];
  const vaddrs = new Set(conns.filter((c) => c.vport === fwPort).map((c) => c.vaddr));
  assert.deepEqual([...vaddrs].sort(), ["127.0.0.6", "127.0.0.7"]);
  assert.ok(conns.filter((c) => c.vport === fwPort).every((c) => c.fwmark === 7));
  const r = await tvsd.tvsadm("-A", "-f", "8", "-s", "rr");
  assert.notEqual(r.code, 0, "a mark without addresses is refused");
  await adm(tvsd, "-D", "-f", "7");
});

function readLine(host: string, port: number, localAddress: string): Promise<{ line: string; cport: number }> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, localAddress }, () => s.write("hello\r\n"));
    let buf = "";
    s.on("data", (c: Buffer) => (buf += c.toString()));
    s.on("error", reject);
    s.on("end", () => resolve({ line: buf.trim(), cport: s.localPort ?? 0 }));
  });
}

test("PROXY protocol v1 per service and v2 per destination carry the client's address", async () => {
  await adm(tvsd, "-A", "-t", `127.0.0.1:${ppPort}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${ppPort}`, "-r", `127.0.0.1:${recorderPort}`, "-m");
  const v1 = await readLine("127.0.0.1", ppPort, "127.0.0.9");
  assert.equal(Buffer.from(v1.line, "hex").toString(), `PROXY TCP4 127.0.0.9 127.0.0.1 ${v1.cport} ${ppPort}`);

  await adm(tvsd, "-A", "-t", `127.0.0.1:${ppDestPort}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${ppDestPort}`, "-r", `127.0.0.1:${recorderPort}`, "-m");
  const v2 = await readLine("127.0.0.1", ppDestPort, "127.0.0.10");
  const h = Buffer.from(v2.line, "hex");
  assert.equal(h.subarray(0, 12).toString("hex"), "0d0a0d0a000d0a515549540a");
  assert.equal(h[12], 0x21);
  assert.equal(h[13], 0x11);
  assert.equal(h.readUInt16BE(14), 12);
  assert.deepEqual([...h.subarray(16, 24)], [127, 0, 0, 10, 127, 0, 0, 1]);
  assert.equal(h.readUInt16BE(24), v2.cport);
  assert.equal(h.readUInt16BE(26), ppDestPort);
  await adm(tvsd, "-D", "-t", `127.0.0.1:${ppPort}`);
  await adm(tvsd, "-D", "-t", `127.0.0.1:${ppDestPort}`);
});

test("--retry-connect gives a refused connection to another destination", async () => {
  const dead = await freePort();
  const port = await freePort();
  const vip = `127.0.0.1:${port}`;
  await adm(tvsd, "-A", "-t", vip, "-s", "rr");
  await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${rs1.port}`, "-m");
  await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${dead}`, "-m");
  const seq = [];
  for (let i = 0; i < 6; i++) seq.push(await whoAnswers(port));
  assert.deepEqual(count(seq), { rs1: 6 });
  await adm(tvsd, "-D", "-t", vip);
});

test("--expire-nodest-conn resets the open connections of a removed destination", async () => {
  const port = await freePort();
  const vip = `127.0.0.1:${port}`;
  await adm(tvsd, "-A", "-t", vip, "-s", "rr");
  await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${rs1.port}`, "-m");
  const held = await openClient(port);
  assert.equal(await held.echo("before"), "before");
  const closed = new Promise<void>((r) => held.sock.once("close", () => r()));
  held.sock.on("error", () => {});
  await adm(tvsd, "-d", "-t", vip, "-r", `127.0.0.1:${rs1.port}`);
  await closed;
  const left = await waitFor("the entry to go", async () => {
    const c = ((await tvsd.snapshot(true)).conns ?? []).filter((x) => x.vport === port);
    return c.length === 0 ? c : undefined;
  });
  assert.equal(left.length, 0);
  await adm(tvsd, "-D", "-t", vip);
});
