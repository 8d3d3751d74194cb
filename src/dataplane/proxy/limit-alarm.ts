// A log line for a limit that refuses work (file descriptors, the UDP flow cap): written at once
// the first time, then at most once per interval with how many refusals happened since, so a flood
// produces a few lines a minute that say what is going on instead of one per packet or none.

import type { Logger } from "../../core/log.ts";

export class LimitAlarm {
  readonly #log: Logger;
  readonly #level: "warn" | "error";
  readonly #msg: string;
  readonly #intervalMs: number;
  readonly #now: () => number;
  #last = Number.NEGATIVE_INFINITY;
  #since = 0;

  constructor(log: Logger, level: "warn" | "error", msg: string, intervalMs = 10_000, now = () => Date.now()) {
    this.#log = log;
    this.#level = level;
    this.#msg = msg;
    this.#intervalMs = intervalMs;
    this.#now = now;
  }

  /** One refusal; logs when the interval since the last line has passed. */
  hit(fields: Record<string, unknown> = {}): void {
    this.#since++;
    const t = this.#now();
    if (t - this.#last < this.#intervalMs) return;
    this.#last = t;
    this.#log[this.#level](this.#msg, { ...fields, refusedSinceLastLine: this.#since });
    this.#since = 0;
  }
}
