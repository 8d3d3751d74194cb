// The three TCP relays of the socket plane (the addon's pump, the default; libuv handles and
// net.Socket, the fallbacks) on
// real loopback sockets: half-close in each direction with the connection-table states the kernel
// would show, a 4 MB answer to a client that reads slowly (backpressure: every byte arrives, none
// is lost or reordered), payload byte counters, and a refused real server resetting the client.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import net from "node:net";
import test from "node:test";
import type { Conn } from "../../core/conn/conn.ts";
import { ConnTable } from "../../core/conn/conn-table.ts";
import { type Logger, silentLogger } from "../../core/log.ts";
import { createDefaultRegistry } from "../../core/sched/all.ts";
import type { VirtualService } from "../../core/service.ts";
import { ServiceTable } from "../../core/service-table.ts";
import { tcpBinding } from "./libuv-tcp.ts";
import { NativeRelayEngine } from "./native-relay.ts";
import { ProxyPlane } from "./plane.ts";
import { freePort, startTestPlane, until } from "./test-plane.ts";

async function withPlane(
  relay: "native" | "handle" | "stream",
  destPort: number,
  fn: (vip: number, conns: ConnTable, svc: VirtualService, plane: ProxyPlane) => Promise<void>,
  log: Logger = silentLogger,
): Promise<void> {
  const { plane, conns, svc, vip } = await startTestPlane({
    dests: [{ port: destPort }],
    log,
    options: () => ({ relay }),
  });
  try {
    await fn(vip, conns, svc, plane);
  } finally {
    await plane.stop(200);
  }
}

function onlyConn(conns: ConnTable): Conn {
  const all = [...conns.entries()].filter((c) => !c.template);
  assert.equal(all.length, 1, "one connection entry");
  return all[0] as Conn;
}

const relays: ("native" | "handle" | "stream")[] = ["stream"];
if (tcpBinding()) relays.unshift("handle");
if (NativeRelayEngine.get()) relays.unshift("native");

for (const relay of relays) {
  test(`${relay} relay: client FIN first, then a 4 MB answer read slowly arrives whole; CLOSE_WAIT then TIME_WAIT`, async () => {
    const answer = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < answer.length; i += 4) answer.writeUInt32BE(i, i);
    let serverGot = "";
    let serverSawEnd!: () => void;
    const sawEnd = new Promise<void>((r) => {
      serverSawEnd = r;
    });
    const real = net.createServer({ allowHalfOpen: true }, (s) => {
      s.on("data", (d) => {
        serverGot += d.toString();
      });
      s.on("end", () => {
        serverSawEnd();
        // Answer only after the client's FIN: the half-closed connection must still carry it.
        setTimeout(() => s.end(answer), 100);
      });
    });
    await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
    const port = (real.address() as net.AddressInfo).port;
    try {
      await withPlane(relay, port, async (vip, conns, svc) => {
        const c = net.connect({ port: vip, host: "127.0.0.1", allowHalfOpen: true });
        const chunks: Buffer[] = [];
        c.on("data", (d) => {
          chunks.push(d);
          // A slow reader: the relay must stop reading the real server, not buffer 4 MB.
          c.pause();
          setTimeout(() => c.resume(), 2);
        });
        const ended = new Promise<void>((r) => c.on("end", () => r()));
        await new Promise<void>((r) => c.once("connect", () => r()));
        c.end("request body");
        await sawEnd;
        await until("CLOSE_WAIT", () => onlyConn(conns).stateName === "CLOSE_WAIT");
        await ended;
        c.end();
        const got = Buffer.concat(chunks);
        assert.equal(serverGot, "request body");
        assert.equal(got.length, answer.length);
        assert.equal(createHash("sha256").update(got).digest("hex"), createHash("sha256").update(answer).digest("hex"));
        await until("TIME_WAIT", () => onlyConn(conns).stateName === "TIME_WAIT");
        assert.equal(svc.stats.inBytes, "request body".length);
        assert.equal(svc.stats.outBytes, answer.length);
      });
    } finally {
      real.close();
    }
  });

  test(`${relay} relay: real server FIN first (FIN_WAIT), the client may still send`, async () => {
    let got = "";
    let done!: () => void;
    const closed = new Promise<void>((r) => {
      done = r;
    });
    const real = net.createServer({ allowHalfOpen: true }, (s) => {
      s.end("bye");
      s.on("data", (d) => {
        got += d.toString();
      });
      s.on("end", () => done());
    });
    await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
    const port = (real.address() as net.AddressInfo).port;
    try {
      await withPlane(relay, port, async (vip, conns) => {
        const c = net.connect({ port: vip, host: "127.0.0.1", allowHalfOpen: true });
        let text = "";
        c.on("data", (d) => {
          text += d.toString();
        });
        await new Promise<void>((r) => c.on("end", () => r()));
        assert.equal(text, "bye");
        await until("FIN_WAIT", () => onlyConn(conns).stateName === "FIN_WAIT");
        c.end("late words");
        await closed;
        assert.equal(got, "late words");
        await until("TIME_WAIT", () => onlyConn(conns).stateName === "TIME_WAIT");
      });
    } finally {
      real.close();
    }
  });

  test(`${relay} relay: a refused real server resets the client and the entry is CLOSE`, async () => {
    const dead = await freePort();
    await withPlane(relay, dead, async (vip, conns) => {
      const c = net.connect({ port: vip, host: "127.0.0.1" });
      const err = await new Promise<NodeJS.ErrnoException | undefined>((r) => {
        c.on("error", (e) => r(e));
        c.on("close", () => r(undefined));
      });
      assert.equal(err?.code, "ECONNRESET");
      assert.equal(onlyConn(conns).stateName, "CLOSE");
    });
  });
}

test("the plane names the relay it runs: the fastest by default, the one asked for otherwise", async () => {
  const clock = { now: () => performance.now() };
  const services = new ServiceTable(createDefaultRegistry(), { clock, random: () => 7 });
  const conns = new ConnTable({ services });
  const relayNote = (relay?: "native" | "handle" | "stream") =>
    new ProxyPlane({ services, conns, clock, log: silentLogger }, relay ? { relay } : {})
      .notes()
      .find((n) => n.startsWith("TCP relay:"));
  const fastest = relays[0];
  const byDefault = {
    native: "TCP relay: the native addon's pump, no JavaScript call per read",
    handle: "TCP relay: libuv handles, no stream objects per connection (the native addon is not built)",
    stream: "TCP relay: net.Socket streams (this Node does not expose its TCP handles)",
  };
  assert.equal(relayNote(), byDefault[fastest ?? "stream"]);
  const expect = {
    native: "TCP relay: the native addon's pump, no JavaScript call per read (--tcp-relay native)",
    handle: "TCP relay: libuv handles, no stream objects per connection (--tcp-relay handle)",
    stream: "TCP relay: net.Socket streams (--tcp-relay stream)",
  };
  for (const r of relays) assert.equal(relayNote(r), expect[r]);
});

test(
  "native relay: a bug while following one connection resets that connection only; the daemon goes on",
  {
    skip: NativeRelayEngine.get() === undefined ? "the native addon is not built" : false,
  },
  async () => {
    const real = net.createServer((s) => {
      s.on("error", () => {});
      s.on("data", (d) => s.write(d));
    });
    await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
    const port = (real.address() as net.AddressInfo).port;
    const errors: string[] = [];
    const log = { ...silentLogger, error: (msg: string) => errors.push(msg) };
    try {
      await withPlane(
        "native",
        port,
        async (vip, conns, _svc, plane) => {
          const echo = (text: string) =>
            new Promise<string>((resolve) => {
              const c = net.connect({ port: vip, host: "127.0.0.1" });
              let got = "";
              c.on("connect", () => c.write(text));
              c.on("data", (d) => {
                got += d.toString();
                if (got.length >= text.length) c.end();
              });
              c.on("error", () => resolve(`reset after "${got}"`));
              c.on("close", () => resolve(got));
            });
          // The table's byte counting throws once, as a bug would, on the first connection's reads.
          const account = conns.account.bind(conns);
          let armed = true;
          conns.account = (...a: Parameters<ConnTable["account"]>) => {
            if (armed) {
              armed = false;
              throw new Error("injected bug");
            }
            account(...a);
          };
          const first = await echo("hello");
          assert.match(first, /^reset after/, "the connection whose record failed is reset");
          assert.deepEqual(errors, ["Connection dropped"]);
          assert.equal(await echo("still here"), "still here", "the next connection is relayed");
          assert.equal(plane.pressure().fdUsed, 1, "only the listener's descriptor is held");
        },
        log,
      );
    } finally {
      real.close();
    }
  },
);

for (const relay of relays) {
  test(`${relay} relay: the counters move while a connection stays open and quiet`, async () => {
    const real = net.createServer((s) => {
      s.on("error", () => {});
      s.on("data", (d) => s.write(d));
    });
    await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
    const port = (real.address() as net.AddressInfo).port;
    try {
      await withPlane(relay, port, async (vip, _conns, svc) => {
        const c = net.connect({ port: vip, host: "127.0.0.1" });
        c.on("error", () => {});
        await new Promise<void>((r) => c.once("connect", () => r()));
        c.write("twelve bytes");
        await new Promise<void>((r) => c.once("data", () => r()));
        // No end of stream, no other event: the reads are still counted (the pump within 20 ms).
        await until("the bytes counted", () => svc.stats.inBytes === 12 && svc.stats.outBytes === 12, 2000);
        c.destroy();
      });
    } finally {
      real.close();
    }
  });
}
