// The native TCP pump (native/src/tcp_relay.c behind native-relay.ts) under a randomized, bounded
// workload on loopback: a few hundred clients, each with its own behaviour (sends a random payload
// and half-closes, reads slowly, resets mid-stream, closes before the real server has accepted),
// in front of real servers that each behave differently per connection (echo, answer then close
// first, read slowly, reset mid-stream, never answer), plus a destination whose accept queue is
// full so connects to it hang until the plane's connect timeout moves them elsewhere, and ones
// that refuse. Two planes share the one pump: an IPv4 VIP whose sockets have small buffers (so
// the pump's pending buffers fill and drain) and an IPv6 VIP with the kernel's (so a busy
// direction yields after 16 reads).
//
// The workload is drawn from a seeded generator: the seed is printed, and TVS_STRESS_SEED=<seed>
// replays the same plans (the kernel's timing still varies). What must hold whatever the plans:
// every byte that arrives is the sender's bytes, intact and in order (a prefix of what was sent;
// all of it where neither side reset), every connection ends, the plane ends with no open flow,
// its descriptor budget and the process's descriptors back where they were, and the service's
// byte counters between what the receivers got and what the senders wrote (equal where nothing
// was reset). The same file has the targeted tests for the bugs the stress run found.
//
// Also run against an AddressSanitizer build of the addon: tools/build-native-asan.sh explains how.

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { createHash, type Hash } from "node:crypto";
import { closeSync, openSync, readdirSync, readFileSync, readlinkSync } from "node:fs";
import net from "node:net";
import test from "node:test";
import type { ConnTable } from "../../core/conn/conn-table.ts";
import { type Logger, silentLogger } from "../../core/log.ts";
import { mulberry32 as seeded } from "../../core/seeded-random.ts";
import type { VirtualService } from "../../core/service.ts";
import { loadNative } from "../../platform/native-addon.ts";
import { NativeRelayEngine } from "./native-relay.ts";
import type { ProxyPlane } from "./plane.ts";
import { freePort, startTestPlane, until } from "./test-plane.ts";

const skip = NativeRelayEngine.get() === undefined ? "the native addon is not built" : false;

function randomBytes(rnd: () => number, n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i += 4) {
    const w = (rnd() * 4294967296) >>> 0;
    for (let k = 0; k < 4 && i + k < n; k++) b[i + k] = (w >>> (8 * k)) & 0xff;
  }
  return b;
}

function pick<T extends string>(rnd: () => number, weights: Record<T, number>): T {
  const entries = Object.entries(weights) as [T, number][];
  let x = rnd() * entries.reduce((s, [, w]) => s + w, 0);
  for (const [k, w] of entries) {
    x -= w;
    if (x < 0) return k;
  }
  return (entries.at(-1) as [T, number])[0];
}

/** A payload size: mostly small, sometimes several reads' worth, rarely more than the buffers hold. */
function payloadSize(rnd: () => number): number {
  const r = rnd();
  if (r < 0.03) return 2_000_000 + Math.floor(rnd() * 2_000_000);
  if (r < 0.15) return 0;
  if (r < 0.6) return Math.floor(rnd() * 2000);
  if (r < 0.93) return Math.floor(rnd() * 200_000);
  return Math.floor(rnd() * 1_000_000);
}

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/**
 * The error pending on a socket (SO_ERROR: ECONNRESET or EPIPE once its peer reset it), read without
 * reading or writing: a Node socket that has seen its end of stream no longer polls its descriptor.
 */
function pendingError(sock: net.Socket): number {
  const fd = handleFd(sock);
  if (fd < 0) return 0;
  return loadNative().getsockopt(fd, SOL_SOCKET, SO_ERROR) as number;
}
const SOL_SOCKET = 1;
const SO_ERROR = 4;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;

function handleFd(h: net.Socket | net.Server): number {
  return (h as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
}

/** Lock a socket's buffers small (sockets a listener accepts inherit them). */
function smallBuffers(fd: number, bytes: number): void {
  const addon = loadNative();
  addon.setsockopt(fd, SOL_SOCKET, SO_SNDBUF, bytes);
  addon.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, bytes);
}

/**
 * This process's descriptor listening on 127.0.0.1:port (the plane's VIP socket, which the pump
 * owns): found through /proc/net/tcp's socket inode.
 */
function listenerFd(port: number): number {
  const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  const row = readFileSync("/proc/net/tcp", "utf8")
    .split("\n")
    .map((l) => l.trim().split(/\s+/))
    .find((f) => f[1] === want && f[3] === "0A");
  const inode = row?.[9];
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === `socket:[${inode}]`) return Number(fd);
    } catch {
      // closed meanwhile
    }
  }
  throw new Error(`no descriptor listens on 127.0.0.1:${port}`);
}

/**
 * The process's open sockets, pipes and epoll/event descriptors (/proc/self/fd): everything the
 * pump, the plane and the test's peers open. Files are left out: the TypeScript loader opens and
 * closes its cache files whenever it likes.
 */
function openDescriptors(): number {
  let n = 0;
  for (const fd of readdirSync("/proc/self/fd")) {
    try {
      if (/^(socket|pipe|anon_inode):/.test(readlinkSync(`/proc/self/fd/${fd}`))) n++;
    } catch {
      // the listing's own descriptor, closed by now
    }
  }
  return n;
}

interface Fixture {
  plane: ProxyPlane;
  conns: ConnTable;
  svc: VirtualService;
  vip: number;
  host: string;
}

/** A native-relay plane for one TCP VIP on `host` (127.0.0.1 or ::1) in front of `dests` (port, weight) there. */
async function startPlane(
  dests: [number, number][],
  host = "127.0.0.1",
  connectTimeoutMs = 300,
  log: Logger = silentLogger,
): Promise<Fixture> {
  const { plane, conns, svc, vip } = await startTestPlane({
    dests: dests.map(([port, weight]) => ({ port, weight })),
    vaddr: host,
    scheduler: "wrr",
    log,
    options: () => ({ relay: "native", retryConnect: true, connectTimeoutMs }),
  });
  return { plane, conns, svc, vip, host };
}

type ClientKind = "normal" | "slowReader" | "reset" | "early";
type ServerKind = "echo" | "answerClose" | "slowReader" | "reset" | "silent";

interface Plan {
  id: number;
  client: ClientKind;
  server: ServerKind;
  /** What the client sends: an 8-byte header naming the connection, then the payload. */
  sent: Buffer;
  /** Client "reset": bytes of `sent` written before the reset. Server "reset": bytes received first. */
  resetAt: number;
  /** What the server answers (answerClose, slowReader). */
  answer: Buffer;
  /** Client chunk sizes come from here. */
  rnd: () => number;
  /** Which plane the client connects to: 0 (IPv4, small buffers) or 1 (IPv6, the kernel's buffers). */
  plane: number;
}

const MAGIC = 0x7476_7373;

function makePlan(id: number, rnd: () => number): Plan {
  const client = pick<ClientKind>(rnd, { normal: 40, slowReader: 20, reset: 20, early: 20 });
  const server = pick<ServerKind>(rnd, { echo: 35, answerClose: 20, slowReader: 15, reset: 15, silent: 15 });
  const payload = randomBytes(rnd, payloadSize(rnd));
  const header = Buffer.alloc(8);
  header.writeUInt32BE(MAGIC, 0);
  header.writeUInt32BE(id, 4);
  const sent = Buffer.concat([header, payload]);
  const resetAt = Math.floor(rnd() * (sent.length + 1));
  const answer = randomBytes(rnd, server === "answerClose" || server === "slowReader" ? payloadSize(rnd) : 0);
  const plane = rnd() < 0.5 ? 0 : 1;
  return { id, client, server, sent, resetAt, answer, rnd: seeded((rnd() * 4294967296) >>> 0), plane };
}

/** One socket's record: what it received, what it wrote, how it ended. */
interface Side {
  /** sha256 of every byte received, in order; the bytes themselves are not kept. */
  recvHash: Hash;
  /** The first 8 bytes received (the header naming the connection). */
  head: Buffer;
  recvLen: number;
  writtenLen: number;
  error: string | undefined;
  sawEnd: boolean;
  closed: boolean;
  /** Still open at the deadline. */
  hung?: boolean;
}

function newSide(): Side {
  return {
    recvHash: createHash("sha256"),
    head: Buffer.alloc(0),
    recvLen: 0,
    writtenLen: 0,
    error: undefined,
    sawEnd: false,
    closed: false,
  };
}

function track(sock: net.Socket, side: Side): void {
  sock.on("data", (d: Buffer) => {
    side.recvHash.update(d);
    if (side.head.length < 8) side.head = Buffer.concat([side.head, d.subarray(0, 8 - side.head.length)]);
    side.recvLen += d.length;
  });
  sock.on("end", () => {
    side.sawEnd = true;
  });
  sock.on("error", (err: NodeJS.ErrnoException) => {
    side.error = err.code ?? err.message;
  });
  sock.on("close", () => {
    side.closed = true;
  });
}

function write(sock: net.Socket, side: Side, b: Buffer): boolean {
  if (sock.destroyed || b.length === 0) return true;
  side.writtenLen += b.length;
  return sock.write(b);
}

/** The real servers: each connection's behaviour is its plan's, found from the header it reads. */
class RealServers {
  readonly sides: { side: Side; id: number }[] = [];
  /** Silent servers tell the client when they have read its end of stream (the client then resets). */
  readonly heardEnd = new Map<number, () => void>();
  readonly #servers: net.Server[] = [];
  readonly #socks = new Set<net.Socket>();
  readonly #plans: Map<number, Plan>;

  constructor(plans: Map<number, Plan>) {
    this.#plans = plans;
  }

  /** `count` servers on `host`; `small`: their sockets get small receive buffers (a slow server pushes back soon). */
  async listen(count: number, host: string, small: boolean): Promise<number[]> {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const s = net.createServer({ allowHalfOpen: true }, (sock) => this.#serve(sock));
      await new Promise<void>((r) => s.listen(0, host, () => r()));
      if (small) smallBuffers(handleFd(s), 65536);
      this.#servers.push(s);
      ports.push((s.address() as net.AddressInfo).port);
    }
    return ports;
  }

  async close(): Promise<void> {
    for (const s of this.#socks) s.destroy();
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }

  #serve(sock: net.Socket): void {
    this.#socks.add(sock);
    sock.on("close", () => this.#socks.delete(sock));
    const side = newSide();
    const entry = { side, id: -1 };
    this.sides.push(entry);
    track(sock, side);
    let plan: Plan | undefined;
    let seen = 0;
    sock.on("data", (d: Buffer) => {
      if (plan === undefined && side.recvLen >= 8) {
        const head = side.head;
        const id = head.readUInt32BE(4);
        plan = head.readUInt32BE(0) === MAGIC ? this.#plans.get(id) : undefined;
        if (plan === undefined) {
          sock.resetAndDestroy();
          return;
        }
        entry.id = id;
        this.#start(sock, side, plan);
        seen = 8;
        d = d.subarray(d.length - (side.recvLen - 8));
      }
      if (plan === undefined) return;
      seen += d.length;
      if (plan.server === "echo") write(sock, side, d);
      else if (plan.server === "reset" && seen >= plan.resetAt) sock.resetAndDestroy();
      else if (plan.server === "slowReader") {
        sock.pause();
        // Now and then a long pause, so the pump's writes to this server stop being taken.
        setTimeout(() => sock.resume(), plan.rnd() < 0.05 ? 100 : 1 + Math.floor(plan.rnd() * 5));
      }
    });
    sock.on("end", () => {
      if (plan === undefined) {
        sock.end();
        return;
      }
      if (plan.server === "echo") sock.end();
      else if (plan.server === "slowReader") {
        write(sock, side, plan.answer);
        sock.end();
      } else if (plan.server === "reset") sock.resetAndDestroy();
      else if (plan.server === "silent") {
        this.heardEnd.get(plan.id)?.();
        // The client resets now; a socket past its end of stream only learns that from SO_ERROR.
        // A client that left early with a FIN only waits for this server forever (as TCP allows):
        // that one connection the server ends after a while.
        const started = Date.now();
        const early = plan.client === "early";
        const poll = setInterval(() => {
          if (sock.destroyed) clearInterval(poll);
          else if (early && Date.now() - started > 300) {
            clearInterval(poll);
            sock.end();
          } else if (pendingError(sock) !== 0) {
            clearInterval(poll);
            side.error = "ECONNRESET";
            sock.destroy();
          }
        }, 20);
      }
      // answerClose ended already: Node closes the socket now both ends are done.
    });
  }

  #start(sock: net.Socket, side: Side, plan: Plan): void {
    if (plan.server === "answerClose") {
      write(sock, side, plan.answer);
      sock.end();
    } else if (plan.server === "reset" && plan.resetAt <= 8) sock.resetAndDestroy();
  }
}

/** What a connection did, for a failure message. */
function describeConn(plan: Plan, client: Side, servers: RealServers): string {
  const srv = servers.sides.filter((s) => s.id === plan.id).map((s) => s.side);
  const side = (s: Side) =>
    `got ${s.recvLen} wrote ${s.writtenLen}${s.sawEnd ? " end" : ""}${s.error ? ` ${s.error}` : ""}${s.closed ? " closed" : ""}`;
  return `${plan.id} ${plan.client}/${plan.server} (sends ${plan.sent.length}, reset at ${plan.resetAt}, answer ${plan.answer.length}): client ${side(client)}; server ${srv.map(side).join(" | ") || "none"}`;
}

/**
 * One client following its plan; resolves when its socket has closed, or at the deadline (then
 * the client is marked hung and reset, so one stuck connection cannot stall the run).
 */
async function runClient(fx: Fixture, plan: Plan, side: Side, servers: RealServers, deadline: number): Promise<void> {
  const sock = net.connect({ port: fx.vip, host: fx.host, allowHalfOpen: true });
  track(sock, side);
  let timer: NodeJS.Timeout | undefined;
  const closed = new Promise<void>((r) => {
    sock.on("close", () => {
      clearTimeout(timer);
      r();
    });
    timer = setTimeout(
      () => {
        side.hung = true;
        sock.resetAndDestroy();
        r();
      },
      Math.max(0, deadline - Date.now()),
    );
  });
  const rnd = plan.rnd;
  if (plan.client === "early") {
    // Gone before the real server could have accepted: at once, or right after the handshake.
    const how = rnd();
    if (how < 0.3) sock.destroy();
    else
      sock.once("connect", () => {
        if (how < 0.6) sock.resetAndDestroy();
        else {
          write(sock, side, plan.sent.subarray(0, 8));
          sock.destroy();
        }
      });
    return closed;
  }
  if (plan.client === "slowReader") {
    // Nothing is read for a while at first, then slowly: the pump's writes to it must wait.
    sock.pause();
    setTimeout(() => sock.resume(), 20 + Math.floor(rnd() * 130));
    sock.on("data", () => {
      sock.pause();
      setTimeout(() => sock.resume(), Math.floor(rnd() * 8));
    });
  }
  const heardEnd = new Promise<void>((r) => servers.heardEnd.set(plan.id, r));
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once("connect", () => resolve());
      sock.once("close", () => reject(new Error("closed before connecting")));
    });
  } catch {
    return closed;
  }
  const limit = plan.client === "reset" ? plan.resetAt : plan.sent.length;
  let off = 0;
  while (off < limit && !sock.destroyed) {
    const n = Math.min(limit - off, 1 + Math.floor(rnd() * 65536));
    const ok = write(sock, side, plan.sent.subarray(off, off + n));
    off += n;
    if (!ok)
      await new Promise<void>((r) => {
        sock.once("drain", () => r());
        sock.once("close", () => r());
      });
  }
  if (plan.client === "reset") {
    // Half of them read nothing and reset a little later: the pump may be holding bytes for them.
    if (rnd() < 0.5) {
      sock.pause();
      await new Promise((r) => setTimeout(r, 20 + Math.floor(rnd() * 100)));
    }
    if (!sock.destroyed) sock.resetAndDestroy();
    return closed;
  }
  if (!sock.destroyed) sock.end();
  if (plan.server === "silent") {
    // This server never answers nor closes: the client gives up with a reset once it is heard.
    await Promise.race([heardEnd, closed]);
    if (!sock.destroyed) sock.resetAndDestroy();
  }
  return closed;
}

/** What a real server following `plan` writes, in order (it may stop early). */
function serverStream(plan: Plan): Buffer {
  if (plan.server === "echo") return plan.sent.subarray(8);
  if (plan.server === "answerClose" || plan.server === "slowReader") return plan.answer;
  return Buffer.alloc(0);
}

/** Whether what `side` received is the first bytes of `of`, intact and in order. */
function receivedPrefixOf(side: Side, of: Buffer): boolean {
  return side.recvLen <= of.length && side.recvHash.copy().digest("hex") === sha(of.subarray(0, side.recvLen));
}

test(
  "native relay under a randomized workload: bytes intact and in order, every connection ends, nothing leaks",
  {
    skip,
    timeout: 60_000,
  },
  async (t) => {
    const seed = Number(process.env.TVS_STRESS_SEED || Math.floor(Math.random() * 2 ** 32));
    const total = Number(process.env.TVS_STRESS_CONNECTIONS || 300);
    const concurrency = 48;
    t.diagnostic(`seed ${seed} (TVS_STRESS_SEED=${seed} replays these plans), ${total} connections`);
    process.stderr.write(`native relay stress: seed ${seed}\n`);
    const rnd = seeded(seed);
    const plans = new Map<number, Plan>();
    for (let id = 1; id <= total; id++) plans.set(id, makePlan(id, rnd));
    // A clean warm-up connection (id 0) so lazily opened descriptors exist before the baseline.
    const warm = makePlan(0, seeded(1));
    Object.assign(warm, { client: "normal", server: "echo", plane: 0 });
    plans.set(0, warm);

    const servers = new RealServers(plans);
    const ports = await servers.listen(3, "127.0.0.1", true);
    const ports6 = await servers.listen(3, "::1", false);
    // A destination whose accept queue is full: its SYNs are dropped, so connects to it hang until
    // the connect timeout reschedules the client to another server (relayReconnect).
    const addon = loadNative();
    const holePort = await freePort();
    const holeFd = addon.listenTcp("127.0.0.1", holePort, 0, false);
    const filler = net.connect({ port: holePort, host: "127.0.0.1" });
    filler.on("error", () => {});
    await new Promise<void>((r) => filler.once("connect", () => r()));
    // Destinations where nothing listens: the connect is refused and the client moves on.
    const refused = await freePort();
    const refused6 = await freePort("::1");
    // Two planes on the one pump. The IPv4 one's client sockets inherit small locked buffers from
    // the VIP's listener, so its writes to a slow client meet a full socket (its pending buffers
    // are used) even on loopback; the IPv6 one keeps the kernel's large buffers, where a busy
    // direction reads 16 times and yields to the others.
    const fx = await startPlane([...ports.map((p): [number, number] => [p, 3]), [holePort, 1], [refused, 1]]);
    smallBuffers(listenerFd(fx.vip), 32768);
    const fx6 = await startPlane([...ports6.map((p): [number, number] => [p, 3]), [refused6, 1]], "::1");
    const planes = [fx, fx6];
    t.after(async () => {
      await fx.plane.stop(200);
      await fx6.plane.stop(200);
      await servers.close();
      filler.destroy();
      addon.close(holeFd);
    });

    const clients = new Map<number, Side>();
    const warmSide = newSide();
    clients.set(0, warmSide);
    await runClient(fx, warm, warmSide, servers, Date.now() + 5000);
    await until("the warm-up connection to end", () => fx.plane.openFlows() === 0, 5000);
    assert.ok(receivedPrefixOf(warmSide, warm.sent.subarray(8)), "warm-up echo");
    const fdsBefore = openDescriptors();
    const planeFdsBefore = planes.map((p) => p.plane.pressure().fdUsed);
    const statsBefore = planes.map((p) => p.svc.stats.snapshot());
    const openFlows = () => planes.reduce((n, p) => n + p.plane.openFlows(), 0);
    const serverSidesBefore = servers.sides.length;

    const deadline = Date.now() + Number(process.env.TVS_STRESS_SECONDS || 20) * 1000;
    let next = 1;
    const worker = async () => {
      while (next <= total && Date.now() < deadline) {
        const plan = plans.get(next++) as Plan;
        const side = newSide();
        clients.set(plan.id, side);
        await runClient(planes[plan.plane] as Fixture, plan, side, servers, deadline);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    assert.equal(next, total + 1, `all ${total} clients ran before the deadline (seed ${seed})`);
    const hung = [...clients].filter(([, s]) => s.hung).map(([id]) => id);
    assert.deepEqual(
      hung.map((id) => describeConn(plans.get(id) as Plan, clients.get(id) as Side, servers)),
      [],
      `seed ${seed}: clients whose connection never ended`,
    );

    const openServers = () => servers.sides.filter((s) => !s.side.closed);
    await until(
      "every connection to end",
      () => openFlows() === 0 && openServers().length === 0,
      Math.max(1000, deadline - Date.now()),
      () =>
        `seed ${seed}: ${openFlows()} open flows; servers still open for ${openServers()
          .map((s) => `${s.id} (${plans.get(s.id)?.client}/${plans.get(s.id)?.server}, got ${s.side.recvLen} bytes)`)
          .join(", ")}`,
    );
    await until(
      "the process's descriptors to be back",
      () => openDescriptors() === fdsBefore,
      2000,
      () => String(openDescriptors() - fdsBefore),
    );
    assert.deepEqual(
      planes.map((p) => p.plane.pressure().fdUsed),
      planeFdsBefore,
      "the planes' descriptor budgets are back to their listeners",
    );

    // Every connection entry ended as the kernel's would: TIME_WAIT (both FINs) or CLOSE (a reset).
    for (const p of planes)
      for (const c of p.conns.entries())
        if (!c.template) assert.ok(["TIME_WAIT", "CLOSE"].includes(c.stateName), `entry ${c.cport}: ${c.stateName}`);

    const byId = new Map<number, Side[]>();
    for (const s of servers.sides.slice(serverSidesBefore)) {
      if (s.id < 0) continue;
      byId.set(s.id, [...(byId.get(s.id) ?? []), s.side]);
    }
    let inLow = 0;
    let inHigh = 0;
    let outLow = 0;
    let outHigh = 0;
    let clean = 0;
    for (const s of servers.sides.slice(serverSidesBefore)) {
      inLow += s.side.recvLen;
      outHigh += s.side.writtenLen;
      if (s.id < 0) assert.ok(s.side.recvLen < 8, "a server connection that never named itself got less than a header");
    }
    for (let id = 1; id <= total; id++) {
      const plan = plans.get(id) as Plan;
      const client = clients.get(id) as Side;
      const what = `seed ${seed}, connection ${id} (client ${plan.client}, server ${plan.server})`;
      inHigh += client.writtenLen;
      outLow += client.recvLen;
      const server = byId.get(id) ?? [];
      assert.ok(server.length <= 1, `${what}: reached one real server at most`);
      const srv = server[0];
      if (srv === undefined) {
        assert.equal(client.recvLen, 0, `${what}: nothing arrives from no server`);
        continue;
      }
      const stream = serverStream(plan);
      assert.ok(srv.writtenLen <= stream.length, `${what}: the server wrote what its plan says`);
      assert.ok(
        receivedPrefixOf(srv, plan.sent),
        `${what}: the server got ${srv.recvLen} bytes that are not the first of the client's ${plan.sent.length}`,
      );
      assert.ok(client.recvLen <= srv.writtenLen, `${what}: the client got no more than the server wrote`);
      assert.ok(
        receivedPrefixOf(client, stream),
        `${what}: the client got ${client.recvLen} bytes that are not the first of the server's ${srv.writtenLen}`,
      );
      const cleanPair =
        (plan.client === "normal" || plan.client === "slowReader") &&
        (plan.server === "echo" || plan.server === "answerClose" || plan.server === "slowReader");
      if (cleanPair) {
        clean++;
        assert.equal(srv.recvLen, plan.sent.length, `${what}: the server got everything`);
        assert.equal(client.recvLen, stream.length, `${what}: the client got everything`);
        assert.equal(client.error, undefined, `${what}: no error at the client`);
        assert.ok(client.sawEnd && srv.sawEnd, `${what}: both saw the other's end of stream`);
      }
      if (plan.server === "silent" && (plan.client === "normal" || plan.client === "slowReader"))
        assert.equal(srv.recvLen, plan.sent.length, `${what}: the silent server got everything`);
    }
    // The counters charge what the pump read: at least what the receivers got, at most what the
    // senders wrote (the same where nothing was reset).
    const st = planes.map((p) => p.svc.stats.snapshot());
    const inBytes = st.reduce((n, x, i) => n + x.inBytes - (statsBefore[i]?.inBytes ?? 0), 0);
    const outBytes = st.reduce((n, x, i) => n + x.outBytes - (statsBefore[i]?.outBytes ?? 0), 0);
    assert.ok(inLow <= inBytes && inBytes <= inHigh, `in bytes ${inBytes} within [${inLow}, ${inHigh}]`);
    assert.ok(outLow <= outBytes && outBytes <= outHigh, `out bytes ${outBytes} within [${outLow}, ${outHigh}]`);
    // Some clients were first sent to the destination that never accepts, and moved on.
    const hole = fx.svc.findDest("127.0.0.1", holePort)?.stats.conns ?? 0;
    assert.ok(hole > 0, "the destination that never accepts was tried");
    const refusedTried =
      (fx.svc.findDest("127.0.0.1", refused)?.stats.conns ?? 0) + (fx6.svc.findDest("::1", refused6)?.stats.conns ?? 0);
    assert.ok(refusedTried > 0, "the destinations that refuse were tried");
    t.diagnostic(
      `${total} connections (${clean} clean pairs; first sent to the destination that never accepts ${hole}, to one that refuses ${refusedTried}), in ${inBytes} bytes, out ${outBytes} bytes`,
    );
  },
);

// Found by the run above: a socket whose own direction had ended (its FIN relayed) was never read
// again, so its later reset went unnoticed while the other direction was idle; both sockets then
// stayed open until the entry timed out. The reset must reach the other end at once, either way.
for (const who of ["client", "real server"] as const) {
  test(`native relay: a ${who}'s reset after its own end of stream resets the other end`, { skip }, async (t) => {
    let serverSock: net.Socket | undefined;
    let serverEnded = false;
    const real = net.createServer({ allowHalfOpen: true }, (s) => {
      serverSock = s;
      s.on("data", () => {});
      s.on("end", () => {
        serverEnded = true;
      });
      s.on("error", () => {});
      if (who === "real server") s.end("bye");
    });
    await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
    const fx = await startPlane([[(real.address() as net.AddressInfo).port, 1]]);
    const client = net.connect({ port: fx.vip, host: "127.0.0.1", allowHalfOpen: true });
    const clientSide = newSide();
    track(client, clientSide);
    t.after(async () => {
      client.destroy();
      serverSock?.destroy();
      await fx.plane.stop(200);
      await new Promise<void>((r) => real.close(() => r()));
    });
    await new Promise<void>((r) => client.once("connect", () => r()));
    await until("the real server's connection", () => serverSock !== undefined, 2000);
    if (who === "client") {
      client.end("hello");
      await until("the client's end of stream at the real server", () => serverEnded, 2000);
      client.resetAndDestroy();
      const s = serverSock as net.Socket;
      await until(
        "the real server to be reset",
        () => pendingError(s) !== 0,
        2000,
        () => `flows ${fx.plane.openFlows()}`,
      );
    } else {
      await until("the real server's end of stream at the client", () => clientSide.sawEnd, 2000);
      (serverSock as net.Socket).resetAndDestroy();
      await until(
        "the client to be reset",
        () => pendingError(client) !== 0,
        2000,
        () => `flows ${fx.plane.openFlows()}`,
      );
    }
    await until("the relay to close", () => fx.plane.openFlows() === 0, 2000);
    const entry = [...fx.conns.entries()].find((c) => !c.template);
    assert.equal(entry?.stateName, "CLOSE", "the entry shows the reset");
  });
}

// The pump's fairness path needs a source that refills while the pump runs: one direction that
// stays full through 16 reads yields to the others and, still full after eight rounds, is resumed
// from libuv's idle handle. Peers in this process cannot refill while the pump holds the event
// loop, so a child process is both the client (sending 64 MiB as fast as it can) and the real
// server (hashing what arrives); every byte must arrive intact and in order.
test(
  "native relay: a direction that keeps its source full yields and resumes; 64 MiB arrive intact",
  {
    skip,
    timeout: 30_000,
  },
  async (t) => {
    const script = `
    const net = require("node:net");
    const { createHash } = require("node:crypto");
    const total = 64 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < chunk.length; i += 4) chunk.writeUInt32LE((i * 2654435761) >>> 0, i);
    const sent = createHash("sha256");
    for (let n = 0; n < total; n += chunk.length) sent.update(chunk);
    const server = net.createServer((s) => {
      const got = createHash("sha256");
      let len = 0;
      s.on("data", (d) => { got.update(d); len += d.length; });
      s.on("end", () => {
        process.stdout.write(JSON.stringify({ len, got: got.digest("hex"), sent: sent.digest("hex") }) + "\\n");
        s.end();
        server.close();
      });
    });
    server.listen(0, "::1", () => process.stdout.write(server.address().port + "\\n"));
    process.stdin.once("data", (vip) => {
      const c = net.connect({ port: Number(vip), host: "::1" });
      let n = 0;
      const more = () => {
        while (n < total) { n += chunk.length; if (!c.write(chunk)) return c.once("drain", more); }
        c.end();
      };
      c.on("connect", more);
      c.on("data", () => {});
    });
  `;
    const child = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] });
    t.after(() => {
      if (child.exitCode === null) child.kill();
    });
    const lines: string[] = [];
    let buffered = "";
    const lineWaiters: (() => void)[] = [];
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      lines.push(...parts);
      for (const w of lineWaiters.splice(0)) w();
    });
    const line = async (n: number) => {
      while (lines.length < n) await new Promise<void>((r) => lineWaiters.push(r));
      return lines[n - 1] as string;
    };
    const port = Number(await line(1));
    const fx = await startPlane([[port, 1]], "::1");
    t.after(() => fx.plane.stop(200));
    child.stdin.write(`${fx.vip}\n`);
    const result = JSON.parse(await line(2)) as { len: number; got: string; sent: string };
    assert.equal(result.len, 64 * 1024 * 1024, "every byte arrived");
    assert.equal(result.got, result.sent, "intact and in order");
    await until("the relay to close", () => fx.plane.openFlows() === 0, 5000);
    assert.equal(fx.svc.stats.snapshot().inBytes, 64 * 1024 * 1024, "the counters saw every byte");
  },
);

// A client that resets while the pump holds bytes it could not write to it yet: the pending
// buffer's write fails, and the real server is reset too (not left sending into nothing).
test("native relay: a client that resets while bytes wait for it resets the real server", { skip }, async (t) => {
  let serverSock: net.Socket | undefined;
  let serverError = "";
  let serverClosed = false;
  const real = net.createServer((s) => {
    serverSock = s;
    s.on("error", (e: NodeJS.ErrnoException) => {
      serverError = e.code ?? e.message;
    });
    s.on("close", () => {
      serverClosed = true;
    });
    s.write(Buffer.alloc(8 * 1024 * 1024, 7));
  });
  await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
  const fx = await startPlane([[(real.address() as net.AddressInfo).port, 1]]);
  smallBuffers(listenerFd(fx.vip), 32768);
  const client = net.connect({ port: fx.vip, host: "127.0.0.1" });
  client.on("error", () => {});
  client.pause();
  t.after(async () => {
    client.destroy();
    serverSock?.destroy();
    await fx.plane.stop(200);
    await new Promise<void>((r) => real.close(() => r()));
  });
  // Full all the way: the client reads nothing, so the pump keeps the rest and stops reading the
  // server, whose own buffers then fill.
  await until("the real server's writes to back up", () => (serverSock?.writableLength ?? 0) > 0, 5000);
  await new Promise((r) => setTimeout(r, 50));
  client.resetAndDestroy();
  await until(
    "the real server to be reset",
    () => serverClosed,
    3000,
    () => `flows ${fx.plane.openFlows()}`,
  );
  assert.match(serverError, /ECONNRESET|EPIPE/);
  await until("the relay to close", () => fx.plane.openFlows() === 0, 2000);
  const entry = [...fx.conns.entries()].find((c) => !c.template);
  assert.equal(entry?.stateName, "CLOSE", "the entry shows the reset");
});

/** The first two descriptor numbers not in use. */
function freeDescriptorNumbers(): [number, number] {
  // (The listing's own descriptor is in the list, closed by now: readlink no longer finds it.)
  const used = new Set(
    readdirSync("/proc/self/fd").filter((n) => {
      try {
        readlinkSync(`/proc/self/fd/${n}`);
        return true;
      } catch {
        return false;
      }
    }),
  );
  const free: number[] = [];
  for (let n = 0; free.length < 2; n++) if (!used.has(String(n))) free.push(n);
  return free as [number, number];
}

// accept4 failing for lack of descriptors (EMFILE): the pump reports it (the plane logs the limit
// alarm), pauses that listener for 100 ms instead of spinning on it, and accepts the waiting
// client once descriptors are free again. The process's own limit is lowered with prlimit(1).
test(
  "native relay: accept out of descriptors pauses the listener, logs, and serves the client afterwards",
  {
    skip: skip || (spawnSync("prlimit", ["--version"]).status === 0 ? false : "prlimit(1) is not installed"),
  },
  async (t) => {
    const logged: string[] = [];
    const log: Logger = {
      debug: () => {},
      info: () => {},
      warn: (m) => logged.push(m),
      error: (m) => logged.push(m),
      child: () => log,
    };
    const real = net.createServer((s) => s.pipe(s));
    await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
    const fx = await startPlane([[(real.address() as net.AddressInfo).port, 1]], "127.0.0.1", 300, log);
    t.after(async () => {
      await fx.plane.stop(200);
      await new Promise<void>((r) => real.close(() => r()));
    });
    const limits = /(\d+|unlimited)\s+(\d+|unlimited)\s+files/.exec(
      spawnSync("prlimit", ["--pid", String(process.pid), "--nofile"], { encoding: "utf8" }).stdout,
    );
    assert.ok(limits, "prlimit shows the descriptor limit");
    const [, soft, hard] = limits;
    const setLimit = (value: string) => {
      const r = spawnSync("prlimit", ["--pid", String(process.pid), `--nofile=${value}:${hard}`], {
        stdio: "ignore",
      });
      assert.equal(r.status, 0, `prlimit --nofile=${value}: ${r.error?.message ?? `exit ${r.status}`}`);
    };
    // Spare descriptors, closed again to make room for restoring the limit.
    const spares = Array.from({ length: 16 }, () => openSync("/dev/null", "r"));
    const [, second] = freeDescriptorNumbers();
    setLimit(String(second)); // room for exactly one more descriptor: the client's socket
    let restored = false;
    const restore = () => {
      if (restored) return;
      restored = true;
      for (const fd of spares) closeSync(fd);
      setLimit(soft as string);
    };
    t.after(restore);
    const client = net.connect({ port: fx.vip, host: "127.0.0.1" });
    const echoed: Buffer[] = [];
    client.on("data", (d: Buffer) => echoed.push(d));
    client.on("error", () => {});
    await new Promise<void>((r) => client.once("connect", () => r()));
    client.write("hello");
    await until("the limit alarm", () => logged.some((m) => m.includes("file descriptor limit")), 3000);
    restore();
    await until("the echo once the listener resumed", () => Buffer.concat(echoed).toString() === "hello", 3000);
    client.end();
    await until("the relay to close", () => fx.plane.openFlows() === 0, 3000);
  },
);

// Stopping the plane in the middle of traffic: after the drain time every connection the pump
// still holds is reset (pending buffers and half-closed ones included), and every descriptor the
// plane opened is closed: the process is back to its count from before the plane started.
test(
  "native relay: a plane stopped mid-traffic resets what is left and closes every descriptor",
  {
    skip,
  },
  async (t) => {
    const serverSocks = new Set<net.Socket>();
    const real = net.createServer({ allowHalfOpen: true }, (s) => {
      serverSocks.add(s);
      s.on("close", () => serverSocks.delete(s));
      s.on("error", () => {});
      s.pipe(s);
    });
    await new Promise<void>((r) => real.listen(0, "127.0.0.1", () => r()));
    t.after(async () => {
      for (const s of serverSocks) s.destroy();
      await new Promise<void>((r) => real.close(() => r()));
    });
    const before = openDescriptors();
    const fx = await startPlane([[(real.address() as net.AddressInfo).port, 1]]);
    smallBuffers(listenerFd(fx.vip), 32768);
    const rnd = seeded(42);
    const clients: net.Socket[] = [];
    for (let i = 0; i < 40; i++) {
      const c = net.connect({ port: fx.vip, host: "127.0.0.1", allowHalfOpen: true });
      c.on("error", () => {});
      clients.push(c);
      c.write(randomBytes(rnd, Math.floor(rnd() * 2_000_000)));
      if (i % 3 === 0) c.end(); // some half-closed already
      if (i % 2 === 0) c.pause(); // some read nothing: the pump holds bytes for them
    }
    await until("every client to be relayed", () => fx.plane.openFlows() === 40, 5000);
    await fx.plane.stop(100);
    assert.equal(fx.plane.openFlows(), 0, "nothing left open after the drain");
    // (A paused socket learns of the reset from SO_ERROR only.)
    await until(
      "every client to be reset",
      () => clients.every((c) => c.closed || pendingError(c) !== 0),
      3000,
      () => String(clients.filter((c) => !c.closed && pendingError(c) === 0).length),
    );
    for (const c of clients) c.destroy();
    for (const s of serverSocks) s.destroy();
    await until(
      "the process's descriptors to be back",
      () => openDescriptors() === before,
      3000,
      () => String(openDescriptors() - before),
    );
  },
);
