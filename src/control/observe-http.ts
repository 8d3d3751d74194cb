// Starts tvsd's read-only HTTP endpoint (observe/) for tvsd-main: resolves --http (loopback 7420 by
// default, "none" to turn it off), binds, and logs where it serves. An address other than loopback
// is served only when given, and logged as a warning. When the default port is taken (another tvsd
// on this machine) tvsd warns and runs without it; an explicit --http that cannot bind stops the
// start with the reason.

import { DEFAULT_CONN_LIMIT } from "../core/conn/conn-table.ts";
import type { Logger } from "../core/log.ts";
import { EventBus } from "../observe/events.ts";
import {
  DEFAULT_HTTP_HOST,
  DEFAULT_HTTP_PORT,
  formatHttpAddress,
  type HttpAddress,
  parseHttpAddress,
} from "../observe/http-address.ts";
import { ObserveServer } from "../observe/http-server.ts";
import type { RuntimeView } from "../observe/source.ts";
import type { Snapshot } from "./api/protocol.ts";
import type { Daemon } from "./daemon.ts";
import { daemonObserveSource, observeSource } from "./observe-source.ts";
import type { ControlHandlers } from "./server.ts";

export const TVS_VERSION = "0.1.0";

/** --http's value: undefined (default address), "none"/"off", or an address; throws on a bad one. */
export function resolveHttp(arg: string | undefined): { addr: HttpAddress | undefined; explicit: boolean } {
  if (arg === undefined)
    return { addr: { host: DEFAULT_HTTP_HOST, port: DEFAULT_HTTP_PORT, loopback: true }, explicit: false };
  return { addr: parseHttpAddress(arg), explicit: true };
}

export interface HttpDeps {
  /** The daemon in this process (single process); absent with --workers on the socket plane. */
  daemon?: Daemon;
  control: ControlHandlers;
  log: Logger;
  /** Without a daemon in this process (socket plane --workers N): the workers and their table limit. */
  workers?: number;
  connLimit?: number;
}

/**
 * What can be said of the workers' tables from their summed snapshot: entries as the connections
 * the real servers hold (templates not counted), the limit as each worker's times the workers.
 * Refusals are not reported across workers (0).
 */
function poolRuntime(snap: Snapshot, workers: number, connLimit: number): RuntimeView {
  let entries = 0;
  for (const s of snap.services) for (const d of s.dests) entries += d.activeConns + d.inactConns;
  return { connEntries: entries, connLimit: connLimit * workers, connRefused: 0, openFlows: entries, workers };
}

/** Serve; resolves undefined when not served (turned off, or the default port is taken). */
export async function startHttp(arg: string | undefined, deps: HttpDeps): Promise<ObserveServer | undefined> {
  const { addr, explicit } = resolveHttp(arg);
  const log = deps.log.child({ part: "http" });
  if (!addr) {
    log.info("HTTP metrics and dashboard turned off (--http none)");
    return undefined;
  }
  const d = deps.daemon;
  const server = new ObserveServer({
    source: d
      ? daemonObserveSource(d)
      : observeSource({
          snapshot: (q) => deps.control.snapshot(q),
          status: () => deps.control.status(),
          runtime: (snap) => poolRuntime(snap, deps.workers ?? 1, deps.connLimit ?? DEFAULT_CONN_LIMIT),
        }),
    events: d ? d.events : new EventBus(),
    snapshot: (q) => deps.control.snapshot(q),
    status: () => deps.control.status(),
    log,
    version: TVS_VERSION,
  });
  try {
    const bound = await server.listen(addr);
    const where = formatHttpAddress({ host: addr.host, port: bound.port });
    if (addr.loopback) log.info("Serving metrics and dashboard", { http: where, url: `http://${where}/` });
    else
      log.warn("Serving metrics and dashboard on a non-loopback address: anyone who reaches it can read them", {
        http: where,
      });
    return server;
  } catch (err) {
    await server.close().catch(() => {});
    if (explicit) throw err;
    log.warn("Default HTTP port is taken: metrics and dashboard not served (give --http ADDR:PORT)", {
      http: formatHttpAddress(addr),
      err,
    });
    return undefined;
  }
}
