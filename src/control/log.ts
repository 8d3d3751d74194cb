// JSON-lines logging for tvsd: one object per line on stderr with time (ISO 8601), level, msg and
// any fields the caller adds. Errors in fields are reduced to their message (and code) so every
// line stays valid JSON. A child logger carries fixed fields (e.g. the data plane's name). The
// interface it implements is core/log.ts, the one every layer imports.

import type { LogFields, Logger, LogLevel } from "../core/log.ts";

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LoggerOptions {
  /** Where a finished line goes (default: process.stderr). */
  write?: (line: string) => void;
  /** Lowest level written (default info; TVS_LOG_LEVEL overrides in tvsd-main). */
  level?: LogLevel;
  /** Wall-clock source for the time field (tests may fix it). */
  now?: () => Date;
}

export function isLogLevel(s: string): s is LogLevel {
  return s in RANK;
}

function plain(v: unknown): unknown {
  if (v instanceof Error) {
    const code = (v as { code?: unknown }).code;
    return code === undefined ? v.message : { message: v.message, code };
  }
  if (typeof v === "bigint") return v.toString();
  return v;
}

export function createLogger(opts: LoggerOptions = {}, base: LogFields = {}): Logger {
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const min = RANK[opts.level ?? "info"];
  const now = opts.now ?? (() => new Date());
  const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
    if (RANK[level] < min) return;
    const rec: Record<string, unknown> = { time: now().toISOString(), level, msg };
    for (const [k, v] of Object.entries(base)) rec[k] = plain(v);
    if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) rec[k] = plain(v);
    let line: string;
    try {
      line = JSON.stringify(rec);
    } catch {
      line = JSON.stringify({ time: rec.time, level, msg, note: "Fields could not be serialised" });
    }
    write(`${line}\n`);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(opts, { ...base, ...fields }),
  };
}
