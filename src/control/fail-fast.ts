// tvsd fails fast. An exception nobody caught or a promise rejection nobody handled means some
// piece of the daemon stopped half-way through what it was doing: a table may be half-applied, a
// listener half-open, a health check no longer scheduled. Serving on in that unknown state is worse
// than stopping, so the daemon logs the error (with its stack) and exits with EX_SOFTWARE (70); a
// supervisor (systemd's Restart=, a container runtime) starts a fresh daemon, which rebuilds its
// state from its configuration. The exit itself is the caller's (bin/ owns process.exit).

import type { Logger } from "../core/log.ts";

/** sysexits.h EX_SOFTWARE: an internal software error, the status of every fatal tvsd exit. */
export const EXIT_SOFTWARE = 70;

/** Install the fail-fast handlers on this process; returns a function that removes them. */
export function installFailFast(log: Logger, exit: (code: number) => void): () => void {
  let failed = false;
  const fatal = (msg: string, err: unknown): void => {
    if (failed) return;
    failed = true;
    const stack = err instanceof Error ? err.stack : undefined;
    log.error(msg, { err, stack, exitCode: EXIT_SOFTWARE });
    exit(EXIT_SOFTWARE);
  };
  const onException = (err: Error): void => fatal("Uncaught exception: exiting", err);
  const onRejection = (reason: unknown): void => fatal("Unhandled rejection: exiting", reason);
  process.on("uncaughtException", onException);
  process.on("unhandledRejection", onRejection);
  return () => {
    process.off("uncaughtException", onException);
    process.off("unhandledRejection", onRejection);
  };
}
