// File descriptors on the socket data plane. Every socket the plane opens (VIP listeners, the two
// sockets of a TCP relay, UDP flow sockets) is a descriptor of the one process that also serves
// the control socket, reads configuration and runs health checks. If the network could use them
// all, the kernel would refuse the control socket's accept and the operator would be locked out
// (libuv even accepts and closes at once when the limit is hit, so TCP clients and tvsadm alike
// see their connection dropped). So the plane takes descriptors from a budget and refuses new
// flows before the process reaches its limit:
//
//   budget = soft RLIMIT_NOFILE − the descriptors open when the plane starts − the reserve
//   reserve = --fd-reserve, by default an eighth of the limit, at least 64 and at most 1024
//
// The reserve is what the control plane (tvsadm and tvs connections, configuration reads, health
// checks, the log) keeps whatever the traffic does. A VIP's listener is the operator's, not the
// network's: it may also use half of the reserve, so changes and reloads still apply while
// traffic holds the whole budget (the listener's own clients then wait for room like any other). The limit is read from /proc/self/limits;
// where that does not exist (not Linux) the budget is unbounded and only the UDP flow cap holds.
// Refusals are counted (`refused`) for status and metrics.

import { readdirSync, readFileSync } from "node:fs";

/** The soft limit on open files, or undefined where it cannot be read. */
export function processFdLimit(): number | undefined {
  try {
    const text = readFileSync("/proc/self/limits", "utf8");
    const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
    if (!m) return undefined;
    return m[1] === "unlimited" ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/** Descriptors this process has open now, or undefined where that cannot be counted. */
export function openFdCount(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

/** The default reserve for the control plane: an eighth of the limit, within 64..1024. */
export function defaultFdReserve(limit: number): number {
  return Math.min(1024, Math.max(64, Math.floor(limit / 8)));
}

export interface FdBudgetOptions {
  /** The process's soft limit (default: read from /proc/self/limits). */
  processLimit?: number | undefined;
  /** Descriptors already open that the plane does not own (default: counted now). */
  baseline?: number | undefined;
  /** Descriptors kept for the control plane (default: defaultFdReserve). */
  reserve?: number | undefined;
}

export class FdBudget {
  /** Descriptors the plane may hold at once (Infinity when the process limit is unknown). */
  readonly limit: number;
  readonly reserve: number;
  #used = 0;
  #refused = 0;

  constructor(opts: FdBudgetOptions = {}) {
    const processLimit = "processLimit" in opts ? opts.processLimit : processFdLimit();
    if (processLimit === undefined) {
      this.limit = Number.POSITIVE_INFINITY;
      this.reserve = opts.reserve ?? 0;
      return;
    }
    this.reserve = opts.reserve ?? defaultFdReserve(processLimit);
    const baseline = "baseline" in opts ? (opts.baseline ?? 0) : (openFdCount() ?? 0);
    this.limit = Math.max(0, processLimit - baseline - this.reserve);
  }

  get used(): number {
    return this.#used;
  }

  /** Times a socket was refused because the budget was spent. */
  get refused(): number {
    return this.#refused;
  }

  /**
   * Take n descriptors if the budget allows; false (and counted as a refusal) when it does not.
   * `operator`: for what an operator asked for (a VIP's listener), which may also use half of the
   * reserve, so a change or a reload still applies while traffic holds the whole budget.
   */
  take(n = 1, operator = false): boolean {
    const room = operator ? this.limit + Math.floor(this.reserve / 2) : this.limit;
    if (this.#used + n > room) {
      this.#refused++;
      return false;
    }
    this.#used += n;
    return true;
  }

  give(n = 1): void {
    this.#used = Math.max(0, this.#used - n);
  }
}
