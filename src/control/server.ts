// tvsd's control API server: HTTP + JSON on a Unix socket, routes and bodies as in api/protocol.ts.
// Every failure answers with an ApiErrorBody (code, op, message); bodies that do not parse or do not
// have the ExecRequest shape get 400 before anything touches the tables. Requests that change state
// run one at a time (a queue), so a slow one (binding VIPs) never interleaves with the next.
//
// Connections that stay silent are closed after an idle timeout, bodies nested deeper than
// MAX_JSON_DEPTH get 400, and only tvsd's own failures are logged as errors (refusals at info,
// callers hanging up at debug).
//
// The socket path: if a live daemon answers there, starting fails with a clear message; a stale
// socket file left by a crashed daemon is removed and replaced. The socket is chmod 0660 so the
// owner's group may use tvsadm.

import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { dirname } from "node:path";
import { CoreError, type CoreErrorCode, type CoreOp, isCoreError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import { BatchError } from "../core/request.ts";
import type { ApiErrorBody, ExecRequest, FwmarkView, Snapshot, StatusView, SysctlView } from "./api/protocol.ts";
import { untrustedSocketDir } from "./api/socket-path.ts";
import { checkExecRequest } from "./request-check.ts";

export interface SnapshotRequest {
  conns: boolean;
  /** A service id as serviceKeyId prints it ("tcp 127.0.0.1:80"); undefined for all. */
  service: string | undefined;
}

export interface ControlHandlers {
  exec(req: ExecRequest): Promise<void>;
  snapshot(q: SnapshotRequest): Snapshot | Promise<Snapshot>;
  status(): StatusView | Promise<StatusView>;
  reload(): Promise<void>;
  /** GET /v1/sysctl (no body) and POST /v1/sysctl {name, value}; absent: refused as not supported. */
  sysctl?(set?: { name: string; value: unknown }): Promise<SysctlView>;
  /** GET /v1/fwmark: the firewall-mark rules and the fwmark services; absent: refused as not supported. */
  fwmark?(): Promise<FwmarkView>;
}

const MAX_BODY = 16 * 1024 * 1024;

/** Deepest JSON nesting a body may have (a batch of requests needs 5). */
export const MAX_JSON_DEPTH = 32;

/** How long a control connection may stay silent before it is closed (no request in flight). */
export const CONTROL_IDLE_TIMEOUT_MS = 10_000;

export interface ControlServerOptions {
  /** Close a connection that sends nothing for this long while no request is running. */
  idleTimeoutMs?: number;
}

/**
 * The deepest nesting of arrays and objects in a JSON text, counted in one pass outside strings,
 * so a body like [[[[...]]]] is refused before JSON.parse or the shape check recurse into it.
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}

/** Did the request fail because the caller went away (not because of anything tvsd did)? */
function isHangUp(err: unknown, req: http.IncomingMessage): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return req.socket.destroyed || code === "ECONNRESET" || code === "EPIPE" || code === "ERR_STREAM_PREMATURE_CLOSE";
}

const STATUS_OF: Record<CoreErrorCode, number> = {
  EINVAL: 400,
  ERANGE: 400,
  ESRCH: 404,
  ENOENT: 404,
  EEXIST: 409,
  EBUSY: 409,
  ENOMEM: 507,
  EOPNOTSUPP: 501,
  ENODEV: 404,
};

export class HttpError extends Error {
  readonly status: number;
  readonly code: CoreErrorCode;
  readonly op: CoreOp;
  constructor(status: number, code: CoreErrorCode, op: CoreOp, message: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.op = op;
  }
}

function errorBody(err: unknown, fallbackOp: CoreOp): { status: number; body: ApiErrorBody } {
  if (err instanceof HttpError)
    return { status: err.status, body: { error: { code: err.code, op: err.op, message: err.message } } };
  if (isCoreError(err)) {
    const e: ApiErrorBody["error"] = { code: err.code, op: err.op, message: err.message };
    if (err instanceof BatchError) e.index = err.index;
    return { status: STATUS_OF[err.code] ?? 400, body: { error: e } };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error: { code: "EINVAL", op: fallbackOp, message: `Internal error: ${message}` } } };
}

/** Is a daemon answering on this socket? */
export function socketIsLive(path: string, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ path });
    const t = setTimeout(() => {
      s.destroy();
      resolve(true); // something holds it but does not answer promptly: treat as taken
    }, timeoutMs);
    s.once("connect", () => {
      clearTimeout(t);
      s.destroy();
      resolve(true);
    });
    s.once("error", () => {
      clearTimeout(t);
      resolve(false);
    });
  });
}

/**
 * Make the socket path usable: create the directory (mode 0755: the group may reach the socket,
 * nobody else may write), refuse a directory another user could tamper with, refuse a live
 * daemon's socket, replace a stale one.
 */
export async function prepareSocketPath(path: string): Promise<{ replacedStale: boolean }> {
  const dir = dirname(path);
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o755 });
  const why = untrustedSocketDir(dir);
  if (why !== undefined) throw new Error(`Refusing control socket directory: ${why}`);
  if (existsSync(path)) {
    const st = lstatSync(path);
    if (!st.isSocket()) throw new Error(`Control socket path "${path}" exists and is not a socket`);
    if (await socketIsLive(path))
      throw new Error(`Another tvsd is already running on "${path}" (stop it, or use --socket or TVS_SOCKET)`);
    unlinkSync(path);
    return { replacedStale: true };
  }
  return { replacedStale: false };
}

export class ControlServer {
  readonly #handlers: ControlHandlers;
  readonly #log: Logger;
  readonly #server: http.Server;
  #queue: Promise<unknown> = Promise.resolve();
  #path = "";

  constructor(handlers: ControlHandlers, log: Logger, opts: ControlServerOptions = {}) {
    this.#handlers = handlers;
    this.#log = log;
    const idleMs = opts.idleTimeoutMs ?? CONTROL_IDLE_TIMEOUT_MS;
    this.#server = http.createServer((req, res) => {
      // A running request may take long (binding thousands of VIPs): no idle limit meanwhile.
      req.socket.setTimeout(0);
      res.once("finish", () => req.socket.setTimeout(idleMs));
      this.#handle(req, res).catch((err) => {
        if (isHangUp(err, req)) this.#log.debug("Control client went away", { err });
        else this.#log.error("Request failed", { err });
        this.#send(res, errorBody(err, "request"));
      });
    });
    this.#server.keepAliveTimeout = 2000;
    // A connection that never sends a byte holds a descriptor of the control plane's reserve:
    // close it after idleMs (Node's own header timeout starts only with the first byte).
    this.#server.on("connection", (sock: net.Socket) => {
      sock.setTimeout(idleMs, () => sock.destroy());
    });
    this.#server.on("clientError", (err: NodeJS.ErrnoException, sock: net.Socket) => {
      this.#log.debug("Control client error", { err });
      if (sock.writable && err.code !== "ECONNRESET")
        sock.end("HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\n\r\n");
      else sock.destroy();
    });
  }

  async listen(path: string): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException) =>
        reject(new Error(`Cannot listen on control socket "${path}": ${err.code ?? err.message}`));
      this.#server.once("error", onError);
      this.#server.listen(path, () => {
        this.#server.off("error", onError);
        resolve();
      });
    });
    this.#path = path;
    chmodSync(path, 0o660);
  }

  /** Stop answering and remove the socket file. */
  async close(): Promise<void> {
    await new Promise<void>((r) => {
      this.#server.close(() => r());
      this.#server.closeAllConnections();
    });
    if (this.#path !== "") {
      try {
        unlinkSync(this.#path);
      } catch {
        // already gone
      }
    }
  }

  /** Run state-changing work one request at a time. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  #send(res: http.ServerResponse, r: { status: number; body: unknown }): void {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const text = JSON.stringify(r.body);
    res.writeHead(r.status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    res.end(text);
  }

  async #readBody(req: http.IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > MAX_BODY) throw new HttpError(413, "EINVAL", "request", `Request body larger than ${MAX_BODY} bytes`);
      chunks.push(c as Buffer);
    }
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() === "") return undefined;
    if (jsonDepth(text) > MAX_JSON_DEPTH)
      throw new HttpError(400, "EINVAL", "request", `Request body nested deeper than ${MAX_JSON_DEPTH} levels`);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new HttpError(400, "EINVAL", "request", `Request body is not JSON: ${(err as Error).message}`);
    }
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://tvsd");
    const route = `${req.method} ${url.pathname}`;
    const h = this.#handlers;
    switch (route) {
      case "POST /v1/exec": {
        let op: CoreOp = "request";
        try {
          const body = await this.#readBody(req);
          const er = checkExecRequest(body);
          if (er.op !== "batch") op = er.op;
          await this.#serial(() => h.exec(er));
          this.#send(res, { status: 200, body: { ok: true } });
        } catch (err) {
          const r = errorBody(err, op);
          // Only tvsd's own failures are errors; a refusal is the answer, a hang-up the caller's.
          if (isHangUp(err, req)) this.#log.debug("Control client went away", { route, err });
          else if (r.status >= 500 && !isCoreError(err)) this.#log.error("Request failed", { route, err });
          else this.#log.info("Request refused", { route, code: r.body.error.code, message: r.body.error.message });
          this.#send(res, r);
        }
        return;
      }
      case "GET /v1/snapshot": {
        const conns = url.searchParams.get("conns");
        const service = url.searchParams.get("service") ?? undefined;
        try {
          const body = await h.snapshot({ conns: conns === "1" || conns === "true", service });
          this.#send(res, { status: 200, body });
        } catch (err) {
          this.#send(res, errorBody(err, "get-service"));
        }
        return;
      }
      case "GET /v1/status":
        this.#send(res, { status: 200, body: await h.status() });
        return;
      case "POST /v1/reload":
        try {
          await this.#readBody(req);
          await this.#serial(() => h.reload());
          this.#send(res, { status: 200, body: { ok: true } });
        } catch (err) {
          this.#send(res, errorBody(err, "reload"));
        }
        return;
      case "GET /v1/sysctl":
      case "POST /v1/sysctl":
        try {
          const body = req.method === "POST" ? await this.#readBody(req) : undefined;
          if (!h.sysctl)
            throw new CoreError(
              "EOPNOTSUPP",
              "conn",
              "This tvsd (socket plane with --workers) cannot read or set sysctls at run time: use --sysctl",
            );
          let set: { name: string; value: unknown } | undefined;
          if (req.method === "POST") {
            const b = body as { name?: unknown; value?: unknown } | undefined;
            if (b === null || typeof b !== "object" || typeof b.name !== "string" || !("value" in b))
              throw new HttpError(400, "EINVAL", "request", 'Body must be {"name": "<sysctl>", "value": <integer>}');
            set = { name: b.name, value: b.value };
          } else req.resume();
          const view = await this.#serial(() => (h.sysctl as NonNullable<ControlHandlers["sysctl"]>)(set));
          this.#send(res, { status: 200, body: view });
        } catch (err) {
          this.#send(res, errorBody(err, "conn"));
        }
        return;
      case "GET /v1/fwmark":
        try {
          req.resume();
          if (!h.fwmark)
            throw new CoreError(
              "EOPNOTSUPP",
              "request",
              "This tvsd (socket plane with --workers) has no firewall-mark classifier: its fwmark services listen on --fwmark-addr addresses",
            );
          this.#send(res, { status: 200, body: await h.fwmark() });
        } catch (err) {
          this.#send(res, errorBody(err, "request"));
        }
        return;
      default: {
        const known = ["/v1/exec", "/v1/snapshot", "/v1/status", "/v1/reload", "/v1/sysctl", "/v1/fwmark"].includes(
          url.pathname,
        );
        req.resume();
        this.#send(res, {
          status: known ? 405 : 404,
          body: {
            error: {
              code: "EINVAL",
              op: "request",
              message: known
                ? `Method "${req.method}" not allowed on "${url.pathname}"`
                : `No such API route "${url.pathname}"`,
            },
          },
        });
      }
    }
  }
}
