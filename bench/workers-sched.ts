// Scheduling across tvsd workers (--workers N): what a client population sees when N processes
// each schedule on their own (README, "Cores"; docs/compat.md). For 1 and 2 workers it prints:
//   wrr 2:1   — 99 sequential connections: how many reached each real server (one director: 66/33)
//   lc        — 40 connections held open at once, weights 1:1: how many each real server holds
//   persist   — rr -p 60, 20 connections from one client address, each after one from a new
//               client address: how many real servers the first client reached (one director: 1;
//               with N workers the persistent service is steered by client address, so also 1)
//
//   node --import tsx bench/workers-sched.ts
//
// Everything is on 127.0.0.1; tvsd and the two real servers (in this process) are ended by PID /
// closed; the loops are bounded in count and time.

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "tvs-wsched-"));

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", () => r()));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A real server that names itself and holds the connection until the client closes it. */
async function realServer(name: string): Promise<{ port: number; server: net.Server; sockets: Set<net.Socket> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((c) => {
    sockets.add(c);
    c.on("error", () => {});
    c.on("close", () => sockets.delete(c));
    c.write(name);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return { port: (server.address() as net.AddressInfo).port, server, sockets };
}

/** Connect to the VIP and read the real server's name; keep the socket open when `hold`. */
function ask(port: number, hold: net.Socket[] | undefined, from?: string): Promise<string> {
  return new Promise((res, rej) => {
    const c = net.connect({ port, host: "127.0.0.1", ...(from ? { localAddress: from } : {}) });
    const t = setTimeout(() => {
      c.destroy();
      rej(new Error("no answer within 5 s"));
    }, 5000);
    c.once("data", (d) => {
      clearTimeout(t);
      if (hold) hold.push(c);
      else c.end();
      res(d.toString());
    });
    c.once("error", (e) => {
      clearTimeout(t);
      rej(e);
    });
  });
}

async function waitPort(port: number): Promise<void> {
  const end = Date.now() + 30_000;
  while (Date.now() < end) {
    const ok = await new Promise<boolean>((r) => {
      const s = net.connect(port, "127.0.0.1");
      s.once("connect", () => {
        s.destroy();
        r(true);
      });
      s.once("error", () => r(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`tvsd does not listen on ${port}`);
}

function count(names: string[]): string {
  const m = new Map<string, number>();
  for (const n of names) m.set(n, (m.get(n) ?? 0) + 1);
  return [...m]
    .sort()
    .map(([k, v]) => `${k}=${v}`)
    .join(" ");
}

async function withTvsd<T>(workers: number, rules: string, fn: (vip: number) => Promise<T>): Promise<T> {
  const vip = await freePort();
  const file = join(dir, "rules");
  writeFileSync(file, rules.replaceAll("VIP", `127.0.0.1:${vip}`));
  const p: ChildProcess = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      join(ROOT, "bin/tvsd.ts"),
      "--socket",
      join(dir, "c.sock"),
      "--rules",
      file,
      "--log-level",
      "warn",
      "--http",
      "none",
      "--drain-timeout",
      "500",
      "--workers",
      String(workers),
    ],
    { stdio: ["ignore", "ignore", "inherit"] },
  );
  try {
    await waitPort(vip);
    // The probe above was a connection too: wait for it to leave the table's counts.
    await new Promise((r) => setTimeout(r, 200));
    return await fn(vip);
  } finally {
    const gone = new Promise((r) => p.once("exit", r));
    p.kill("SIGTERM");
    const k = setTimeout(() => p.kill("SIGKILL"), 10_000);
    await gone;
    clearTimeout(k);
  }
}

async function main(): Promise<void> {
  const a = await realServer("A");
  const b = await realServer("B");
  const ra = `127.0.0.1:${a.port}`;
  const rb = `127.0.0.1:${b.port}`;
  try {
    for (const workers of [1, 2]) {
      const wrr = await withTvsd(
        workers,
        `-A -t VIP -s wrr\n-a -t VIP -r ${ra} -m -w 2\n-a -t VIP -r ${rb} -m -w 1\n`,
        async (vip) => {
          const got: string[] = [];
          for (let i = 0; i < 99; i++) got.push(await ask(vip, undefined));
          return count(got);
        },
      );
      const lc = await withTvsd(
        workers,
        `-A -t VIP -s lc\n-a -t VIP -r ${ra} -m\n-a -t VIP -r ${rb} -m\n`,
        async (vip) => {
          const held: net.Socket[] = [];
          try {
            for (let i = 0; i < 40; i++) await ask(vip, held);
            return `held A=${a.sockets.size} B=${b.sockets.size}`;
          } finally {
            for (const s of held) s.destroy();
          }
        },
      );
      const persist = await withTvsd(
        workers,
        `-A -t VIP -s rr -p 60\n-a -t VIP -r ${ra} -m\n-a -t VIP -r ${rb} -m\n`,
        async (vip) => {
          // Before each of its connections another client (a new address) is scheduled, so the
          // workers' rr positions drift apart as a real client population makes them.
          const got: string[] = [];
          for (let i = 0; i < 20; i++) {
            await ask(vip, undefined, `127.0.0.${10 + i}`);
            got.push(await ask(vip, undefined, "127.0.0.1"));
          }
          return `${new Set(got).size} real server(s): ${count(got)}`;
        },
      );
      console.log(
        `${workers} worker(s): wrr 2:1 over 99: ${wrr} | lc, 40 held: ${lc} | persistence, 20 conns: ${persist}`,
      );
    }
  } finally {
    a.server.close();
    b.server.close();
    for (const s of [...a.sockets, ...b.sockets]) s.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
