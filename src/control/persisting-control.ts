// The control API's handlers with the live table written to the --state-file after every change:
// a tvsadm request, a reload, a health transition (persist() from the daemon's events) and stop.
// A request is answered only after its table is on disk, so a tvsd killed right after tvsadm
// returns still comes back with the change. It wraps any ControlHandlers (one daemon, or the
// socket plane's worker pool), since the saved text comes from the same snapshot tvsadm -S reads.
//
// The saved text is the table as `tvsadm -S -n` prints it (with -x/-y); the formatter is tvsadm's
// own, handed in by bin/tvsd.ts (control does not import the CLI).
//
// It also remembers the requests made through the control API since the last load (start or
// reload) of --rules/--config: a reload that changes the table while there are some has replaced
// what tvsadm did, and the log says so, naming them.

import { CoreError } from "../core/errors.ts";
import type { Logger } from "../core/log.ts";
import type { ExecRequest, FwmarkView, Snapshot, StatusView, SysctlView } from "./api/protocol.ts";
import type { ControlHandlers, SnapshotRequest } from "./server.ts";
import type { StateFile } from "./state-file.ts";

const ALL: SnapshotRequest = { conns: false, service: undefined };

/** Requests that change what ipvsadm -S prints (not -Z, --set, sync daemons). */
const TABLE_OPS = new Set([
  "add-service",
  "edit-service",
  "del-service",
  "flush",
  "add-dest",
  "edit-dest",
  "del-dest",
  "batch",
]);

/** At most this many of the tvsadm requests since the last load are named in the log. */
const NAMED_CHANGES = 20;

/** "add-service tcp 10.0.0.1:80" and the like, for the log. */
function describe(req: ExecRequest): string {
  if (req.op === "batch") return `batch of ${req.requests.length}`;
  const key = "key" in req && req.key ? req.key : undefined;
  if (!key) return req.op;
  const svc = key.kind === "fwmark" ? `fwmark ${key.fwmark}` : `${key.protocol} ${key.addr}:${key.port}`;
  return `${req.op} ${svc}`;
}

export class PersistingControl implements ControlHandlers {
  readonly #inner: ControlHandlers;
  readonly #state: StateFile | undefined;
  readonly #log: Logger;
  readonly #saveText: (snap: Snapshot) => string;
  /** Control API requests that changed the table since the last load. */
  #sinceLoad: string[] = [];

  constructor(inner: ControlHandlers, state: StateFile | undefined, log: Logger, saveText: (snap: Snapshot) => string) {
    this.#inner = inner;
    this.#saveText = saveText;
    this.#state = state;
    this.#log = log;
  }

  async exec(req: ExecRequest): Promise<void> {
    await this.#inner.exec(req);
    if (TABLE_OPS.has(req.op)) {
      this.#sinceLoad.push(describe(req));
      await this.persist();
    }
  }

  snapshot(q: SnapshotRequest): Snapshot | Promise<Snapshot> {
    return this.#inner.snapshot(q);
  }

  status(): StatusView | Promise<StatusView> {
    return this.#inner.status();
  }

  /** Sysctls are not part of the table: not persisted (give them to tvsd as --sysctl). */
  async sysctl(set?: { name: string; value: unknown }): Promise<SysctlView> {
    if (!this.#inner.sysctl)
      throw new CoreError(
        "EOPNOTSUPP",
        "conn",
        "This tvsd (socket plane with --workers) cannot read or set sysctls at run time: use tvsd --sysctl",
      );
    return this.#inner.sysctl(set);
  }

  /** The firewall-mark rules are not part of the table: not persisted (they come from tvsd's options). */
  async fwmark(): Promise<FwmarkView> {
    if (!this.#inner.fwmark)
      throw new CoreError(
        "EOPNOTSUPP",
        "request",
        "This tvsd (socket plane with --workers) has no firewall-mark classifier: its fwmark services listen on --fwmark-addr addresses",
      );
    return this.#inner.fwmark();
  }

  async reload(): Promise<void> {
    const before = this.#sinceLoad.length > 0 ? this.#saveText(await this.#inner.snapshot(ALL)) : undefined;
    await this.#inner.reload();
    if (before !== undefined) {
      const after = this.#saveText(await this.#inner.snapshot(ALL));
      if (after !== before) {
        const n = this.#sinceLoad.length;
        this.#log.warn(
          `Reload replaced ${n} change(s) made with tvsadm since the last load; the configuration file wins (put them in the file to keep them)`,
          { discarded: this.#sinceLoad.slice(0, NAMED_CHANGES), more: Math.max(0, n - NAMED_CHANGES) || undefined },
        );
      }
    }
    this.#sinceLoad = [];
    await this.persist();
  }

  /** The table was loaded from the source (start): later tvsadm changes count from here. */
  markLoaded(): void {
    this.#sinceLoad = [];
  }

  /**
   * Write the live table to the state file, when there is one. A failed write (disk full, the
   * directory gone) is logged as an error and leaves the previous file whole; the change itself
   * stands, so the request is not reported as refused.
   */
  async persist(): Promise<void> {
    if (!this.#state) return;
    try {
      await this.#state.save(this.#saveText(await this.#inner.snapshot(ALL)));
    } catch (err) {
      this.#log.error("Cannot write the state file; it keeps the previous table", {
        file: this.#state.path,
        err: (err as Error).message,
      });
    }
  }

  /**
   * The first write, at start: always written (even when the text is what the file holds), and a
   * failure throws, so a state file that cannot be kept (no such directory, a read-only file
   * system) stops the start instead of failing quietly at every change.
   */
  async persistAtStart(): Promise<void> {
    if (!this.#state) return;
    const text = this.#saveText(await this.#inner.snapshot(ALL));
    try {
      await this.#state.save(text, true);
    } catch (err) {
      throw new Error(
        `Cannot write the state file "${this.#state.path}" (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      );
    }
  }
}
