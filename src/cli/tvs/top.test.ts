import assert from "node:assert/strict";
import { test } from "node:test";
import { adm, freePort, nameServer, startTvsd, whoAnswers } from "../../../test/tvsd-harness.ts";
import type { StatusView } from "../../control/api/protocol.ts";
import { destView, serviceView, snapshotOf } from "../../observe/test-state.ts";
import { formatTop, run } from "./top.ts";

const status: StatusView = {
  dataplane: "proxy",
  pid: 42,
  uptimeMs: 65_000,
  checks: [
    {
      service: "tcp 10.0.0.1:80",
      dest: "192.168.0.2:8080",
      checker: "TCP_CHECK",
      state: "up",
      lastResult: "ok",
      reason: "Connected",
      sinceChangeMs: 1,
      latencyMs: 0.42,
    },
    {
      service: "tcp 10.0.0.1:80",
      dest: "192.168.0.9:8080",
      checker: "TCP_CHECK",
      state: "down",
      lastResult: "failed",
      reason: "Connection refused",
      sinceChangeMs: 1,
    },
  ],
  notes: ["Connection table: 3 entries (limit 1000, dropped 0)"],
};

test("tvs top: services sorted as ipvsadm sorts them, rates, counts, health, servers out of the table", () => {
  const web = serviceView({ kind: "vip", protocol: "tcp", addr: "10.0.0.1", port: 80 }, [
    destView("192.168.0.3", 8080, {
      activeConns: 4,
      inactConns: 2,
      rates: { cps: 3, inPps: 30, outPps: 27, inBps: 3000, outBps: 27000 },
    }),
    destView("192.168.0.2", 8080, { activeConns: 1 }),
  ]);
  web.rates = { cps: 3, inPps: 30, outPps: 27, inBps: 3000, outBps: 27000 };
  const dns = serviceView({ kind: "vip", protocol: "udp", addr: "10.0.0.1", port: 53 }, []);
  const text = formatTop(snapshotOf([dns, web]), status, { intervalS: 1, now: new Date("2026-01-01T10:00:00Z") });
  const lines = text.split("\n");
  assert.match(
    lines[0] as string,
    /^tvs top · tvsd pid 42 · proxy · up 1m 5s · 2 service\(s\) · every 1s · 10:00:00 UTC$/,
  );
  assert.equal(lines[1], "Connection table: 3 entries (limit 1000, dropped 0)");
  const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
  // ipvsadm lists TCP before UDP; real servers by address.
  assert.ok(at(/^TCP {2}10\.0\.0\.1:80/) < at(/^UDP {2}10\.0\.0\.1:53/));
  assert.ok(at(/-> 192\.168\.0\.2:8080/) < at(/-> 192\.168\.0\.3:8080/));
  assert.match(lines[at(/^TCP/)] as string, /^TCP {2}10\.0\.0\.1:80 +wlc +5 +2 +3 +30 +27 +3000 +27000$/);
  assert.match(lines[at(/-> 192\.168\.0\.3/)] as string, /Masq +1 +4 +2 +3 +30 +27 +3000 +27000$/);
  assert.match(lines[at(/-> 192\.168\.0\.2/)] as string, /up 0\.4ms$/);
  assert.match(lines[at(/-> 192\.168\.0\.9/)] as string, /\(out\) .* down \(Connection refused\)$/);
});

test("tvs top --once against a running tvsd", async (t) => {
  const a = await nameServer("alpha");
  t.after(() => a.close());
  const tvsd = await startTvsd(["--http", "none"]);
  t.after(() => tvsd.stop());
  const vport = await freePort();
  await adm(tvsd, "-A", "-t", `127.0.0.1:${vport}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${vport}`, "-r", `127.0.0.1:${a.port}`, "-m");
  assert.equal(await whoAnswers(vport), "alpha");
  let out = "";
  const write = process.stdout.write;
  process.stdout.write = ((s: string) => {
    out += s;
    return true;
  }) as typeof process.stdout.write;
  let code: number;
  try {
    code = await run(["--socket", tvsd.socket, "--once"]);
  } finally {
    process.stdout.write = write;
  }
  assert.equal(code, 0);
  assert.match(out, new RegExp(`TCP {2}127\\.0\\.0\\.1:${vport} +rr +0 +1 `));
  assert.match(out, new RegExp(`-> 127\\.0\\.0\\.1:${a.port} +Masq +1 +0 +1 `));
});
