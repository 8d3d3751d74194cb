// HTTP_GET and SSL_GET against loopback servers: keepalived's exact request bytes (Host with and
// without virtualhost, IPv6 brackets, 1.0C/1.1), status ranges, MD5 digests, body regex, several
// urls, refused, a server that never answers, and TLS with and without SNI.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import type net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import tls from "node:tls";
import { checkWithTimeout } from "../checker.ts";
import { checkerCommon, type HttpCheckSpec, type UrlSpec } from "../checker-spec.ts";
import { closedPort, listenTcp, silentTcp } from "../test-listeners.ts";
import { createHttpChecker, httpRequest, parseResponse } from "./http.ts";

const url = (path: string, over: Partial<UrlSpec> = {}): UrlSpec => ({
  path,
  statusCodes: [{ from: 200, to: 299 }],
  ...over,
});

const spec = (urls: UrlSpec[], over: Partial<HttpCheckSpec> = {}): HttpCheckSpec => ({
  ...checkerCommon("HTTP_GET", { connectTimeoutMs: 500 }),
  type: "HTTP_GET",
  urls,
  httpProtocol: "1.0",
  verifyCert: false,
  ...over,
});

/** Answer each request with `respond(requestHead)`, closing afterwards; records raw requests. */
function serve(socket: net.Socket, requests: string[], respond: (head: string) => string): void {
  let buf = "";
  socket.on("data", (d) => {
    buf += d.toString("latin1");
    const end = buf.indexOf("\r\n\r\n");
    if (end === -1) return;
    const head = buf.slice(0, end + 4);
    requests.push(head);
    socket.end(respond(head));
  });
}

const pages: Record<string, { status: number; body: string }> = {
  "/": { status: 200, body: "<html>hello</html>" },
  "/health": { status: 204, body: "" },
  "/broken": { status: 500, body: "oops" },
  "/moved": { status: 301, body: "" },
};

function respondPages(head: string): string {
  const path = /^GET (\S+)/.exec(head)?.[1] ?? "/";
  const p = pages[path] ?? { status: 404, body: "not found" };
  return `HTTP/1.0 ${p.status} X\r\nContent-Type: text/html\r\n\r\n${p.body}`;
}

const md5 = (s: string) => createHash("md5").update(s).digest("hex");

test("the request is keepalived's, byte for byte", () => {
  assert.equal(
    httpRequest("/index.html", "10.0.0.1:80", "1.0"),
    "GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1:80\r\n\r\n",
  );
  assert.equal(
    httpRequest("/", "www.example.com", "1.0C"),
    "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n",
  );
  assert.equal(
    httpRequest("/", "www.example.com", "1.1"),
    "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n",
  );
});

test("parseResponse reads the status code and the body", () => {
  assert.deepEqual(parseResponse(Buffer.from("HTTP/1.1 404 Not Found\r\nA: b\r\n\r\nbody")), {
    status: 404,
    body: Buffer.from("body"),
  });
  assert.equal(parseResponse(Buffer.from("SSH-2.0-OpenSSH\r\n")), undefined);
});

test("HTTP_GET sends the request on the wire and passes on 200 with the right digest", async (t) => {
  const requests: string[] = [];
  const l = await listenTcp((s) => serve(s, requests, respondPages));
  t.after(() => l.close());
  const c = createHttpChecker(spec([url("/", { digest: md5(pages["/"]?.body ?? "") })]));
  const r = await checkWithTimeout(c, { address: "127.0.0.1", port: l.port }, 500);
  assert.equal(r.ok, true, r.reason);
  assert.deepEqual(requests, [`GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:${l.port}\r\n\r\n`]);
});

test("HTTP_GET uses virtualhost (checker, then url level) in the Host header", async (t) => {
  const requests: string[] = [];
  const l = await listenTcp((s) => serve(s, requests, respondPages));
  t.after(() => l.close());
  const c = createHttpChecker(
    spec([url("/"), url("/health", { virtualhost: "other.example" })], {
      virtualhost: "www.example.com",
      httpProtocol: "1.1",
    }),
  );
  const r = await checkWithTimeout(c, { address: "127.0.0.1", port: l.port }, 500);
  assert.equal(r.ok, true, r.reason);
  assert.deepEqual(requests, [
    "GET / HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.com\r\n\r\n",
    "GET /health HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: other.example\r\n\r\n",
  ]);
});

test("HTTP_GET over IPv6 brackets the address in Host", async (t) => {
  const requests: string[] = [];
  let l: Awaited<ReturnType<typeof listenTcp>>;
  try {
    l = await listenTcp((s) => serve(s, requests, respondPages), "::1");
  } catch {
    t.skip("no IPv6 loopback");
    return;
  }
  t.after(() => l.close());
  const r = await checkWithTimeout(createHttpChecker(spec([url("/")])), { address: "::1", port: l.port }, 500);
  assert.equal(r.ok, true, r.reason);
  assert.match(requests[0] ?? "", new RegExp(`Host: \\[::1\\]:${l.port}\r\n`));
});

test("HTTP_GET fails on a status outside the ranges and passes inside them", async (t) => {
  const requests: string[] = [];
  const l = await listenTcp((s) => serve(s, requests, respondPages));
  t.after(() => l.close());
  const target = { address: "127.0.0.1", port: l.port };
  const broken = await checkWithTimeout(createHttpChecker(spec([url("/broken")])), target, 500);
  assert.equal(broken.ok, false);
  assert.equal(broken.reason, "/broken: HTTP status 500 not in 200-299");
  const moved = await checkWithTimeout(createHttpChecker(spec([url("/moved")])), target, 500);
  assert.equal(moved.ok, false);
  const allowMoved = url("/moved", {
    statusCodes: [
      { from: 200, to: 204 },
      { from: 301, to: 301 },
    ],
  });
  const ok = await checkWithTimeout(createHttpChecker(spec([allowMoved])), target, 500);
  assert.equal(ok.ok, true, ok.reason);
});

test("HTTP_GET fails on a wrong digest, naming both", async (t) => {
  const requests: string[] = [];
  const l = await listenTcp((s) => serve(s, requests, respondPages));
  t.after(() => l.close());
  const wrong = "0123456789abcdef0123456789abcdef";
  const r = await checkWithTimeout(
    createHttpChecker(spec([url("/", { digest: wrong })])),
    { address: "127.0.0.1", port: l.port },
    500,
  );
  assert.equal(r.ok, false);
  assert.equal(r.reason, `/: MD5 digest ${md5(pages["/"]?.body ?? "")} differs from ${wrong}`);
});

test("HTTP_GET fails when any url fails, and checks the body regex", async (t) => {
  const requests: string[] = [];
  const l = await listenTcp((s) => serve(s, requests, respondPages));
  t.after(() => l.close());
  const target = { address: "127.0.0.1", port: l.port };
  const r = await checkWithTimeout(createHttpChecker(spec([url("/"), url("/nope")])), target, 500);
  assert.equal(r.ok, false);
  assert.match(r.reason, /^\/nope: HTTP status 404/);
  const re = await checkWithTimeout(createHttpChecker(spec([url("/", { bodyRegex: "hel+o" })])), target, 500);
  assert.equal(re.ok, true, re.reason);
  const reBad = await checkWithTimeout(createHttpChecker(spec([url("/", { bodyRegex: "^bye" })])), target, 500);
  assert.equal(reBad.ok, false);
  assert.equal(reBad.reason, "/: body does not match /^bye/");
});

test("HTTP_GET fails on refused and on a server that never answers", async (t) => {
  const port = await closedPort();
  const refused = await checkWithTimeout(createHttpChecker(spec([url("/")])), { address: "127.0.0.1", port }, 500);
  assert.equal(refused.ok, false);
  assert.equal(refused.reason, "/: Connection refused");
  const silent = await silentTcp();
  t.after(() => silent.close());
  const hung = await checkWithTimeout(
    createHttpChecker(spec([url("/")])),
    { address: "127.0.0.1", port: silent.port },
    250,
  );
  assert.equal(hung.ok, false);
  assert.equal(hung.reason, "/: Timed out after 250 ms");
});

function makeCert(t: { after(fn: () => void): void }): { key: Buffer; cert: Buffer } | undefined {
  const dir = mkdtempSync(join(tmpdir(), "tvs-ssl-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  try {
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"].concat([
        "-subj",
        "/CN=rs.example",
        "-keyout",
        join(dir, "k.pem"),
        "-out",
        join(dir, "c.pem"),
      ]),
      { stdio: "ignore" },
    );
  } catch {
    return undefined;
  }
  return { key: readFileSync(join(dir, "k.pem")), cert: readFileSync(join(dir, "c.pem")) };
}

test("SSL_GET speaks the same request over TLS, sends SNI when set, ignores the self-signed cert", async (t) => {
  const pem = makeCert(t);
  if (!pem) {
    t.skip("openssl is not available");
    return;
  }
  const names: (string | false)[] = [];
  const requests: string[] = [];
  const server = tls.createServer({ key: pem.key, cert: pem.cert }, (s) => {
    names.push((s as tls.TLSSocket & { servername?: string | false }).servername ?? false);
    s.on("error", () => {});
    serve(s, requests, respondPages);
  });
  await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0 }, () => r()));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as net.AddressInfo).port;
  const target = { address: "127.0.0.1", port };
  const base = { ...spec([url("/", { digest: md5(pages["/"]?.body ?? "") })]), type: "SSL_GET" as const };
  const plain = await checkWithTimeout(createHttpChecker(base), target, 1000);
  assert.equal(plain.ok, true, plain.reason);
  const sni = await checkWithTimeout(createHttpChecker({ ...base, sni: "www.example.com" }), target, 1000);
  assert.equal(sni.ok, true, sni.reason);
  assert.deepEqual(names, [false, "www.example.com"]);
  assert.equal(requests[0], `GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:${port}\r\n\r\n`);
  const verified = await checkWithTimeout(createHttpChecker({ ...base, verifyCert: true }), target, 1000);
  assert.equal(verified.ok, false);
  assert.match(verified.reason, /TLS handshake failed: self.signed/i);
});

test("SSL_GET against a plain HTTP server fails", async (t) => {
  const requests: string[] = [];
  const l = await listenTcp((s) => serve(s, requests, respondPages));
  t.after(() => l.close());
  const r = await checkWithTimeout(
    createHttpChecker({ ...spec([url("/")]), type: "SSL_GET" }),
    { address: "127.0.0.1", port: l.port },
    500,
  );
  assert.equal(r.ok, false);
});
