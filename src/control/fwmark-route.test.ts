// GET /v1/fwmark through the control server and the HTTP client tvs fwmark uses: the handler's
// view arrives as it was given; a tvsd without the handler (socket plane with workers) refuses
// with EOPNOTSUPP naming --fwmark-addr; a POST is refused as a method the route does not take.
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { silentLogger } from "../core/log.ts";
import { ApiError, HttpControlClient } from "./api/client.ts";
import type { FwmarkView } from "./api/protocol.ts";
import { type ControlHandlers, ControlServer } from "./server.ts";

const VIEW: FwmarkView = {
  supported: true,
  rules: [
    {
      n: 1,
      text: "tcp 10.0.0.10 80,443 mark 1",
      protocol: "tcp",
      dst: "10.0.0.10",
      ports: "80,443",
      mark: 1,
      origin: "--fwmark-rule 1",
      service: "fwmark 1 ipv4",
    },
  ],
  services: [{ id: "fwmark 1 ipv4", fwmark: 1, family: 4, rules: 1 }],
  warnings: [],
};

async function serve(t: { after(fn: () => unknown): void }, extra: Partial<ControlHandlers>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "fwmark-ctl-"));
  const server = new ControlServer(
    {
      exec: async () => {},
      snapshot: () => ({}) as never,
      status: () => ({}) as never,
      reload: async () => {},
      ...extra,
    },
    silentLogger,
  );
  const path = join(dir, "control.sock");
  await server.listen(path);
  t.after(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return path;
}

test("GET /v1/fwmark answers the handler's view", async (t) => {
  const path = await serve(t, { fwmark: async () => VIEW });
  assert.deepEqual(await new HttpControlClient({ socketPath: path }).fwmark(), VIEW);
});

test("without a classifier the route is refused with EOPNOTSUPP; POST is not a method it takes", async (t) => {
  const path = await serve(t, {});
  await assert.rejects(
    new HttpControlClient({ socketPath: path }).fwmark(),
    (e: unknown) => e instanceof ApiError && /no firewall-mark classifier.*--fwmark-addr/.test(e.message),
  );
  const status = await new Promise<number>((resolve, reject) => {
    const req = http.request({ socketPath: path, method: "POST", path: "/v1/fwmark" }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode ?? 0));
    });
    req.on("error", reject);
    req.end("{}");
  });
  assert.equal(status, 405);
});
