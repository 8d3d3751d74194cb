// tvsd's life cycle as an operator meets it: rules loaded at start, SIGHUP reloads that keep open
// connections and counters, a broken rules file refused with file:line while the running state
// stays, SIGTERM draining open connections and exiting 0, the control socket already taken by a
// live daemon, a VIP that cannot be bound, and malformed API requests answered with 400.

import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import {
  freePort,
  freeUdpPort,
  nameServer,
  openClient,
  ROOT,
  startTvsd,
  udpClient,
  udpNameServer,
  waitFor,
  whoAnswers,
} from "./tvsd-harness.ts";

const dir = mkdtempSync(join(tmpdir(), "tvsd-life-"));
after(() => rmSync(dir, { recursive: true, force: true }));

function rules(vport: number, dests: [number, number][], sched = "rr"): string {
  const lines = [`-A -t 127.0.0.1:${vport} -s ${sched}`];
  for (const [port, w] of dests) lines.push(`-a -t 127.0.0.1:${vport} -r 127.0.0.1:${port} -m -w ${w}`);
  return `${lines.join("\n")}\n`;
}

/** Run tvsd to completion (it is expected to fail fast); returns exit code and stderr. */
function runTvsd(args: string[]): Promise<{ code: number | null; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bin/tvsd.ts"), ...args], {
      cwd: ROOT,
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    p.stderr?.on("data", (c: Buffer) => (err += c.toString()));
    const t = setTimeout(() => p.kill("SIGKILL"), 20_000);
    p.on("exit", (code) => {
      clearTimeout(t);
      resolve({ code, err });
    });
  });
}

test("SIGHUP reconciles the rules file: open connections and counters survive; a broken file is refused", async () => {
  const rs1 = await nameServer("rs1");
  const rs2 = await nameServer("rs2");
  const rs3 = await nameServer("rs3");
  const vport = await freePort();
  const file = join(dir, "reload.rules");
  writeFileSync(
    file,
    rules(vport, [
      [rs1.port, 1],
      [rs2.port, 1],
    ]),
  );
  const t = await startTvsd(["--rules", file]);
  try {
    const held = await openClient(vport);
    for (let i = 0; i < 4; i++) await whoAnswers(vport);
    const before = await t.snapshot();
    assert.equal(before.services[0]?.stats.conns, 5);

    // Add rs3 and change rs2's weight; the service itself is unchanged.
    writeFileSync(
      file,
      rules(vport, [
        [rs1.port, 1],
        [rs2.port, 3],
        [rs3.port, 1],
      ]),
    );
    t.proc.kill("SIGHUP");
    const snap = await waitFor("the reload", async () => {
      const s = await t.snapshot();
      return s.services[0]?.dests.length === 3 ? s : undefined;
    });
    const svc = snap.services[0];
    assert.ok(svc);
    assert.equal(svc.stats.conns, 5, "service counters survive the reload");
    assert.equal(svc.dests.find((d) => d.spec.port === rs2.port)?.spec.weight, 3);
    assert.equal(svc.dests.find((d) => d.spec.port === (held.name === "rs1" ? rs1.port : rs2.port))?.activeConns, 1);
    assert.equal(await held.echo("across the reload"), "across the reload");

    // A broken file: refused with file:line; the running state stays.
    writeFileSync(file, `${rules(vport, [[rs1.port, 1]])}-a -t 127.0.0.1:${vport} -r 127.0.0.1:99999 -m\n`);
    t.proc.kill("SIGHUP");
    const refused = await waitFor("the refusal", () =>
      t.logs.find((l) => l.msg === "Reload refused; the running state is unchanged"),
    );
    assert.match(String(refused.err), /reload\.rules:3/);
    const still = await t.snapshot();
    assert.equal(still.services[0]?.dests.length, 3);
    assert.equal(await held.echo("still fine"), "still fine");
    await held.close();
  } finally {
    await t.stop();
    await rs1.close();
    await rs2.close();
    await rs3.close();
  }
});

test("SIGTERM drains: the VIP stops accepting, the open connection finishes, exit 0", async () => {
  const rs1 = await nameServer("rs1");
  const vport = await freePort();
  const file = join(dir, "drain.rules");
  writeFileSync(file, rules(vport, [[rs1.port, 1]]));
  const t = await startTvsd(["--rules", file, "--drain-timeout", "15000"]);
  try {
    const held = await openClient(vport);
    t.proc.kill("SIGTERM");
    await waitFor("the listener to close", () => t.logs.some((l) => l.msg === "Draining") || undefined);
    await waitFor("new connections to be refused", async () => {
      try {
        await whoAnswers(vport);
        return undefined;
      } catch (e) {
        return /ECONNREFUSED/.test(String(e)) || undefined;
      }
    });
    assert.equal(await held.echo("draining"), "draining");
    await held.close();
    assert.equal(await t.exited, 0);
  } finally {
    await t.stop();
    await rs1.close();
  }
});

test("a control socket held by a live tvsd is refused; a stale one is replaced", async () => {
  const t = await startTvsd();
  try {
    const r = await runTvsd(["--socket", t.socket]);
    assert.equal(r.code, 1);
    assert.match(r.err, /already running/);
  } finally {
    await t.stop();
  }
  // A stale socket file (nobody listening) is replaced.
  const stale = join(dir, "stale.sock");
  // A daemon killed with SIGKILL leaves its socket file behind; a child process plays that part.
  const child = spawn(process.execPath, [
    "-e",
    `require("net").createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, "SIGKILL"))`,
  ]);
  await new Promise((r) => child.on("exit", r));
  const t2 = await startTvsd([], { socket: stale, dir });
  try {
    assert.ok(t2.logs.some((l) => l.msg === "Replaced a stale control socket"));
  } finally {
    await t2.stop();
  }
});

test("a VIP that cannot be bound: a clear message and a non-zero exit", async () => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, "127.0.0.1", () => r()));
  const port = (holder.address() as net.AddressInfo).port;
  const file = join(dir, "taken.rules");
  writeFileSync(file, rules(port, [[9, 1]]));
  try {
    const r = await runTvsd(["--socket", join(dir, "taken.sock"), "--rules", file]);
    assert.equal(r.code, 1);
    assert.match(r.err, new RegExp(`Cannot listen on tcp 127\\.0\\.0\\.1:${port}: EADDRINUSE`));
  } finally {
    await new Promise<void>((r) => holder.close(() => r()));
  }
});

function rawRequest(
  socketPath: string,
  method: string,
  path: string,
  body: string,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath, method, path, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("malformed requests get 400 with a message and leave the state alone", async () => {
  const t = await startTvsd();
  try {
    await t.tvsadm("-A", "-t", "127.0.0.1:1", "-s", "rr");
    const before = JSON.stringify((await t.snapshot()).services);
    const cases: [string, RegExp][] = [
      ["{not json", /not JSON/],
      ['{"op":"explode"}', /request\.op/],
      [
        '{"op":"add-service","key":{"kind":"vip","protocol":"tcp","addr":"127.0.0.1"},"options":{}}',
        /request\.key\.port/,
      ],
      [
        '{"op":"add-dest","key":{"kind":"vip","protocol":"tcp","addr":"127.0.0.1","port":1},"dest":{"addr":5}}',
        /request\.dest\.addr/,
      ],
      ['{"op":"batch","requests":[{"op":"flush"},{"op":"batch","requests":[]}]}', /nested/],
      ["[]", /expected an object/],
    ];
    for (const [body, msg] of cases) {
      const r = await rawRequest(t.socket, "POST", "/v1/exec", body);
      assert.equal(r.status, 400, body);
      const parsed = JSON.parse(r.body) as { error: { code: string; message: string } };
      assert.equal(parsed.error.code, "EINVAL");
      assert.match(parsed.error.message, msg);
    }
    const nf = await rawRequest(t.socket, "GET", "/v1/nothing", "");
    assert.equal(nf.status, 404);
    assert.equal(JSON.stringify((await t.snapshot()).services), before);
    // A refused batch names the failing index and changes nothing.
    await assert.rejects(
      t.client.exec({
        op: "batch",
        requests: [
          { op: "del-service", key: { kind: "vip", protocol: "tcp", addr: "127.0.0.1", port: 1 } },
          { op: "del-service", key: { kind: "vip", protocol: "tcp", addr: "127.0.0.1", port: 2 } },
        ],
      }),
      (e: Error & { index?: number; code?: string }) => e.index === 1 && e.code === "ESRCH",
    );
    assert.equal(JSON.stringify((await t.snapshot()).services), before);
    const status = await t.client.status();
    assert.equal(status.dataplane, "proxy");
    // tvs status prints the same view for people.
    const shown = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, ["--import", "tsx", join(ROOT, "bin/tvs.ts"), "status", "--socket", t.socket], {
        cwd: ROOT,
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      p.stdout?.on("data", (c: Buffer) => (out += c.toString()));
      p.on("exit", (code) => resolve({ code, out }));
    });
    assert.equal(shown.code, 0);
    assert.match(
      shown.out,
      new RegExp(`tvsd pid ${t.proc.pid}, up .*socket ${t.socket.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`),
    );
    assert.match(shown.out, /Data plane: proxy/);
    assert.match(shown.out, /Open flows on the data plane: 0/);
  } finally {
    await t.stop();
  }
});

test("--workers 2: both workers carry the service, counters are summed, SIGTERM stops them all", async () => {
  const rs1 = await nameServer("rs1");
  const rs2 = await nameServer("rs2");
  const t = await startTvsd(["--workers", "2"]);
  try {
    const port = await freePort();
    const vip = `127.0.0.1:${port}`;
    assert.equal((await t.tvsadm("-A", "-t", vip, "-s", "rr")).code, 0);
    assert.equal((await t.tvsadm("-a", "-t", vip, "-r", `127.0.0.1:${rs1.port}`, "-m")).code, 0);
    assert.equal((await t.tvsadm("-a", "-t", vip, "-r", `127.0.0.1:${rs2.port}`, "-m")).code, 0);
    const names = [];
    for (let i = 0; i < 10; i++) names.push(await whoAnswers(port));
    assert.ok(names.every((n) => n === "rs1" || n === "rs2"));
    const snap = await t.snapshot(true);
    assert.equal(snap.services[0]?.stats.conns, 10);
    assert.equal(
      snap.services[0]?.dests.reduce((n, d) => n + d.stats.conns, 0),
      10,
    );
    assert.equal((snap.conns ?? []).filter((c) => c.vport === port).length, 10);
    const refused = await t.tvsadm("-A", "-t", vip, "-s", "rr");
    assert.notEqual(refused.code, 0, "every worker refuses a duplicate service alike");
    const status = await t.client.status();
    assert.ok(
      status.notes.some((n) => n.startsWith("Workers: 2")),
      JSON.stringify(status.notes),
    );
  } finally {
    assert.equal(await t.stop(), 0);
    await rs1.close();
    await rs2.close();
  }
});

test("--workers 2: a persistent service keeps each client address on one real server; every worker serves UDP", async (t) => {
  const rs1 = await nameServer("rs1");
  const rs2 = await nameServer("rs2");
  const u1 = await udpNameServer("u1");
  const u2 = await udpNameServer("u2");
  const d = await startTvsd(["--workers", "2"]);
  const clients: Awaited<ReturnType<typeof udpClient>>[] = [];
  t.after(async () => {
    for (const c of clients) await c.close();
    await rs1.close();
    await rs2.close();
    await u1.close();
    await u2.close();
  });
  try {
    const port = await freePort();
    const vip = `127.0.0.1:${port}`;
    assert.equal((await d.tvsadm("-A", "-t", vip, "-s", "rr", "-p", "60")).code, 0);
    assert.equal((await d.tvsadm("-a", "-t", vip, "-r", `127.0.0.1:${rs1.port}`, "-m")).code, 0);
    assert.equal((await d.tvsadm("-a", "-t", vip, "-r", `127.0.0.1:${rs2.port}`, "-m")).code, 0);
    // Eight client addresses, four connections each (new source ports): without steering by client
    // address the connections of one address would land on both workers, each with its own
    // templates, and about half the addresses would reach both real servers.
    const seen = new Set<string>();
    for (let host = 10; host < 18; host++) {
      const names = new Set<string>();
      for (let i = 0; i < 4; i++) names.add(await whoAnswers(port, { localAddress: `127.0.0.${host}` }));
      assert.equal(names.size, 1, `127.0.0.${host} reached ${[...names].join(" and ")}`);
      for (const n of names) seen.add(n);
    }
    assert.equal(seen.size, 2, "the addresses are spread over both real servers");

    const uport = await freeUdpPort();
    const uvip = `127.0.0.1:${uport}`;
    assert.equal((await d.tvsadm("-A", "-u", uvip, "-s", "rr")).code, 0);
    assert.equal((await d.tvsadm("-a", "-u", uvip, "-r", `127.0.0.1:${u1.port}`, "-m")).code, 0);
    assert.equal((await d.tvsadm("-a", "-u", uvip, "-r", `127.0.0.1:${u2.port}`, "-m")).code, 0);
    // Both worker processes hold a socket on the UDP VIP (ss lists the owner of each).
    const holders = new Set(
      [...execFileSync("ss", ["-Hulpn", `sport = :${uport}`], { encoding: "utf8" }).matchAll(/pid=(\d+)/g)].map(
        (m) => m[1],
      ),
    );
    assert.equal(holders.size, 2, `UDP VIP sockets held by pids ${[...holders].join(", ")}`);
    for (let i = 0; i < 16; i++) {
      const c = await udpClient();
      clients.push(c);
      const answer = await c.ask(uport, `q${i}`);
      assert.match(answer, new RegExp(`^u[12]:q${i}$`));
      assert.equal(
        await c.ask(uport, `again${i}`),
        `${answer.split(":")[0]}:again${i}`,
        "a flow stays on its real server",
      );
    }
    const snap = await d.snapshot();
    const udpSvc = snap.services.find((s) => s.key.kind === "vip" && s.key.protocol === "udp");
    assert.equal(udpSvc?.stats.conns, 16);
  } finally {
    assert.equal(await d.stop(), 0);
  }
});

test("a full connection table refuses new connections with a reset and counts them", async () => {
  const rs1 = await nameServer("rs1");
  const t = await startTvsd(["--conn-limit", "3"]);
  try {
    const port = await freePort();
    const vip = `127.0.0.1:${port}`;
    assert.equal((await t.tvsadm("-A", "-t", vip, "-s", "rr")).code, 0);
    assert.equal((await t.tvsadm("-a", "-t", vip, "-r", `127.0.0.1:${rs1.port}`, "-m")).code, 0);
    const held = [await openClient(port), await openClient(port), await openClient(port)];
    await assert.rejects(whoAnswers(port), /ECONNRESET|closed before a name/);
    const status = await t.client.status();
    assert.ok(status.notes.includes("Connection table: 3 entries (limit 3, dropped 1)"), JSON.stringify(status.notes));
    for (const h of held) assert.equal(await h.echo("ok"), "ok");
    for (const h of held) await h.close();
  } finally {
    await t.stop();
    await rs1.close();
  }
});
