// tvsd's --http endpoint end to end: where it listens (given, refused when taken, turned off), the
// events a reload and tvsadm changes publish, and the connection sync daemon in the metrics.

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { adm, freePort, nameServer, startTvsd, waitFor, whoAnswers } from "./tvsd-harness.ts";

function sample(text: string, re: RegExp): number | undefined {
  const m = re.exec(text);
  return m ? Number(m[1]) : undefined;
}

test("--http ADDR:PORT serves; the ready line names it; a service added shows as an event and in /metrics", async (t) => {
  const port = await freePort();
  const tvsd = await startTvsd(["--http", `127.0.0.1:${port}`]);
  t.after(() => tvsd.stop());
  const ready = tvsd.logs.find((l) => l.msg === "tvsd ready");
  assert.equal(ready?.http, `127.0.0.1:${port}`);
  const vport = await freePort();
  await adm(tvsd, "-A", "-t", `127.0.0.1:${vport}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${vport}`, "-r", "127.0.0.1:9", "-m", "-w", "3");
  const events = (await (await fetch(`http://127.0.0.1:${port}/v1/events`)).json()) as {
    type: string;
    service?: string;
  }[];
  assert.ok(events.some((e) => e.type === "service-added" && e.service === `tcp 127.0.0.1:${vport}`));
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  assert.equal(
    sample(
      text,
      new RegExp(
        `^node_ipvs_backend_weight\\{local_address="127.0.0.1",local_port="${vport}",proto="TCP",local_mark="",remote_address="127.0.0.1",remote_port="9"\\} (\\d+)$`,
        "m",
      ),
    ),
    3,
  );
  // The socket plane's descriptor budget is exported: it holds at least the VIP's listener.
  assert.ok((sample(text, /^tvs_dataplane_fds (\d+)$/m) ?? 0) >= 1);
  assert.ok((sample(text, /^tvs_dataplane_fd_reserve (\d+)$/m) ?? 0) >= 64);
  await adm(tvsd, "-D", "-t", `127.0.0.1:${vport}`);
  const after = (await (await fetch(`http://127.0.0.1:${port}/v1/events`)).json()) as { type: string }[];
  assert.equal(after.at(-1)?.type, "service-removed");
  assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`, { method: "POST" })).status, 405);
});

test("an explicit --http whose port is taken stops the start with the reason", async (t) => {
  const holder = net.createServer();
  await new Promise<void>((r) => holder.listen(0, "127.0.0.1", () => r()));
  t.after(() => new Promise<void>((r) => holder.close(() => r())));
  const port = (holder.address() as net.AddressInfo).port;
  await assert.rejects(
    startTvsd(["--http", `127.0.0.1:${port}`]),
    new RegExp(`Cannot serve HTTP on 127.0.0.1:${port}: EADDRINUSE`),
  );
});

test("a bad --http is a usage error naming the value; --http none serves nothing", async (t) => {
  await assert.rejects(startTvsd(["--http", "127.0.0.1:99999"]), /Invalid --http port "99999" in "127.0.0.1:99999"/);
  const tvsd = await startTvsd(["--http", "none"]);
  t.after(() => tvsd.stop());
  assert.equal(tvsd.logs.find((l) => l.msg === "tvsd ready")?.http, undefined);
  assert.ok(tvsd.logs.some((l) => l.msg === "HTTP metrics and dashboard turned off (--http none)"));
});

test("the connection sync daemon appears in the metrics with its counters", async (t) => {
  const port = await freePort();
  const tvsd = await startTvsd(["--http", `127.0.0.1:${port}`]);
  t.after(() => tvsd.stop());
  await adm(tvsd, "--start-daemon", "master", "--mcast-interface", "lo", "--syncid", "7");
  const text = await waitFor("the sync master in /metrics", async () => {
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return /tvs_sync_messages_sent_total\{role="master",syncid="7",interface="lo"\} \d+/.test(body) ? body : undefined;
  });
  assert.equal(sample(text, /^tvs_sync_daemon_running\{role="master",syncid="7",interface="lo"\} (\d+)$/m), 1);
  await adm(tvsd, "--stop-daemon", "master");
  const events = (await (await fetch(`http://127.0.0.1:${port}/v1/events`)).json()) as {
    type: string;
    message: string;
  }[];
  assert.deepEqual(
    events.filter((e) => e.type === "sync-state").map((e) => e.message),
    ["Sync master daemon started on lo (syncid 7)", "Sync master daemon stopped"],
  );
});

test("a reload (SIGHUP) and a refused reload are events on /events", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "tvs-observe-rules-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const vport = await freePort();
  const rules = join(dir, "rules");
  writeFileSync(rules, `-A -t 127.0.0.1:${vport} -s rr\n`);
  const port = await freePort();
  const tvsd = await startTvsd(["--rules", rules, "--http", `127.0.0.1:${port}`]);
  t.after(() => tvsd.stop());
  const events = async () =>
    (await (await fetch(`http://127.0.0.1:${port}/v1/events`)).json()) as { type: string; message: string }[];
  writeFileSync(rules, `-A -t 127.0.0.1:${vport} -s rr\n-a -t 127.0.0.1:${vport} -r 127.0.0.1:9 -m\n`);
  tvsd.proc.kill("SIGHUP");
  const reload = await waitFor("a reload event", async () => (await events()).find((e) => e.type === "reload"));
  assert.match(reload.message, /Reloaded rules .*: 1 change\(s\)/);
  writeFileSync(rules, "-A -t nonsense\n");
  tvsd.proc.kill("SIGHUP");
  const refused = await waitFor("a reload-refused event", async () =>
    (await events()).find((e) => e.type === "reload-refused"),
  );
  assert.match(refused.message, /^Reload refused: /);
});

test("with --workers N on the socket plane the metrics sum the workers", async (t) => {
  const rs = await nameServer("alpha");
  t.after(() => rs.close());
  const port = await freePort();
  const tvsd = await startTvsd(["--workers", "2", "--http", `127.0.0.1:${port}`]);
  t.after(() => tvsd.stop());
  const vport = await freePort();
  await adm(tvsd, "-A", "-t", `127.0.0.1:${vport}`, "-s", "rr");
  await adm(tvsd, "-a", "-t", `127.0.0.1:${vport}`, "-r", `127.0.0.1:${rs.port}`, "-m");
  for (let i = 0; i < 6; i++) assert.equal(await whoAnswers(vport), "alpha");
  const text = await waitFor("six connections in /metrics", async () => {
    const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    return sample(body, /^node_ipvs_connections_total (\d+)$/m) === 6 ? body : undefined;
  });
  assert.equal(sample(text, /^tvs_dataplane_workers (\d+)$/m), 2);
  assert.equal(sample(text, /^tvs_connection_table_limit (\d+)$/m), 2 * 1048576);
});
