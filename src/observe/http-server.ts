// tvsd's read-only HTTP endpoint (--http, 127.0.0.1:7420 by default): Prometheus /metrics, the live
// dashboard at /, its SSE feed, the event stream /events, and JSON mirrors of the control API's
// snapshot and status under /v1/. Only GET and HEAD are answered; every change to the director stays
// on the 0660 Unix control socket, so whoever reaches this port can look but never touch.
//
// Bounded: at most MAX_STREAMS SSE clients at once (503 beyond), request headers time out, and every
// stream is closed with the server. Static files are read once at start (the dashboard's HTML, CSS
// and script from src/observe/dashboard/, uPlot from node_modules): no CDN, no internet.

import { readFileSync } from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { gzip } from "node:zlib";
import type { Logger } from "../core/log.ts";
import { DashboardFeed } from "./dashboard-feed.ts";
import type { EventBus, TvsEvent } from "./events.ts";
import { formatHttpAddress, type HttpAddress, isLoopback } from "./http-address.ts";
import { MetricsExporter, wantsOpenMetrics } from "./metrics.ts";
import type { ObserveSource } from "./source.ts";

export const MAX_STREAMS = 64;
const gzipAsync = promisify(gzip);
/** Fastest zlib level: on exposition text it gives nearly level 6's size (about 27× smaller) at a fraction of the time. */
const GZIP_LEVEL = 1;
/** SSE comment lines keep idle streams (and proxies in between) open. */
const HEARTBEAT_MS = 15_000;

export interface ObserveServerOptions {
  source: ObserveSource;
  events: EventBus;
  /** The control API's snapshot with a query (for /v1/snapshot?conns=1&service=ID). */
  snapshot: (q: { conns: boolean; service: string | undefined }) => unknown;
  status: () => unknown;
  log: Logger;
  version?: string;
  feedIntervalMs?: number;
}

interface Asset {
  type: string;
  body: Buffer;
}

function loadAssets(): Map<string, Asset> {
  const dir = join(import.meta.dirname, "dashboard");
  const require = createRequire(import.meta.url);
  const file = (p: string) => readFileSync(p);
  return new Map<string, Asset>([
    ["/", { type: "text/html; charset=utf-8", body: file(join(dir, "index.html")) }],
    ["/dashboard/app.js", { type: "text/javascript; charset=utf-8", body: file(join(dir, "app.js")) }],
    ["/dashboard/style.css", { type: "text/css; charset=utf-8", body: file(join(dir, "style.css")) }],
    [
      "/dashboard/uplot.js",
      { type: "text/javascript; charset=utf-8", body: file(require.resolve("uplot/dist/uPlot.iife.min.js")) },
    ],
    [
      "/dashboard/uplot.css",
      { type: "text/css; charset=utf-8", body: file(require.resolve("uplot/dist/uPlot.min.css")) },
    ],
  ]);
}

const ROUTES = ["/metrics", "/events", "/dashboard/stream", "/v1/snapshot", "/v1/status", "/v1/events", "/healthz"];

export class ObserveServer {
  readonly #o: ObserveServerOptions;
  readonly #server: http.Server;
  readonly #assets: Map<string, Asset>;
  readonly metrics: MetricsExporter;
  readonly feed: DashboardFeed;
  readonly #streams = new Set<http.ServerResponse>();
  #heartbeat: NodeJS.Timeout | undefined;
  #address: HttpAddress | undefined;

  constructor(o: ObserveServerOptions) {
    this.#o = o;
    this.#assets = loadAssets();
    this.metrics = new MetricsExporter(o.source, {
      subscribe: (l) => o.events.subscribe(l),
      ...(o.version !== undefined ? { version: o.version } : {}),
    });
    this.feed = new DashboardFeed(o.source, {
      ...(o.feedIntervalMs !== undefined ? { intervalMs: o.feedIntervalMs } : {}),
      onError: (err) => o.log.warn("Dashboard feed cannot read the daemon", { err }),
    });
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err) => {
        o.log.error("HTTP request failed", { url: req.url, err });
        if (!res.headersSent) this.#text(res, 500, `Internal error: ${(err as Error).message}\n`);
        else res.destroy();
      });
    });
    this.#server.headersTimeout = 10_000;
    this.#server.requestTimeout = 30_000;
    this.#server.keepAliveTimeout = 5_000;
  }

  /** Bind; rejects with the address and the system's reason (EADDRINUSE, EADDRNOTAVAIL, EACCES). */
  async listen(addr: { host: string; port: number }): Promise<HttpAddress> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(
          Object.assign(new Error(`Cannot serve HTTP on ${formatHttpAddress(addr)}: ${err.code ?? err.message}`), {
            code: err.code,
          }),
        );
      this.#server.once("error", onError);
      this.#server.listen(addr.port, addr.host, () => {
        this.#server.off("error", onError);
        resolve();
      });
    });
    const a = this.#server.address() as AddressInfo;
    this.#address = { host: addr.host, port: a.port, loopback: isLoopback(addr.host) };
    this.feed.start();
    this.#heartbeat = setInterval(() => {
      for (const s of this.#streams) s.write(": keep-alive\n\n");
    }, HEARTBEAT_MS);
    this.#heartbeat.unref?.();
    return this.#address;
  }

  get address(): HttpAddress | undefined {
    return this.#address;
  }

  async close(): Promise<void> {
    if (this.#heartbeat) clearInterval(this.#heartbeat);
    this.feed.stop();
    this.metrics.close();
    for (const s of this.#streams) s.end();
    this.#streams.clear();
    await new Promise<void>((r) => {
      this.#server.close(() => r());
      this.#server.closeAllConnections();
    });
  }

  #text(res: http.ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
    res.writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      "content-length": Buffer.byteLength(text),
      ...headers,
    });
    res.end(text);
  }

  #json(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(text),
      "cache-control": "no-store",
    });
    res.end(req.method === "HEAD" ? undefined : text);
  }

  /**
   * On loopback, only Host headers that name an address of this machine (or localhost) are served:
   * a web page a browser opened elsewhere cannot point a DNS name at 127.0.0.1 (DNS rebinding) and
   * read the director's table through the operator's browser. Another bind address (given with
   * --http) is reached by whatever name the operator uses.
   */
  #hostAllowed(host: string | undefined): boolean {
    if (!this.#address?.loopback) return true;
    if (host === undefined) return true; // HTTP/1.0 clients (and curl -H "Host:") send none
    const m = /^(?:\[([^\]]+)\]|([^:]+))(?::\d+)?$/.exec(host);
    const name = (m?.[1] ?? m?.[2] ?? "").toLowerCase();
    return name === "localhost" || isLoopback(name) || name === this.#address.host.toLowerCase();
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://tvsd");
    const path = url.pathname;
    const known = this.#assets.has(path) || ROUTES.includes(path);
    if (!this.#hostAllowed(req.headers.host)) {
      req.resume();
      this.#text(
        res,
        421,
        `Host "${req.headers.host ?? ""}" is not this loopback endpoint; use http://${formatHttpAddress(this.#address ?? { host: "127.0.0.1", port: 0 })}/\n`,
      );
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      req.resume();
      this.#text(
        res,
        known ? 405 : 404,
        known
          ? `Method "${req.method}" not allowed on "${path}": this port is read-only (changes go through the control socket)\n`
          : `No such page "${path}"\n`,
        known ? { allow: "GET, HEAD" } : {},
      );
      return;
    }
    const asset = this.#assets.get(path);
    if (asset) {
      res.writeHead(200, {
        "content-type": asset.type,
        "content-length": asset.body.length,
        "cache-control": "no-cache",
        "x-content-type-options": "nosniff",
        // Everything comes from tvsd itself; nothing may frame the page.
        "content-security-policy":
          "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
        "x-frame-options": "DENY",
      });
      res.end(req.method === "HEAD" ? undefined : asset.body);
      return;
    }
    switch (path) {
      case "/metrics": {
        const { contentType, body } = await this.metrics.scrape(wantsOpenMetrics(req.headers.accept));
        // Prometheus asks for gzip; a large table's 16 MB of text is then about 600 KB on the wire,
        // compressed on libuv's thread pool rather than the event loop.
        const gzipped = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? "")) && body.length > 4096;
        const bytes = gzipped ? await gzipAsync(body, { level: GZIP_LEVEL }) : Buffer.from(body);
        res.writeHead(200, {
          "content-type": contentType,
          "content-length": bytes.length,
          ...(gzipped ? { "content-encoding": "gzip" } : {}),
          vary: "Accept, Accept-Encoding",
        });
        res.end(req.method === "HEAD" ? undefined : bytes);
        return;
      }
      case "/healthz":
        this.#text(res, 200, "ok\n");
        return;
      case "/v1/snapshot": {
        const conns = url.searchParams.get("conns");
        const service = url.searchParams.get("service") ?? undefined;
        try {
          this.#json(req, res, 200, await this.#o.snapshot({ conns: conns === "1" || conns === "true", service }));
        } catch (err) {
          const code = (err as { code?: string }).code;
          this.#json(req, res, code === "ESRCH" ? 404 : 500, {
            error: { code: code ?? "EINVAL", op: "get-service", message: (err as Error).message },
          });
        }
        return;
      }
      case "/v1/status":
        this.#json(req, res, 200, await this.#o.status());
        return;
      case "/v1/events": {
        const after = Number(url.searchParams.get("after") ?? 0);
        this.#json(req, res, 200, this.#o.events.recent(Number.isFinite(after) ? after : 0));
        return;
      }
      case "/events":
        this.#eventStream(req, res, url);
        return;
      case "/dashboard/stream":
        this.#dashboardStream(req, res);
        return;
      default:
        this.#text(res, 404, `No such page "${path}"\n`);
    }
  }

  /** Start an SSE response, or refuse with 503 when MAX_STREAMS are open. */
  #openStream(req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (this.#streams.size >= MAX_STREAMS) {
      this.#text(res, 503, `Too many open streams (${MAX_STREAMS}); close a dashboard and retry\n`, {
        "retry-after": "5",
      });
      return false;
    }
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    if (req.method === "HEAD") {
      res.end();
      return false;
    }
    req.socket.setNoDelay(true);
    req.socket.setTimeout(0);
    this.#streams.add(res);
    res.write("retry: 2000\n\n");
    return true;
  }

  /** /events: every event as `id: SEQ`, `event: TYPE`, `data: JSON`; Last-Event-ID (or ?since=) replays the missed ones. */
  #eventStream(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    if (!this.#openStream(req, res)) return;
    const send = (e: TvsEvent) => res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
    const last = Number(req.headers["last-event-id"] ?? url.searchParams.get("since") ?? Number.NaN);
    const replay = Number.isFinite(last) ? this.#o.events.recent(last) : this.#o.events.recent().slice(-50);
    for (const e of replay) send(e);
    const off = this.#o.events.subscribe(send);
    res.on("close", () => {
      off();
      this.#streams.delete(res);
    });
  }

  /** /dashboard/stream: `history` once (the charts' last minutes), then a `state` frame every second. */
  #dashboardStream(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (!this.#openStream(req, res)) return;
    res.write(`event: history\ndata: ${JSON.stringify(this.feed.history())}\n\n`);
    const off = this.feed.subscribe((json) => res.write(`event: state\ndata: ${json}\n\n`));
    res.on("close", () => {
      off();
      this.#streams.delete(res);
    });
    // A frame right away rather than up to a second later.
    void this.feed.tick();
  }
}
