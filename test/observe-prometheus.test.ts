// A real Prometheus (Debian's prometheus package) scrapes tvsd's /metrics every second; after
// traffic through a virtual service, its HTTP API reports a rate of node_ipvs_connections_total
// above 0 and the backend series under node_exporter's labels. Prometheus 2.x asks for OpenMetrics
// first, so this also proves a real parser takes that format; `promtool check metrics` checks the
// text format. Everything on loopback; Prometheus and tvsd are ended by PID.

import assert from "node:assert/strict";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { adm, freePort, nameServer, startTvsd, waitFor, whoAnswers } from "./tvsd-harness.ts";

const PROMETHEUS = "/usr/bin/prometheus";
const PROMTOOL = "/usr/bin/promtool";

async function query(
  promPort: number,
  expr: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
  const res = await fetch(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as {
    status: string;
    data: { result: { metric: Record<string, string>; value: [number, string] }[] };
  };
  assert.equal(body.status, "success", JSON.stringify(body));
  return body.data.result;
}

test(
  "Prometheus scrapes tvsd: a rate of node_ipvs_connections_total above 0 after traffic",
  { skip: !existsSync(PROMETHEUS) && "Debian's prometheus package is not installed", timeout: 60_000 },
  async (t) => {
    const a = await nameServer("alpha");
    const b = await nameServer("beta");
    t.after(() => Promise.all([a.close(), b.close()]));
    const httpPort = await freePort();
    const tvsd = await startTvsd(["--http", `127.0.0.1:${httpPort}`]);
    t.after(() => tvsd.stop());
    const vport = await freePort();
    const vip = `127.0.0.1:${vport}`;
    await adm(tvsd, "-A", "-t", vip, "-s", "rr");
    await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${a.port}`, "-m");
    await adm(tvsd, "-a", "-t", vip, "-r", `127.0.0.1:${b.port}`, "-m");

    const dir = mkdtempSync(join(tmpdir(), "tvs-prometheus-"));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const promPort = await freePort();
    writeFileSync(
      join(dir, "prometheus.yml"),
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 900ms",
        "scrape_configs:",
        "  - job_name: tvsd",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${httpPort}"]`,
        "",
      ].join("\n"),
    );
    let promLog = "";
    const prom: ChildProcess = spawn(
      PROMETHEUS,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    prom.stdout?.on("data", (c: Buffer) => (promLog += c.toString()));
    prom.stderr?.on("data", (c: Buffer) => (promLog += c.toString()));
    const promExit = new Promise<void>((r) => prom.once("exit", () => r()));
    t.after(async () => {
      if (prom.exitCode === null && prom.pid !== undefined) process.kill(prom.pid, "SIGTERM");
      await promExit;
    });

    await waitFor(
      "Prometheus to be ready",
      async () => {
        if (prom.exitCode !== null) throw new Error(`prometheus exited ${prom.exitCode}: ${promLog}`);
        try {
          return (await fetch(`http://127.0.0.1:${promPort}/-/ready`)).ok || undefined;
        } catch {
          return undefined;
        }
      },
      20_000,
    );
    // Scraped and healthy (an exposition it cannot parse gives up == 0).
    await waitFor("a successful scrape", async () => {
      const r = await query(promPort, 'up{job="tvsd"}');
      return r[0]?.value[1] === "1" || undefined;
    });

    // Traffic: 40 connections over about four seconds (bounded in count and time).
    const seen: string[] = [];
    for (let i = 0; i < 40; i++) {
      seen.push(await whoAnswers(vport));
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(new Set(seen), new Set(["alpha", "beta"]));

    const rate = await waitFor(
      "a rate of node_ipvs_connections_total above 0",
      async () => {
        const r = await query(promPort, 'rate(node_ipvs_connections_total{job="tvsd"}[10s])');
        const v = Number(r[0]?.value[1] ?? 0);
        return v > 0 ? v : undefined;
      },
      15_000,
    );
    assert.ok(rate > 0 && rate < 100, `rate ${rate}`);
    // The next scrape has every connection.
    await waitFor("node_ipvs_connections_total to reach 40", async () => {
      const total = await query(promPort, 'node_ipvs_connections_total{job="tvsd"}');
      return Number(total[0]?.value[1]) === 40 || undefined;
    });
    const backends = await query(promPort, `node_ipvs_backend_weight{local_port="${vport}",proto="TCP"}`);
    assert.deepEqual(backends.map((s) => s.metric.remote_port).sort(), [String(a.port), String(b.port)].sort());
    const perBackend = await query(promPort, `sum(tvs_backend_connections_total{local_port="${vport}"})`);
    assert.equal(Number(perBackend[0]?.value[1]), 40);

    // promtool on the text exposition.
    const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
    if (existsSync(PROMTOOL)) {
      const r = spawnSync(PROMTOOL, ["check", "metrics"], { input: text, encoding: "utf8" });
      assert.equal(r.status, 0, `promtool check metrics: ${r.stdout}${r.stderr}`);
    }
  },
);
