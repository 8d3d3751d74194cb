// One HTTP/1.1 request and its answer over a Unix socket, on node:net alone. The CLI makes exactly
// one request per run and exits, so node:http's agent, parser and streams are start-up time spent
// for nothing (a few milliseconds per tvsadm call, which scripts make in loops). The request says
// `Connection: close`, so the answer ends where the stream ends; the body is framed by
// Content-Length, by chunked transfer coding, or by the end of the stream, as RFC 9112 §6.3 says.

import { createConnection } from "node:net";

export interface HttpAnswer {
  status: number;
  /** Header names in lower case. */
  headers: Map<string, string>;
  body: Buffer;
}

/** A network-level failure: `code` is the socket error's code (ENOENT, ECONNREFUSED, ...) or a word. */
export class ExchangeError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = "ExchangeError";
    this.code = code;
  }
}

/** Parse a complete answer (everything the server sent before closing); throws ExchangeError. */
export function parseHttpAnswer(raw: Buffer): HttpAnswer {
  const end = raw.indexOf("\r\n\r\n");
  if (end < 0) throw new ExchangeError("EPROTO", "the answer ended inside its header");
  const lines = raw.subarray(0, end).toString("latin1").split("\r\n");
  const m = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(lines[0] ?? "");
  if (!m)
    throw new ExchangeError("EPROTO", `the answer is not HTTP (${JSON.stringify((lines[0] ?? "").slice(0, 40))})`);
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  const rest = raw.subarray(end + 4);
  let body: Buffer;
  if (/\bchunked\b/i.test(headers.get("transfer-encoding") ?? "")) body = dechunk(rest);
  else if (headers.has("content-length")) {
    const n = Number(headers.get("content-length"));
    if (!Number.isInteger(n) || n < 0) throw new ExchangeError("EPROTO", "the answer has a bad Content-Length");
    if (rest.length < n) throw new ExchangeError("EPROTO", `the answer ended after ${rest.length} of ${n} bytes`);
    body = rest.subarray(0, n);
  } else body = rest;
  return { status: Number(m[1]), headers, body };
}

/** Undo chunked transfer coding (chunk extensions and trailers are skipped). */
function dechunk(data: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const eol = data.indexOf("\r\n", at);
    if (eol < 0) throw new ExchangeError("EPROTO", "the answer ended inside a chunk size");
    const size = Number.parseInt(data.subarray(at, eol).toString("latin1").split(";")[0] ?? "", 16);
    if (!Number.isInteger(size) || size < 0) throw new ExchangeError("EPROTO", "the answer has a bad chunk size");
    if (size === 0) return Buffer.concat(parts);
    if (eol + 2 + size > data.length) throw new ExchangeError("EPROTO", "the answer ended inside a chunk");
    parts.push(data.subarray(eol + 2, eol + 2 + size));
    at = eol + 2 + size + 2;
  }
}

/** Send one request to the HTTP server on `socketPath` and collect its whole answer. */
export function httpExchange(
  socketPath: string,
  method: string,
  path: string,
  payload: string | undefined,
  timeoutMs: number,
): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const fail = (e: ExchangeError): void => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(e);
    };
    const socket = createConnection({ path: socketPath });
    socket.setTimeout(timeoutMs, () => fail(new ExchangeError("ETIMEDOUT", `no answer within ${timeoutMs} ms`)));
    socket.on("error", (e: NodeJS.ErrnoException) => fail(new ExchangeError(e.code ?? "EIO", e.message)));
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("end", () => {
      if (settled) return;
      settled = true;
      socket.destroy();
      try {
        resolve(parseHttpAnswer(Buffer.concat(chunks)));
      } catch (e) {
        reject(e);
      }
    });
    socket.on("connect", () => {
      let head = `${method} ${path} HTTP/1.1\r\nHost: tvsd\r\nAccept: application/json\r\nConnection: close\r\n`;
      if (payload !== undefined) {
        head += `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n`;
      }
      socket.write(`${head}\r\n${payload ?? ""}`);
    });
  });
}
