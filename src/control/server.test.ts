// The control server's own defences (issue #11 item 8): a connection that never sends a byte is
// closed after the idle timeout, a deeply nested body is refused with 400 before anything parses
// it, and only tvsd's own failures are logged as errors (refusals at info, hang-ups at debug).
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { CoreError } from "../core/errors.ts";
import type { LogLevel } from "../core/log.ts";
import { createLogger } from "./log.ts";
import { type ControlHandlers, ControlServer } from "./server.ts";

interface Line {
  level: LogLevel;
  msg: string;
}

async function serve(
  t: { after(fn: () => unknown): void },
  handlers: Partial<ControlHandlers>,
  idleTimeoutMs = 10_000,
): Promise<{ path: string; lines: Line[] }> {
  const dir = mkdtempSync(join(tmpdir(), "tvs-ctl-"));
  const lines: Line[] = [];
  const log = createLogger({ level: "debug", write: (l) => lines.push(JSON.parse(l) as Line) });
  const full: ControlHandlers = {
    exec: async () => {},
    snapshot: () => ({}) as never,
    status: () => ({}) as never,
    reload: async () => {},
    ...handlers,
  };
  const server = new ControlServer(full, log, { idleTimeoutMs });
  const path = join(dir, "control.sock");
  await server.listen(path);
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { path, lines };
}

function post(path: string, body: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath: path, method: "POST", path: "/v1/exec", headers: { "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.on("data", (c: Buffer) => (text += c.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

test("a control connection that never sends a byte is closed after the idle timeout", async (t) => {
  const { path } = await serve(t, {}, 200);
  const sock = net.connect({ path });
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 5000);
    sock.on("close", () => {
      clearTimeout(timer);
      resolve(true);
    });
    sock.on("error", () => {});
  });
  sock.destroy();
  assert.equal(closed, true);
});

test("a deeply nested body gets 400, not a stack overflow", async (t) => {
  const { path, lines } = await serve(t, {});
  for (const body of ["[".repeat(200_000), `{"op":"batch","requests":${"[".repeat(100_000)}${"]".repeat(100_000)}}`]) {
    const r = await post(path, body);
    assert.equal(r.status, 400);
    assert.match(r.body, /nested deeper than 32 levels/);
  }
  assert.ok(!lines.some((l) => l.level === "error"));
  // Brackets inside strings do not count as nesting.
  const r = await post(path, JSON.stringify({ op: "del-dest", addr: "[".repeat(100), port: 1, key: {} }));
  assert.equal(r.status, 400);
  assert.match(r.body, /Invalid request\.key/);
});

test("refusals are logged at info and hang-ups at debug; only tvsd's own failures at error", async (t) => {
  let calls = 0;
  const { path, lines } = await serve(t, {
    exec: async () => {
      calls++;
      if (calls === 1) throw new CoreError("ENOMEM", "add-service", "Connection table full");
      throw new Error("a bug");
    },
  });
  const refused = await post(path, '{"op":"flush"}');
  assert.equal(refused.status, 507);
  // A client that sends half a body and hangs up.
  await new Promise<void>((resolve) => {
    const s = net.connect({ path }, () => {
      s.write("POST /v1/exec HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{");
      setTimeout(() => {
        s.destroy();
        resolve();
      }, 50);
    });
    s.on("error", () => {});
  });
  await new Promise((r) => setTimeout(r, 100));
  const failed = await post(path, '{"op":"flush"}');
  assert.equal(failed.status, 500);
  const byLevel = (lvl: LogLevel) => lines.filter((l) => l.level === lvl).map((l) => l.msg);
  assert.deepEqual(byLevel("error"), ["Request failed"]);
  assert.ok(byLevel("info").includes("Request refused"));
  assert.ok(byLevel("debug").includes("Control client went away"));
});
