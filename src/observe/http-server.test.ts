import assert from "node:assert/strict";
import http from "node:http";
import { test } from "node:test";
import { silentLogger } from "../core/log.ts";
import { EventBus } from "./events.ts";
import { MAX_STREAMS, ObserveServer } from "./http-server.ts";
import { destView, mutableSource, serviceView, snapshotOf, stateOf } from "./test-state.ts";

const web = serviceView({ kind: "vip", protocol: "tcp", addr: "10.0.0.1", port: 80 }, [
  destView("192.168.0.2", 8080, { conns: 3 }),
]);

async function serve(t: import("node:test").TestContext) {
  const state = stateOf(snapshotOf([web]));
  const source = mutableSource(state);
  const events = new EventBus();
  const server = new ObserveServer({
    source,
    events,
    snapshot: (q) => {
      if (q.service !== undefined && q.service !== "tcp 10.0.0.1:80")
        throw Object.assign(new Error(`No service "${q.service}"`), { code: "ESRCH" });
      return { ...source.state.snapshot, conns: q.conns ? [] : undefined };
    },
    status: () => source.state.status,
    log: silentLogger,
    feedIntervalMs: 100,
  });
  const addr = await server.listen({ host: "127.0.0.1", port: 0 });
  t.after(() => server.close());
  return { base: `http://127.0.0.1:${addr.port}`, server, source, events };
}

function request(
  url: string,
  method: string,
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method }, (res) => {
      let body = "";
      res.on("data", (c: Buffer) => (body += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on("error", reject);
    req.end(method === "POST" || method === "PUT" ? '{"op":"flush"}' : undefined);
  });
}

/** Read an SSE stream until `until` says stop (bounded by a deadline). */
async function readSse(
  url: string,
  until: (text: string) => boolean,
  headers: Record<string, string> = {},
): Promise<string> {
  const ctl = new AbortController();
  const timer = setTimeout(() => ctl.abort(), 5000);
  let text = "";
  try {
    const res = await fetch(url, { signal: ctl.signal, headers });
    assert.match(res.headers.get("content-type") ?? "", /^text\/event-stream/);
    const reader = res.body?.getReader();
    const dec = new TextDecoder();
    while (reader) {
      const { value, done } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
      if (until(text)) break;
    }
  } finally {
    clearTimeout(timer);
    ctl.abort();
  }
  return text;
}

test("read-only: anything but GET and HEAD is refused and changes nothing", async (t) => {
  const { base, source } = await serve(t);
  for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
    const r = await request(`${base}/v1/snapshot`, method);
    assert.equal(r.status, 405, method);
    assert.equal(r.headers.allow, "GET, HEAD");
    assert.match(r.body, /read-only/);
  }
  assert.equal((await request(`${base}/v1/exec`, "POST")).status, 404);
  assert.equal((await request(`${base}/nope`, "GET")).status, 404);
  assert.equal(source.state.snapshot.services.length, 1);
});

test("JSON mirrors of the snapshot and status, with the control API's query and errors", async (t) => {
  const { base } = await serve(t);
  const snap = (await (await fetch(`${base}/v1/snapshot?conns=1`)).json()) as { services: unknown[]; conns: unknown[] };
  assert.equal(snap.services.length, 1);
  assert.deepEqual(snap.conns, []);
  const missing = await fetch(`${base}/v1/snapshot?service=${encodeURIComponent("udp 10.0.0.9:53")}`);
  assert.equal(missing.status, 404);
  assert.match(
    ((await missing.json()) as { error: { message: string } }).error.message,
    /No service "udp 10.0.0.9:53"/,
  );
  const status = (await (await fetch(`${base}/v1/status`)).json()) as { dataplane: string };
  assert.equal(status.dataplane, "proxy");
});

test("/metrics negotiates the format; the dashboard and uPlot are served from tvsd itself", async (t) => {
  const { base } = await serve(t);
  const text = await fetch(`${base}/metrics`);
  assert.match(text.headers.get("content-type") ?? "", /^text\/plain; version=0.0.4/);
  assert.match(await text.text(), /^node_ipvs_connections_total 3$/m);
  const om = await fetch(`${base}/metrics`, { headers: { accept: "application/openmetrics-text;version=1.0.0" } });
  assert.match(om.headers.get("content-type") ?? "", /^application\/openmetrics-text/);
  assert.match(await om.text(), /# EOF\n$/);
  const page = await (await fetch(`${base}/`)).text();
  assert.match(page, /<script src="\/dashboard\/uplot.js">/);
  assert.doesNotMatch(page, /https?:\/\//, "no outside resources");
  const uplot = await fetch(`${base}/dashboard/uplot.js`);
  assert.equal(uplot.status, 200);
  assert.match(await uplot.text(), /uPlot/);
  assert.equal((await fetch(`${base}/dashboard/app.js`)).status, 200);
});

test("/events streams events as SSE and replays what a reconnecting client missed", async (t) => {
  const { base, events } = await serve(t);
  events.publish({ type: "reload", message: "Reloaded: 1 change(s)" });
  const later = setTimeout(
    () => events.publish({ type: "dest-down", message: "Real server down", dest: "192.168.0.2:8080" }),
    200,
  );
  t.after(() => clearTimeout(later));
  const text = await readSse(`${base}/events`, (s) => s.includes("event: dest-down"));
  assert.match(text, /id: 1\nevent: reload\ndata: \{.*"message":"Reloaded: 1 change\(s\)"/);
  assert.match(text, /id: 2\nevent: dest-down\ndata: .*"dest":"192.168.0.2:8080"/);
  const replay = await readSse(`${base}/events`, (s) => s.includes("event: dest-down"), { "last-event-id": "1" });
  assert.doesNotMatch(replay, /event: reload/);
  const recent = (await (await fetch(`${base}/v1/events?after=1`)).json()) as { seq: number }[];
  assert.deepEqual(
    recent.map((e) => e.seq),
    [2],
  );
});

test("/dashboard/stream sends the history, then frames with per-second rates", async (t) => {
  const { base, source } = await serve(t);
  // Counters advance between samples: the frame's rate follows.
  const bump = setInterval(() => {
    const s = structuredClone(source.state);
    s.snapshot.stats.conns += 10;
    source.state = s;
  }, 50);
  t.after(() => clearInterval(bump));
  const text = await readSse(`${base}/dashboard/stream`, (s) => (s.match(/event: state/g) ?? []).length >= 3);
  assert.match(text, /^retry: 2000\n\nevent: history\ndata: \[/);
  const frames = [...text.matchAll(/event: state\ndata: (.*)\n/g)].map((m) => JSON.parse(m[1] as string));
  const last = frames.at(-1);
  assert.equal(last.services[0].id, "tcp 10.0.0.1:80");
  assert.equal(last.services[0].dests[0].dest, "192.168.0.2:8080");
  assert.ok(frames.some((f) => f.totals.rates.cps > 0));
});

test("at most MAX_STREAMS streams at once; the next gets 503", async (t) => {
  const { base } = await serve(t);
  const ctl = new AbortController();
  t.after(() => ctl.abort());
  const open: Promise<unknown>[] = [];
  for (let i = 0; i < MAX_STREAMS; i++) open.push(fetch(`${base}/events`, { signal: ctl.signal }));
  await Promise.all(open);
  const refused = await fetch(`${base}/events`);
  assert.equal(refused.status, 503);
  assert.equal(refused.headers.get("retry-after"), "5");
});

test("on loopback, a Host that is not an address of this machine gets 421 (DNS rebinding)", async (t) => {
  const { base } = await serve(t);
  const port = new URL(base).port;
  const ask = (host: string) =>
    new Promise<number>((resolve, reject) => {
      const req = http.request(`${base}/v1/snapshot`, { headers: { host } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on("error", reject);
      req.end();
    });
  assert.equal(await ask(`evil.example:${port}`), 421);
  assert.equal(await ask(`127.0.0.1:${port}`), 200);
  assert.equal(await ask(`localhost:${port}`), 200);
  assert.equal(await ask(`[::1]:${port}`), 200);
  const page = await fetch(`${base}/`);
  assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'self'/);
});

test("/metrics is gzipped when the scraper accepts it (as Prometheus does)", async (t) => {
  const { base } = await serve(t);
  const { gunzipSync } = await import("node:zlib");
  const raw = await new Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
    http
      .get(`${base}/metrics`, { headers: { "accept-encoding": "gzip" } }, (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ headers: res.headers, body: Buffer.concat(chunks) }));
      })
      .on("error", reject);
  });
  assert.equal(raw.headers["content-encoding"], "gzip");
  assert.match(gunzipSync(raw.body).toString(), /^node_ipvs_connections_total 3$/m);
});
