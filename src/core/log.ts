// The one logging interface of tvs. Every layer that reports something takes a Logger (core only
// declares the shape: it never logs itself and has no I/O); the daemon passes the JSON-lines writer
// of control/log.ts, tests pass silentLogger or a writer of their own.

export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured fields added to one line (Errors are reduced to their message and code by the writer). */
export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line (e.g. the data plane's name). */
  child(fields: LogFields): Logger;
}

const drop = (): void => {};

/** A logger that drops everything (tests, embedded use). */
export const silentLogger: Logger = {
  debug: drop,
  info: drop,
  warn: drop,
  error: drop,
  child: () => silentLogger,
};
