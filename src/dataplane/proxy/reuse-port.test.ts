// reuse-port.ts: two servers of one process on the same port (what two workers do), connections
// reach both, and a port held by an ordinary listener is refused with EADDRINUSE.
import assert from "node:assert/strict";
import net from "node:net";
import { test } from "node:test";
import { listenReusePort, reusePortAvailable } from "./reuse-port.ts";

const skip = reusePortAvailable() ? false : "the native addon is not built";

function close(s: net.Server): Promise<void> {
  return new Promise((r) => (s.listening ? s.close(() => r()) : r()));
}

test("two SO_REUSEPORT listeners share one port and both accept", { skip }, async (t) => {
  const names = ["a", "b"];
  const servers = names.map((n) => net.createServer((c) => c.end(n)));
  t.after(async () => {
    for (const s of servers) await close(s);
  });
  const [a, b] = servers as [net.Server, net.Server];
  const probe = net.createServer();
  await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
  const port = (probe.address() as net.AddressInfo).port;
  await close(probe);
  assert.equal(await listenReusePort(a, "127.0.0.1", port), true);
  assert.equal(await listenReusePort(b, "127.0.0.1", port), true);
  const seen = new Set<string>();
  // The kernel hashes each client port onto a socket: 64 connections reach both (bounded loop).
  for (let i = 0; i < 64 && seen.size < 2; i++) {
    const got = await new Promise<string>((resolve, reject) => {
      const c = net.connect(port, "127.0.0.1");
      let d = "";
      c.on("data", (x) => (d += x));
      c.on("end", () => resolve(d));
      c.on("error", reject);
    });
    seen.add(got);
  }
  assert.deepEqual([...seen].sort(), names);
});

test("a port held by an ordinary listener is refused with EADDRINUSE", { skip }, async (t) => {
  const plain = net.createServer();
  const s = net.createServer();
  t.after(async () => {
    await close(plain);
    await close(s);
  });
  await new Promise<void>((r) => plain.listen(0, "127.0.0.1", () => r()));
  const port = (plain.address() as net.AddressInfo).port;
  await assert.rejects(listenReusePort(s, "127.0.0.1", port), { code: "EADDRINUSE" });
  assert.equal(s.listening, false);
});
