// Helpers for the tvsd end-to-end tests: start tvsd as a child process on a temporary control
// socket, drive it with the real tvsadm (its main(), in process, over the socket), and run small
// TCP/UDP real servers and clients on loopback. Every wait is bounded; every process and socket a
// test starts is ended by the test (by PID / handle).

import { type ChildProcess, spawn } from "node:child_process";
import dgram from "node:dgram";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { main as tvsadmMain } from "../src/cli/tvsadm/main.ts";
import { HttpControlClient } from "../src/control/api/client.ts";
import type { Snapshot } from "../src/control/api/protocol.ts";

export const ROOT = resolve(import.meta.dirname, "..");

/** A TCP port free right now on 127.0.0.1. */
export async function freePort(host = "127.0.0.1"): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, host, () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A UDP port free right now on 127.0.0.1. */
export async function freeUdpPort(host = "127.0.0.1"): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  const port = s.address().port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

export async function waitFor<T>(
  what: string,
  fn: () => T | undefined | Promise<T | undefined>,
  ms = 10_000,
): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

export interface Tvsd {
  proc: ChildProcess;
  socket: string;
  dir: string;
  stdout: string[];
  logs: Record<string, unknown>[];
  stderrText: () => string;
  exited: Promise<number | null>;
  client: HttpControlClient;
  tvsadm(...args: string[]): Promise<{ code: number; out: string; err: string }>;
  snapshot(conns?: boolean): Promise<Snapshot>;
  stop(): Promise<number | null>;
}

export interface StartOptions {
  socket?: string;
  dir?: string;
  /** Extra node options before the script (e.g. another --import). */
  nodeArgs?: string[];
  /** Extra environment for the daemon. */
  env?: Record<string, string>;
  /** Run tvsd under this open-files limit (ulimit -n). */
  nofile?: number;
}

/** Start tvsd; resolves once it logged "tvsd ready" (or rejects with its stderr if it exited). */
export async function startTvsd(args: string[] = [], opts: StartOptions = {}): Promise<Tvsd> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "tvsd-test-"));
  const socket = opts.socket ?? join(dir, "control.sock");
  const nodeArgs = ["--import", "tsx", ...(opts.nodeArgs ?? [])];
  const argv = [process.execPath, ...nodeArgs, join(ROOT, "bin/tvsd.ts"), "--socket", socket, ...args];
  // nofile: run tvsd under a lower open-files limit (the shell's ulimit, then exec: same PID).
  const [cmd, ...rest] =
    opts.nofile === undefined ? argv : ["sh", "-c", `ulimit -n ${opts.nofile} && exec "$@"`, "sh", ...argv];
  const proc = spawn(cmd as string, rest, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, TVS_LOG_LEVEL: "debug", ...opts.env },
  });
  const stdout: string[] = [];
  const logs: Record<string, unknown>[] = [];
  let errText = "";
  let partial = "";
  proc.stdout?.on("data", (c: Buffer) => stdout.push(c.toString()));
  proc.stderr?.on("data", (c: Buffer) => {
    errText += c.toString();
    partial += c.toString();
    let nl = partial.indexOf("\n");
    while (nl !== -1) {
      const line = partial.slice(0, nl);
      partial = partial.slice(nl + 1);
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // not a JSON log line (a usage message)
      }
      nl = partial.indexOf("\n");
    }
  });
  const exited = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  let gone = false;
  void exited.then(() => {
    gone = true;
  });
  const client = new HttpControlClient({ socketPath: socket });
  const t: Tvsd = {
    proc,
    socket,
    dir,
    stdout,
    logs,
    stderrText: () => errText,
    exited,
    client,
    async tvsadm(...a: string[]) {
      let out = "";
      let err = "";
      const code = await tvsadmMain(["--socket", socket, ...a], {
        stdout: { write: (s: string) => (out += s) },
        stderr: { write: (s: string) => (err += s) },
      });
      return { code, out, err };
    },
    snapshot: (conns = false) => client.snapshot({ conns }),
    async stop() {
      if (!gone) proc.kill("SIGTERM");
      const code = await exited;
      if (opts.dir === undefined) rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
  await waitFor(
    "tvsd to be ready",
    () => {
      if (gone) throw new Error(`tvsd exited early:\n${errText}`);
      return logs.some((l) => l.msg === "tvsd ready") || undefined;
    },
    20_000,
  );
  return t;
}

/** Run tvsadm and fail loudly when it does not exit 0. */
export async function adm(t: Tvsd, ...args: string[]): Promise<string> {
  const r = await t.tvsadm(...args);
  if (r.code !== 0) throw new Error(`tvsadm ${args.join(" ")} exited ${r.code}: ${r.err}`);
  return r.out;
}

export interface NameServer {
  name: string;
  port: number;
  server: net.Server;
  sockets: Set<net.Socket>;
  close(): Promise<void>;
}

/** A TCP real server: says "<name>\n" on connect, then echoes what it gets; half-closes with the client. */
export async function nameServer(name: string, host = "127.0.0.1", port = 0): Promise<NameServer> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: false }, (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    s.write(`${name}\n`);
    s.pipe(s);
  });
  await new Promise<void>((r) => server.listen(port, host, () => r()));
  return {
    name,
    port: (server.address() as net.AddressInfo).port,
    server,
    sockets,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

/** Connect, read the server's first line (its name), close; returns the name. */
export async function whoAnswers(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<string> {
  const c = await openClient(port, opts);
  const name = c.name;
  await c.close();
  return name;
}

export interface HeldClient {
  name: string;
  sock: net.Socket;
  /** Send text and wait for it to come back (the echo). */
  echo(text: string): Promise<string>;
  close(): Promise<void>;
}

/** Connect and hold the connection open after reading the name line. */
export function openClient(port: number, opts: { host?: string; localAddress?: string } = {}): Promise<HeldClient> {
  return new Promise((resolveP, reject) => {
    const sock = net.connect({
      host: opts.host ?? "127.0.0.1",
      port,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
    });
    let buf = "";
    let waiter: { want: string; res: (s: string) => void } | undefined;
    let named = false;
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`No answer from 127.0.0.1:${port}`));
    }, 10_000);
    sock.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on("close", () => {
      clearTimeout(timer);
      if (!named) reject(new Error(`Connection to port ${port} closed before a name arrived`));
    });
    sock.on("data", (c: Buffer) => {
      buf += c.toString();
      if (!named) {
        const nl = buf.indexOf("\n");
        if (nl === -1) return;
        named = true;
        clearTimeout(timer);
        const name = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        resolveP({
          name,
          sock,
          echo: (text) =>
            new Promise((r) => {
              waiter = { want: text, res: r };
              sock.write(text);
              if (buf.includes(text)) {
                buf = "";
                r(text);
              }
            }),
          close: () =>
            new Promise<void>((r) => {
              if (sock.destroyed) return r();
              sock.once("close", () => r());
              sock.end();
            }),
        });
      }
      if (waiter && buf.includes(waiter.want)) {
        const w = waiter;
        waiter = undefined;
        buf = "";
        w.res(w.want);
      }
    });
  });
}

/** A UDP real server that answers every datagram with "<name>:<datagram>". */
export async function udpNameServer(
  name: string,
  host = "127.0.0.1",
): Promise<{ port: number; close(): Promise<void> }> {
  const s = dgram.createSocket("udp4");
  s.on("message", (m, r) => s.send(`${name}:${m.toString()}`, r.port, r.address));
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return { port: s.address().port, close: () => new Promise<void>((r) => s.close(() => r())) };
}

/** A UDP client socket: send a datagram and wait for one answer. */
export async function udpClient(host = "127.0.0.1"): Promise<{
  ask(port: number, text: string): Promise<string>;
  close(): Promise<void>;
}> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  return {
    ask: (port, text) =>
      new Promise((res, rej) => {
        const t = setTimeout(() => {
          s.off("message", on);
          rej(new Error(`No UDP answer from port ${port}`));
        }, 5000);
        const on = (m: Buffer) => {
          clearTimeout(t);
          s.off("message", on);
          res(m.toString());
        };
        s.on("message", on);
        s.send(text, port, "127.0.0.1");
      }),
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

export function count(names: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const n of names) out[n] = (out[n] ?? 0) + 1;
  return out;
}
