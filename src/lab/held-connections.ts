// Long-lived client connections for the failover experiments: a line server on the real servers
// (each line comes back prefixed with the server's name, connections stay open), a client that
// holds N connections per VIP and, on "ping" (stdin), sends a line on each and prints the replies
// as one JSON line (a reset, close or timeout shows as "ERR ..."), and a rate-limited download
// server with a client that prints the byte count and SHA-256 of what it received.

import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";

/** A line server (argv: NAME PORT [HOST, default 0.0.0.0]): each line gets "NAME:line" back; connections stay open. */
export const LINE_SERVER = `
const net = require("node:net");
const [name, port, host = "0.0.0.0"] = process.argv.slice(1);
net.createServer((s) => {
  let buf = "";
  s.on("data", (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf("\\n")) >= 0) { const line = buf.slice(0, i); buf = buf.slice(i + 1); s.write(name + ":" + line + "\\n"); }
  });
  s.on("error", () => {});
}).listen(Number(port), host, () => console.log("listening"));
`;

/**
 * The client: opens N connections to each VIP and keeps them. On "ping" (stdin) it sends a line
 * on every connection and prints one JSON line: per connection the reply, or the error/reset. On
 * "ports" it prints the connections' local ports as one JSON line; "reset" ends every connection
 * with a RST (nothing lingers in the client's kernel to reach the next experiment) and exits.
 */
export const HOLDING_CLIENT = `
const net = require("node:net");
const vips = process.argv[1].split(",");
const n = Number(process.argv[2]);
const conns = [];
for (const vip of vips) for (let i = 0; i < n; i++) {
  const c = { vip, sock: net.connect(80, vip), buf: "", err: "", waiting: null };
  c.sock.setEncoding("utf8");
  c.sock.on("data", (d) => { c.buf += d; const i = c.buf.indexOf("\\n"); if (i >= 0 && c.waiting) { const line = c.buf.slice(0, i); c.buf = c.buf.slice(i + 1); const w = c.waiting; c.waiting = null; w(line); } });
  c.sock.on("error", (e) => { c.err = e.code || e.message; if (c.waiting) { const w = c.waiting; c.waiting = null; w("ERR " + c.err); } });
  c.sock.on("close", () => { if (!c.err) c.err = "closed"; if (c.waiting) { const w = c.waiting; c.waiting = null; w("ERR " + c.err); } });
  conns.push(c);
}
let round = 0;
async function ping() {
  round++;
  const out = await Promise.all(conns.map((c, k) => new Promise((resolve) => {
    if (c.err) return resolve("ERR " + c.err);
    const t = setTimeout(() => { c.waiting = null; resolve("ERR timeout"); }, 8000);
    c.waiting = (line) => { clearTimeout(t); resolve(line); };
    c.sock.write("r" + round + "c" + k + "\\n");
  })));
  console.log(JSON.stringify(out));
}
process.stdin.setEncoding("utf8");
let inb = "";
process.stdin.on("data", (d) => { inb += d; let i; while ((i = inb.indexOf("\\n")) >= 0) { const cmd = inb.slice(0, i); inb = inb.slice(i + 1); if (cmd === "ping") ping(); else if (cmd === "ports") console.log(JSON.stringify(conns.map((c) => c.sock.localPort))); else if (cmd === "quit") process.exit(0); else if (cmd === "reset") { for (const c of conns) c.sock.resetAndDestroy(); setTimeout(() => process.exit(0), 100); } } });
`;

export function lines(p: ChildProcess): () => Promise<string> {
  let buf = "";
  const queue: string[] = [];
  const waiters: ((s: string) => void)[] = [];
  p.stdout?.on("data", (d: Buffer) => {
    buf += d.toString();
    let i = buf.indexOf("\n");
    while (i >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiters.shift();
      if (w) w(line);
      else queue.push(line);
      i = buf.indexOf("\n");
    }
  });
  return () =>
    new Promise((resolve, reject) => {
      const q = queue.shift();
      if (q !== undefined) return resolve(q);
      const t = setTimeout(() => reject(new Error("no line from the process within 20 s")), 20_000);
      waiters.push((s) => {
        clearTimeout(t);
        resolve(s);
      });
    });
}

/** The byte at offset i of every download (deterministic, so the client's checksum can be checked). */
export function downloadByte(i: number): number {
  return (i * 131 + (i >>> 11)) & 255;
}

/** SHA-256 of the first `n` bytes of the download. */
export function downloadSha256(n: number): string {
  const h = createHash("sha256");
  const chunk = Buffer.alloc(65536);
  for (let off = 0; off < n; off += chunk.length) {
    const len = Math.min(chunk.length, n - off);
    for (let k = 0; k < len; k++) chunk[k] = downloadByte(off + k);
    h.update(chunk.subarray(0, len));
  }
  return h.digest("hex");
}

/**
 * Download server: each connection gets `bytes` bytes of the download pattern at `rate` bytes/s
 * (64 KB chunks), then the server closes its side.
 */
export const DOWNLOAD_SERVER = `
const net = require("node:net");
const [port, bytes, rate] = process.argv.slice(1).map(Number);
const byte = ${downloadByte.toString()};
net.createServer((s) => {
  s.on("error", () => {});
  let off = 0;
  const step = 65536;
  const timer = setInterval(() => {
    if (off >= bytes) { clearInterval(timer); s.end(); return; }
    const len = Math.min(step, bytes - off);
    const b = Buffer.alloc(len);
    for (let k = 0; k < len; k++) b[k] = byte(off + k);
    off += len;
    s.write(b);
  }, Math.max(1, Math.round((step / rate) * 1000)));
  s.on("close", () => clearInterval(timer));
}).listen(port, "0.0.0.0", () => console.log("listening"));
`;

/** Download client: prints {"bytes":N,"sha256":"...","err":""} when the server closes (or on error). */
export const DOWNLOAD_CLIENT = `
const net = require("node:net");
const { createHash } = require("node:crypto");
const [host, port] = [process.argv[1], Number(process.argv[2])];
const h = createHash("sha256");
let n = 0;
let err = "";
const s = net.connect(port, host, () => console.log("connected"));
s.on("data", (d) => { n += d.length; h.update(d); });
s.on("error", (e) => { err = e.code || e.message; });
s.on("close", () => { console.log(JSON.stringify({ bytes: n, sha256: h.digest("hex"), err })); process.exit(0); });
`;
