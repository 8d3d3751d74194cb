// Loopback listeners for the health tests and the benchmark: TCP servers that answer, stay
// silent, or never complete a handshake; UDP servers; a free (closed) port. Everything binds to
// 127.0.0.1 (or ::1) on a kernel-chosen port and is closed by the caller.

import { spawn } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";

export interface TcpListener {
  port: number;
  host: string;
  /** Sockets accepted so far (still open or not). */
  accepted: number;
  close(): Promise<void>;
}

/** A TCP server on host:0 calling `onSocket` for each connection. */
export async function listenTcp(onSocket: (s: net.Socket) => void, host = "127.0.0.1", port = 0): Promise<TcpListener> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    result.accepted++;
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
    s.on("error", () => {});
    onSocket(s);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => resolve());
  });
  const result: TcpListener = {
    port: (server.address() as net.AddressInfo).port,
    host,
    accepted: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  return result;
}

/** A TCP server that accepts and then never sends a byte. */
export function silentTcp(host = "127.0.0.1"): Promise<TcpListener> {
  return listenTcp(() => {}, host);
}

/** A port on 127.0.0.1 with nothing listening (connections are refused). */
export async function closedPort(): Promise<number> {
  const l = await listenTcp(() => {});
  await l.close();
  return l.port;
}

export interface UdpListener {
  port: number;
  received: Buffer[];
  close(): Promise<void>;
}

/** A UDP server on 127.0.0.1:0; `onMessage` may reply through `reply`. */
export async function listenUdp(
  onMessage: (msg: Buffer, reply: (data: Buffer) => void) => void,
  host = "127.0.0.1",
): Promise<UdpListener> {
  const socket = dgram.createSocket(host.includes(":") ? "udp6" : "udp4");
  const received: Buffer[] = [];
  socket.on("message", (msg, rinfo) => {
    received.push(msg);
    onMessage(msg, (data) => socket.send(data, rinfo.port, rinfo.address));
  });
  await new Promise<void>((resolve) => socket.bind({ address: host, port: 0 }, () => resolve()));
  return {
    port: socket.address().port,
    received,
    close: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

/**
 * A listener whose accept queue is full, so new connection attempts get no SYN-ACK and hang until
 * the client gives up: a real server that never answers at the TCP level. Node always accepts, so
 * this runs a tiny python3 listener (listen backlog 0, never accepts) and fills its queue.
 * Returns undefined when python3 is not available.
 */
export async function unansweredTcp(): Promise<{ port: number; close(): Promise<void> } | undefined> {
  const code =
    "import socket,sys\n" +
    "s=socket.socket();s.bind(('127.0.0.1',0));s.listen(0)\n" +
    "print(s.getsockname()[1],flush=True)\n" +
    "sys.stdin.read()\n";
  const child = spawn("python3", ["-c", code], { stdio: ["pipe", "pipe", "ignore"] });
  const port = await new Promise<number | undefined>((resolve) => {
    child.once("error", () => resolve(undefined));
    child.stdout.once("data", (d: Buffer) => resolve(Number(d.toString().trim())));
    child.once("exit", () => resolve(undefined));
  });
  if (port === undefined) return undefined;
  // Fill the accept queue (backlog 0 admits one; the second fills the SYN side).
  const fillers: net.Socket[] = [];
  for (let i = 0; i < 3; i++) {
    const s = net.connect({ host: "127.0.0.1", port });
    s.on("error", () => {});
    fillers.push(s);
  }
  await new Promise((r) => setTimeout(r, 200));
  return {
    port,
    close: async () => {
      for (const s of fillers) s.destroy();
      child.stdin.end();
      child.kill();
      await new Promise((r) => child.once("exit", r));
    },
  };
}
