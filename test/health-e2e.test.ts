// Health checking end to end: a real Director, the real HealthRunner with the built-in checkers,
// and real loopback listeners (127.0.0.0/8 only). Configurations are written in the style of the
// seeds — seed 002's NAT with port mapping (keepalived.conf, wrr 2:1, TCP_CHECK) and seed 003's
// ldirectord.cf (DR, negotiate HTTP checks, quiescent=no, a fallback on the director) — and go
// through loadConfig / loadConfigText exactly as tvsd reads them. Listeners are killed and
// restarted; the test waits for the table to reach the expected state with a bounded deadline and
// reports how long it took (no timed asserts beyond the bound).

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { DirectorConfig } from "../src/config/director-config.ts";
import { loadConfig, loadConfigText } from "../src/config/load.ts";
import { Director } from "../src/control/executor.ts";
import { HealthSupervisor } from "../src/control/health-supervisor.ts";
import { reconcile } from "../src/control/reconcile.ts";
import { silentLogger } from "../src/core/log.ts";
import { createDefaultRegistry } from "../src/core/sched/all.ts";
import { listenTcp, type TcpListener } from "../src/health/test-listeners.ts";

function makeDirector(): Director {
  return new Director({
    registry: createDefaultRegistry(),
    env: { clock: { now: () => performance.now() }, random: () => Math.floor(Math.random() * 0x100000000) },
  });
}

/** What tvsd does with a loaded configuration: the supervisor first, then the effective desired state. */
async function applyConfig(director: Director, sup: HealthSupervisor, cfg: DirectorConfig): Promise<void> {
  await sup.apply(cfg);
  const reqs = reconcile(sup.effective(cfg.desired), director.services);
  if (reqs.length > 0) director.exec({ op: "batch", requests: reqs });
}

function dests(director: Director): string[] {
  const svc = director.services.services()[0];
  return (svc?.dests ?? []).map((d) => `${d.addr}:${d.port}=${d.spec().weight}`).sort();
}

/** Poll until `cond` holds or `deadlineMs` passes; returns the time it took, or fails with the state. */
async function waitFor(what: string, deadlineMs: number, cond: () => boolean, state: () => unknown): Promise<number> {
  const t0 = performance.now();
  while (!cond()) {
    if (performance.now() - t0 > deadlineMs)
      assert.fail(`${what}: not reached within ${deadlineMs} ms; state ${JSON.stringify(state())}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return Math.round(performance.now() - t0);
}

interface HttpListener {
  close(): Promise<void>;
}

function listenHttp(host: string, port: number): Promise<HttpListener> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("Test Page\n");
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () =>
      resolve({
        close: () =>
          new Promise<void>((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      }),
    );
  });
}

/** A port free on both addresses (the DR real servers listen on the virtual port). */
async function commonPort(a: string, b: string): Promise<number> {
  for (let i = 0; i < 20; i++) {
    const first = await listenTcp(() => {}, a);
    const port = first.port;
    try {
      const second = await listenTcp(() => {}, b, port);
      await second.close();
      await first.close();
      return port;
    } catch {
      await first.close();
    }
  }
  throw new Error("No common free port on the loopback addresses");
}

test("seed 002 style (keepalived NAT, port mapping, wrr 2:1, TCP_CHECK): a killed real server leaves and comes back", async (t) => {
  const serve = (s: import("node:net").Socket) => s.end();
  let a: TcpListener = await listenTcp(serve, "127.0.0.1");
  const b = await listenTcp(serve, "127.0.0.1");
  const vport = 8080; // nothing binds the VIP here: only the table is checked
  const text = `! seed 002: NAT maps the virtual port onto the real servers' ports
virtual_server 127.0.0.100 ${vport} {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 ${a.port} {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
    real_server 127.0.0.1 ${b.port} {
        weight 1
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 0.5
        }
    }
}
`;
  const loaded = loadConfigText("/etc/keepalived/keepalived.conf", text);
  assert.ok("config" in loaded, JSON.stringify(loaded.diagnostics));
  const director = makeDirector();
  const sup = new HealthSupervisor({ executor: director, log: silentLogger });
  t.after(async () => {
    await sup.stop();
    await a.close();
    await b.close();
  });
  await applyConfig(director, sup, loaded.config);
  const both = [`127.0.0.1:${a.port}=2`, `127.0.0.1:${b.port}=1`].sort();
  assert.deepEqual(dests(director), both);
  // Wait for the first checks to pass, so the kill below needs retry + 1 failures.
  await waitFor(
    "first checks",
    5000,
    () => sup.status().every((c) => c.lastResult === "ok"),
    () => sup.status(),
  );

  // delay_loop × (retry + 1) + connect_timeout = 1 × 2 + 1 s, waited for with a 3× margin.
  const bound = 1000 * 2 + 1000;
  const aPort = a.port;
  await a.close();
  const left = await waitFor(
    "killed real server removed",
    3 * bound,
    () => dests(director).length === 1,
    () => dests(director),
  );
  assert.deepEqual(dests(director), [`127.0.0.1:${b.port}=1`]);
  t.diagnostic(`removed ${left} ms after the kill (keepalived bound ${bound} ms)`);
  assert.equal(sup.status().find((c) => c.dest === `127.0.0.1:${aPort}`)?.state, "down");

  a = await listenTcp(serve, "127.0.0.1", aPort);
  const back = await waitFor(
    "restarted real server restored",
    3 * bound,
    () => dests(director).length === 2,
    () => dests(director),
  );
  assert.deepEqual(dests(director), both, "restored with its configured weight 2");
  t.diagnostic(`restored ${back} ms after the restart`);
});

test("seed 003 style (ldirectord.cf from a file, DR, negotiate http, quiescent=no, fallback): all down → fallback in", async (t) => {
  const ra = "127.0.0.11";
  const rb = "127.0.0.12";
  const port = await commonPort(ra, rb);
  const dir = mkdtempSync(join(tmpdir(), "tvs-health-e2e-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, "ldirectord.cf");
  writeFileSync(
    file,
    `# seed 003 on loopback: VIP 127.0.0.100, real servers ${ra} and ${rb}, fallback on the director
checktimeout=1
checkinterval=1
autoreload=yes
quiescent=no
virtual=127.0.0.100:${port}
        real=${ra}:${port} gate
        real=${rb}:${port} gate
        fallback=127.0.0.1:${port} gate
        service=http
        scheduler=rr
        persistent=600
        protocol=tcp
        checktype=negotiate
        checkport=${port}
`,
  );
  const loaded = loadConfig(file);
  assert.ok("config" in loaded, JSON.stringify(loaded.diagnostics));
  let la: HttpListener | undefined = await listenHttp(ra, port);
  let lb: HttpListener | undefined = await listenHttp(rb, port);
  const director = makeDirector();
  const sup = new HealthSupervisor({ executor: director, log: silentLogger });
  t.after(async () => {
    await sup.stop();
    await la?.close();
    await lb?.close();
  });
  await applyConfig(director, sup, loaded.config);
  const real = [`${ra}:${port}=1`, `${rb}:${port}=1`];
  assert.deepEqual(dests(director), real);
  // Wait for the first checks to pass (warmup 0: they run at once).
  await waitFor(
    "first checks",
    5000,
    () => sup.status().every((c) => c.checker !== "HTTP_GET" || c.lastResult === "ok"),
    () => sup.status(),
  );

  // checkinterval × (retry + 1) + checktimeout = 1 × 1 + 1 s (ldirectord: no retries), 3× margin.
  const bound = 1000 * 1 + 1000;
  await la.close();
  la = undefined;
  const one = await waitFor(
    "first real server removed",
    3 * bound,
    () => dests(director).length === 1,
    () => dests(director),
  );
  assert.deepEqual(dests(director), [`${rb}:${port}=1`], "quiescent=no removes it");
  await lb.close();
  lb = undefined;
  const sorry = await waitFor(
    "fallback in",
    3 * bound,
    () => dests(director).includes(`127.0.0.1:${port}=1`),
    () => dests(director),
  );
  assert.deepEqual(dests(director), [`127.0.0.1:${port}=1`], "all down: only the fallback");
  assert.equal(sup.status().find((c) => c.checker === "sorry_server")?.state, "up");
  t.diagnostic(`removed after ${one} ms; fallback in ${sorry} ms after the last kill`);

  lb = await listenHttp(rb, port);
  const back = await waitFor(
    "fallback out, real server back",
    3 * bound,
    () => dests(director).join() === `${rb}:${port}=1`,
    () => dests(director),
  );
  t.diagnostic(`quorum regained ${back} ms after the restart`);
  la = await listenHttp(ra, port);
  await waitFor(
    "both back",
    3 * bound,
    () => dests(director).length === 2,
    () => dests(director),
  );
  assert.deepEqual(dests(director), real);

  // A reload of the unchanged file keeps everything (no request sent).
  const before = sup.requests;
  const again = loadConfig(file);
  assert.ok("config" in again);
  await applyConfig(director, sup, again.config);
  assert.equal(sup.requests, before);
  assert.deepEqual(dests(director), real);
});

test("a removed destination with open connections goes to the trash (the director's normal rules)", async (t) => {
  const serve = (s: import("node:net").Socket) => s.end();
  let a: TcpListener | undefined = await listenTcp(serve, "127.0.0.1");
  const b = await listenTcp(serve, "127.0.0.1");
  const text = `virtual_server 127.0.0.100 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 ${a.port} { TCP_CHECK { connect_timeout 1
 retry 0 } }
    real_server 127.0.0.1 ${b.port} { TCP_CHECK { connect_timeout 1
 retry 0 } }
}
`;
  const loaded = loadConfigText("/etc/keepalived/keepalived.conf", text);
  assert.ok("config" in loaded, JSON.stringify(loaded.diagnostics));
  const director = makeDirector();
  const sup = new HealthSupervisor({ executor: director, log: silentLogger });
  t.after(async () => {
    await sup.stop();
    await a?.close();
    await b.close();
  });
  await applyConfig(director, sup, loaded.config);
  const svc = director.services.services()[0];
  assert.ok(svc);
  const destA = svc.dests.find((d) => d.port === a?.port);
  assert.ok(destA);
  // One open connection on A (as a connection entry binds it): deleting A must move it to the trash.
  destA.bind("active");
  await a.close();
  a = undefined;
  await waitFor(
    "A removed",
    9000,
    () => svc.dests.length === 1,
    () => dests(director),
  );
  assert.ok(director.services.trash().includes(destA), "the destination with a connection is in the trash");
  assert.equal(destA.activeConns, 1, "its connection carries on");
  destA.unbind("active");
  director.services.released(destA);
  assert.equal(director.services.trash().length, 0);
});
