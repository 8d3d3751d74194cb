// worker-steering.ts: the source-address program, run by the repository's cBPF interpreter on
// IPv4 and IPv6 packets (same answer for every source port, the answer workerForSource gives,
// every worker used), then by the kernel: two SO_REUSEPORT TCP listeners and two UDP sockets of
// one group with the program attached, each client address always reaching the socket predicted.

import assert from "node:assert/strict";
import dgram from "node:dgram";
import net from "node:net";
import { test } from "node:test";
import { loadNative } from "../../platform/native-addon.ts";
import { runCbpf, SKF_NET_OFF } from "../packet/cbpf.ts";
import { reusePortAvailable, reusePortFd, reusePortUdpFd, udpReusePortAvailable } from "./reuse-port.ts";
import { freePort } from "./test-plane.ts";
import { sourceSteeringProgram, steerBySource, workerForSource, workerForSource6 } from "./worker-steering.ts";

/** An Ethernet frame with an IPv4 or IPv6 header and a TCP header from `sport`. */
function frame(version: 4 | 6, src: number[], sport: number): Buffer {
  const ipLen = version === 4 ? 20 : 40;
  const b = Buffer.alloc(14 + ipLen + 20);
  b.writeUInt16BE(version === 4 ? 0x0800 : 0x86dd, 12);
  b[14] = version === 4 ? 0x45 : 0x60;
  if (version === 4) {
    b[14 + 9] = 6;
    Buffer.from(src).copy(b, 14 + 12);
    Buffer.from([10, 0, 0, 1]).copy(b, 14 + 16);
  } else {
    b[14 + 6] = 6;
    Buffer.from(src).copy(b, 14 + 8);
  }
  b.writeUInt16BE(sport, 14 + ipLen);
  return b;
}

test("the program picks a worker from the source address alone, as workerForSource does", () => {
  assert.equal(SKF_NET_OFF, -0x100000);
  for (const workers of [2, 3, 4]) {
    const prog = sourceSteeringProgram(workers);
    const used = new Set<number>();
    for (let host = 1; host < 60; host++) {
      const v4 = [192, 0, 2, host];
      const v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 7, host];
      const want4 = workerForSource(((192 << 24) | (2 << 8) | host) >>> 0, workers);
      const want6 = workerForSource6([0x20010db8, 0, 0, (7 << 8) | host], workers);
      for (const sport of [1024, 40000, 65535]) {
        const p4 = frame(4, v4, sport);
        const p6 = frame(6, v6, sport);
        assert.equal(runCbpf(prog, { buf: p4, off: 0, len: p4.length }), want4);
        assert.equal(runCbpf(prog, { buf: p6, off: 0, len: p6.length }), want6);
      }
      used.add(want4);
    }
    assert.equal(used.size, workers, `all ${workers} workers get clients`);
  }
  assert.throws(() => sourceSteeringProgram(0), RangeError);
});

test("the persistence netmask: one client network, one worker (IPv4 /24, IPv6 /64 and /56, /0); networks still spread", () => {
  for (const workers of [2, 3]) {
    const prog4 = sourceSteeringProgram(workers, 24);
    const prog6 = sourceSteeringProgram(workers, 32, 64);
    const prog56 = sourceSteeringProgram(workers, 32, 56);
    const prog0 = sourceSteeringProgram(workers, 0, 0);
    const nets4 = new Set<number>();
    const nets6 = new Set<number>();
    for (let net = 0; net < 40; net++) {
      const one4 = new Set<number>();
      const one56 = new Set<number>();
      for (const host of [1, 77, 200, 254]) {
        const p4 = frame(4, [198, 51, net, host], 1000 + host);
        one4.add(runCbpf(prog4, { buf: p4, off: 0, len: p4.length }));
        assert.equal(runCbpf(prog0, { buf: p4, off: 0, len: p4.length }), workerForSource(0, workers));
        const src6 = [0x20, 0x01, 0x0d, 0xb8, 0, net, 0, host & 0xf, host, 1, 2, 3, 4, 5, 6, host];
        const p6 = frame(6, src6, 2000 + host);
        const got6 = runCbpf(prog6, { buf: p6, off: 0, len: p6.length });
        // /64 keys by the first 64 bits: the host's bits 60..63 (host & 0xf) are part of it.
        assert.equal(got6, workerForSource6([0x20010db8, (net << 16) | (host & 0xf), 0, 0], workers));
        const got56 = runCbpf(prog56, { buf: p6, off: 0, len: p6.length });
        one56.add(got56);
      }
      assert.equal(one4.size, 1, `198.51.${net}.0/24 meets one worker`);
      assert.equal(one56.size, 1, `2001:db8:0:${net}00::/56 meets one worker`);
      nets4.add([...one4][0]!);
      nets6.add([...one56][0]!);
      assert.equal([...one4][0], workerForSource(((198 << 24) | (51 << 16) | (net << 8)) >>> 0, workers));
    }
    assert.equal(nets4.size, workers, "IPv4 networks spread over every worker");
    assert.equal(nets6.size, workers, "IPv6 networks spread over every worker");
  }
  assert.throws(() => sourceSteeringProgram(2, 33), RangeError);
  assert.throws(() => sourceSteeringProgram(2, 32, 129), RangeError);
});

const skip = reusePortAvailable() && udpReusePortAvailable() ? false : "the native addon is not built";

/** 127.0.0.x as the 32-bit number the program reads. */
const loop = (x: number) => ((127 << 24) | x) >>> 0;

test("the kernel steers a SO_REUSEPORT TCP group by client address with the program", { skip }, async (t) => {
  const port = await freePort();
  const servers: net.Server[] = [];
  t.after(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  });
  const fds: number[] = [];
  for (const name of ["0", "1"]) {
    const fd = reusePortFd("127.0.0.1", port) as number;
    fds.push(fd);
    const s = net.createServer((c) => c.end(name));
    servers.push(s);
    await new Promise<void>((r) => s.listen({ fd }, () => r()));
  }
  assert.equal(steerBySource(fds[0] as number, 2, true), true);
  for (let host = 10; host < 26; host++) {
    const want = String(workerForSource(loop(host), 2));
    for (let i = 0; i < 3; i++) {
      const got = await new Promise<string>((resolve, reject) => {
        const c = net.connect({ port, host: "127.0.0.1", localAddress: `127.0.0.${host}` });
        let d = "";
        c.on("data", (x) => (d += x));
        c.on("end", () => resolve(d));
        c.on("error", reject);
      });
      assert.equal(got, want, `127.0.0.${host}, connection ${i + 1}`);
    }
  }
  // Back to the kernel's hash: one client address reaches both sockets again (bounded loop).
  assert.equal(steerBySource(fds[0] as number, 2, false), true);
  const seen = new Set<string>();
  for (let i = 0; i < 64 && seen.size < 2; i++)
    seen.add(
      await new Promise<string>((resolve, reject) => {
        const c = net.connect({ port, host: "127.0.0.1", localAddress: "127.0.0.10" });
        let d = "";
        c.on("data", (x) => (d += x));
        c.on("end", () => resolve(d));
        c.on("error", reject);
      }),
    );
  assert.equal(seen.size, 2);
});

test("the kernel keeps a client network (-M 255.255.255.0) on one socket of a TCP group", { skip }, async (t) => {
  const port = await freePort();
  const servers: net.Server[] = [];
  t.after(async () => {
    for (const s of servers) await new Promise<void>((r) => s.close(() => r()));
  });
  const fds: number[] = [];
  for (const name of ["0", "1"]) {
    const fd = reusePortFd("127.0.0.1", port) as number;
    fds.push(fd);
    const s = net.createServer((c) => c.end(name));
    servers.push(s);
    await new Promise<void>((r) => s.listen({ fd }, () => r()));
  }
  assert.equal(steerBySource(fds[0] as number, 2, true, 4, 24), true);
  const want = String(workerForSource(loop(0), 2, 24));
  for (let host = 10; host < 26; host++) {
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect({ port, host: "127.0.0.1", localAddress: `127.0.0.${host}` });
      let d = "";
      c.on("data", (x) => (d += x));
      c.on("end", () => resolve(d));
      c.on("error", reject);
    });
    assert.equal(got, want, `127.0.0.${host} is in 127.0.0.0/24`);
  }
});

test(
  "UDP: every socket of a SO_REUSEPORT group receives, and the program steers by client address",
  { skip },
  async (t) => {
    const probe = dgram.createSocket("udp4");
    await new Promise<void>((r) => probe.bind(0, "127.0.0.1", () => r()));
    const port = probe.address().port;
    probe.close();
    const got: [string[], string[]] = [[], []];
    const socks: dgram.Socket[] = [];
    const clients: dgram.Socket[] = [];
    t.after(() => {
      for (const s of [...socks, ...clients]) s.close();
    });
    const fds: number[] = [];
    for (const i of [0, 1]) {
      const fd = reusePortUdpFd("127.0.0.1", port) as number;
      fds.push(fd);
      const s = dgram.createSocket("udp4");
      s.on("message", (m, r) => got[i as 0 | 1].push(`${r.address} ${m}`));
      await new Promise<void>((r) => s.bind({ fd }, () => r()));
      socks.push(s);
    }
    assert.throws(() => loadNative().bindUdp?.("127.0.0.1", port, false), { code: "EADDRINUSE" });
    steerBySource(fds[0] as number, 2, true);
    for (let host = 10; host < 26; host++) {
      for (let i = 0; i < 2; i++) {
        // A new client socket (new source port) each time: only the address decides.
        const c = dgram.createSocket("udp4");
        clients.push(c);
        await new Promise<void>((r) => c.bind(0, `127.0.0.${host}`, () => r()));
        c.send(`n${i}`, port, "127.0.0.1");
      }
    }
    const end = Date.now() + 5000;
    while (got[0].length + got[1].length < 32 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    assert.equal(got[0].length + got[1].length, 32);
    assert.ok(got[0].length > 0 && got[1].length > 0, "both sockets received");
    for (const [i, list] of got.entries())
      for (const line of list) {
        const host = Number(line.split(" ")[0]?.split(".")[3]);
        assert.equal(workerForSource(loop(host), 2), i, line);
      }
  },
);
