// Tests for the HTTP control client over a real Unix socket: requests as the protocol describes
// them, error bodies as ApiError, and a missing daemon as ControlConnectError.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type IncomingMessage } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { ApiError, ControlConnectError, HttpControlClient, snapshotPath } from "./client.ts";
import type { ApiErrorBody, Snapshot } from "./protocol.ts";

const SNAP: Snapshot = {
  version: "1.2.1",
  connTableSize: 4096,
  services: [],
  stats: { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 },
  rates: { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 },
  timeouts: { tcp: 900, tcpfin: 120, udp: 300 },
  daemons: [],
};

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

test("snapshot query strings", () => {
  assert.equal(snapshotPath(), "/v1/snapshot");
  assert.equal(
    snapshotPath({ conns: true, service: { kind: "vip", protocol: "tcp", addr: "10.0.0.1", port: 80 } }),
    "/v1/snapshot?conns=1&service=tcp+10.0.0.1%3A80",
  );
});

test("exec and snapshot over a Unix socket; refusals become ApiError", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-client-"));
  const socketPath = join(dir, "control.sock");
  const seen: string[] = [];
  const server = createServer(async (req, res) => {
    const text = await body(req);
    seen.push(`${req.method} ${req.url} ${text}`);
    res.setHeader("content-type", "application/json");
    if (req.url === "/v1/exec" && JSON.parse(text).op === "flush") {
      res.end(JSON.stringify({ ok: true }));
    } else if (req.url === "/v1/exec") {
      res.statusCode = 409;
      const err: ApiErrorBody = { error: { code: "EEXIST", op: "add-service", message: "Service exists", index: 3 } };
      res.end(JSON.stringify(err));
    } else if (req.url?.startsWith("/v1/snapshot")) {
      res.end(JSON.stringify(SNAP));
    } else {
      res.statusCode = 404;
      res.end("not json");
    }
  });
  await new Promise<void>((r) => server.listen(socketPath, r));
  t.after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const client = new HttpControlClient({ socketPath });
  await client.exec({ op: "flush" });
  assert.deepEqual(await client.snapshot({ conns: true }), SNAP);
  await assert.rejects(client.exec({ op: "batch", requests: [] }), (e) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, "EEXIST");
    assert.equal(e.index, 3);
    assert.equal(e.status, 409);
    return true;
  });
  await assert.rejects(client.status(), ControlConnectError);
  assert.deepEqual(seen.slice(0, 2), ['POST /v1/exec {"op":"flush"}', "GET /v1/snapshot?conns=1 "]);
});

test("no daemon on the socket is a ControlConnectError naming the path", async () => {
  const client = new HttpControlClient({ socketPath: "/nonexistent/tvs/control.sock" });
  await assert.rejects(client.snapshot(), (e) => {
    assert.ok(e instanceof ControlConnectError);
    assert.equal(e.reason, "ENOENT");
    assert.match(e.message, /Cannot reach tvsd at "\/nonexistent\/tvs\/control.sock": ENOENT/);
    return true;
  });
});
