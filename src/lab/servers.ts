// The programs the lab runs inside its namespaces: a real server that answers HTTP with its own
// name (and a deterministic bulk body for transfer tests) and UDP datagrams with its name. They
// are plain JavaScript passed to `node -e` so they start fast and need no build.

import type { ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { spawnIn } from "./exec.ts";

/** The bulk body: byte i of a transfer is (i * 31 + (i >>> 8)) & 255 — cheap, non-repeating per 256. */
const BULK_JS = "function bulk(n){const b=Buffer.allocUnsafe(n);for(let i=0;i<n;i++)b[i]=(i*31+(i>>>8))&255;return b}";

const SERVER_JS = `
${BULK_JS}
const [name, httpPorts, udpPort] = process.argv.slice(1);
const http = require("node:http");
const dgram = require("node:dgram");
const handler = (req, res) => {
  if (req.url === "/peer") { const body = req.socket.remoteAddress + "\\n"; res.writeHead(200, {"content-length": Buffer.byteLength(body)}); res.end(body); return; }
  const m = /^\\/bulk\\/(\\d+)$/.exec(req.url);
  if (m) { const body = bulk(Number(m[1])); res.writeHead(200, {"content-length": body.length, "x-served-by": name}); res.end(body); return; }
  const body = name + "\\n";
  res.writeHead(200, {"content-type": "text/plain", "content-length": Buffer.byteLength(body), "x-served-by": name});
  res.end(body);
};
for (const p of httpPorts.split(",")) http.createServer(handler).listen(Number(p), "0.0.0.0");
const u = dgram.createSocket("udp4");
// A datagram over 100 bytes is echoed after the name (large ones test fragmentation both ways).
u.on("message", (msg, rinfo) => u.send(msg.length > 100 ? Buffer.concat([Buffer.from(name + "\\n"), msg]) : name + "\\n", rinfo.port, rinfo.address));
u.bind(Number(udpPort), "0.0.0.0");
process.on("SIGTERM", () => process.exit(0));
`;

export function bulkBody(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >>> 8)) & 255;
  return b;
}

export function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * Start a name server in a namespace, listening for HTTP on each of httpPorts; returns the child
 * (end it by its PID). Paths: "/" → name, "/peer" → the client address it saw, "/bulk/N" → N bytes.
 */
export function startNameServer(
  ns: string,
  name: string,
  httpPorts: readonly number[],
  udpPort: number,
  logFile?: string,
): ChildProcess {
  const args = ["-e", SERVER_JS, name, httpPorts.join(","), String(udpPort)];
  return spawnIn(ns, process.execPath, args, process.env, logFile);
}

/**
 * A one-shot UDP client for `node -e HOST PORT [SIZE]`: sends "who?" and prints the first reply
 * (or nothing). With SIZE it sends SIZE patterned bytes instead and prints the responder's name
 * and "echo-ok" when the echoed bytes came back intact ("echo-bad" otherwise).
 */
export const UDP_CLIENT_JS = `
const [host, port, size] = process.argv.slice(1);
const s = require("node:dgram").createSocket("udp4");
const t = setTimeout(() => process.exit(1), 3000);
const out = size ? Buffer.alloc(Number(size), 0).map((_, i) => (i * 7 + 3) & 255) : Buffer.from("who?");
s.on("message", (m) => {
  clearTimeout(t);
  if (!size) process.stdout.write(m);
  else { const nl = m.indexOf(10); process.stdout.write(m.subarray(0, nl) + (m.subarray(nl + 1).equals(out) ? " echo-ok" : " echo-bad")); }
  s.close();
});
s.send(out, Number(port), host);
`;
