// The client side of the control API: `ControlClient` is what tvsadm talks to, and
// `HttpControlClient` implements it as HTTP + JSON over tvsd's Unix socket (http-exchange.ts:
// node:net, one request per connection).
// Errors come back as `ApiError` (the daemon refused: code, op, message, batch index) or
// `ControlConnectError` (no daemon listening, or it answered something that is not the API).

import { existsSync } from "node:fs";
import { dirname } from "node:path";
import type { CoreErrorCode, CoreOp } from "../../core/errors.ts";
import type { ServiceKey } from "../../core/service.ts";
import { serviceKeyId } from "../../core/service-key.ts";
import { ExchangeError, type HttpAnswer, httpExchange } from "./http-exchange.ts";
import type { ApiErrorBody, ExecRequest, FwmarkView, Snapshot, StatusView, SysctlView } from "./protocol.ts";
import { untrustedSocketDir } from "./socket-path.ts";

export interface SnapshotQuery {
  /** Include the connection entries (ipvsadm -L -c). */
  conns?: boolean;
  /** Only this service (ipvsadm -L -t VIP:PORT); the daemon answers ESRCH when it is missing. */
  service?: ServiceKey;
}

export interface ControlClient {
  /** Apply one request; throws ApiError when the daemon refuses it. */
  exec(req: ExecRequest): Promise<void>;
  snapshot(query?: SnapshotQuery): Promise<Snapshot>;
}

/** The daemon refused a request; the fields are the ApiErrorBody's. */
export class ApiError extends Error {
  readonly code: CoreErrorCode;
  readonly op: CoreOp;
  readonly index: number | undefined;
  readonly status: number;
  constructor(body: ApiErrorBody["error"], status: number) {
    super(body.message);
    this.name = "ApiError";
    this.code = body.code;
    this.op = body.op;
    this.index = body.index;
    this.status = status;
  }
}

/** Nobody answered on the socket, or the answer was not the control API. */
export class ControlConnectError extends Error {
  readonly socketPath: string;
  readonly reason: string;
  constructor(socketPath: string, reason: string) {
    super(`Cannot reach tvsd at "${socketPath}": ${reason}`);
    this.name = "ControlConnectError";
    this.socketPath = socketPath;
    this.reason = reason;
  }
}

/** The query string of GET /v1/snapshot for a query. */
export function snapshotPath(query: SnapshotQuery = {}): string {
  const params = new URLSearchParams();
  if (query.conns) params.set("conns", "1");
  if (query.service) params.set("service", serviceKeyId(query.service));
  const qs = params.toString();
  return qs === "" ? "/v1/snapshot" : `/v1/snapshot?${qs}`;
}

export interface HttpControlClientOptions {
  socketPath: string;
  /** Give up after this long (ms); default 10 s. */
  timeoutMs?: number;
}

export class HttpControlClient implements ControlClient {
  readonly socketPath: string;
  readonly #timeoutMs: number;

  constructor(opts: HttpControlClientOptions) {
    this.socketPath = opts.socketPath;
    this.#timeoutMs = opts.timeoutMs ?? 10_000;
  }

  async exec(req: ExecRequest): Promise<void> {
    await this.#call("POST", "/v1/exec", req);
  }

  async snapshot(query: SnapshotQuery = {}): Promise<Snapshot> {
    return (await this.#call("GET", snapshotPath(query))) as Snapshot;
  }

  async status(): Promise<StatusView> {
    return (await this.#call("GET", "/v1/status")) as StatusView;
  }

  async reload(): Promise<void> {
    await this.#call("POST", "/v1/reload", {});
  }

  /** Every IPVS sysctl by its kernel name; with `set`, set that one first. */
  async sysctl(set?: { name: string; value: number | string }): Promise<SysctlView> {
    return (await (set === undefined
      ? this.#call("GET", "/v1/sysctl")
      : this.#call("POST", "/v1/sysctl", set))) as SysctlView;
  }

  /** The firewall-mark rules in force and the fwmark services they feed (GET /v1/fwmark). */
  async fwmark(): Promise<FwmarkView> {
    return (await this.#call("GET", "/v1/fwmark")) as FwmarkView;
  }

  async #call(method: string, path: string, body?: unknown): Promise<unknown> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // Another user who can write the socket's directory could be listening in tvsd's place.
    const dir = dirname(this.socketPath);
    const why = existsSync(dir) ? untrustedSocketDir(dir) : undefined;
    if (why !== undefined) throw new ControlConnectError(this.socketPath, `untrusted socket directory: ${why}`);
    let answer: HttpAnswer;
    try {
      answer = await httpExchange(this.socketPath, method, path, payload, this.#timeoutMs);
    } catch (e) {
      // A socket error is reported by its code (ENOENT: no socket, ECONNREFUSED: nobody listening);
      // an answer that is not HTTP means something listens there, but it is not tvsd.
      if (!(e instanceof ExchangeError)) throw new ControlConnectError(this.socketPath, (e as Error).message);
      const reason =
        e.code === "EPROTO"
          ? `the program listening there does not speak the tvsd control API (${e.message})`
          : e.code === "ETIMEDOUT"
            ? e.message
            : e.code;
      throw new ControlConnectError(this.socketPath, reason);
    }
    const text = answer.body.toString("utf8");
    let parsed: unknown;
    try {
      parsed = text === "" ? {} : JSON.parse(text);
    } catch {
      throw new ControlConnectError(this.socketPath, `answer to ${method} ${path} is not JSON`);
    }
    const status = answer.status;
    if (status >= 200 && status < 300) return parsed;
    const err = (parsed as Partial<ApiErrorBody>).error;
    if (err && typeof err.code === "string" && typeof err.message === "string") throw new ApiError(err, status);
    throw new ControlConnectError(this.socketPath, `HTTP ${status} from ${method} ${path}`);
  }
}
