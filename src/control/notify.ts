// Running notify scripts (notify_up, notify_down, quorum_up, quorum_down, ldirectord's
// fallbackcommand) for the health supervisor. Every run is bounded: after `timeoutMs` the script
// gets SIGTERM, and SIGKILL a second later if it is still there. Runs never block health checks:
// spawn is asynchronous and at most `maxConcurrent` scripts run at once (the rest wait in a FIFO).
//
// Shell or not (keepalived's rule, decided here the same way): a command made only of words,
// blanks and '...' / "..." quoting is split into argv and run directly (execve, no shell); a
// command holding shell syntax (| & ; < > ( ) $ ` \ * ? [ ] { } ~ # or a newline) is run with
// `/bin/sh -c`, so pipelines and redirections work as operators expect. `user` / `group` are
// resolved through /etc/passwd and /etc/group and applied only when tvsd runs as root.

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import type { NotifyScript } from "../config/director-config.ts";
import type { Logger } from "../core/log.ts";

export interface NotifyOutcome {
  command: string;
  /** Exit code, or undefined when killed by a signal or not started. */
  code: number | undefined;
  signal: NodeJS.Signals | undefined;
  timedOut: boolean;
  /** Why it could not start (ENOENT, an unknown user ...). */
  error?: string;
}

export interface NotifyRunnerOptions {
  /** Kill a script after this long (default 10 s). */
  timeoutMs?: number;
  /** Most scripts running at once (default 16). */
  maxConcurrent?: number;
  log?: Logger;
}

/** How long a notify script may run before it is killed. */
export const DEFAULT_NOTIFY_TIMEOUT_MS = 10_000;

const SHELL_SYNTAX = /[|&;<>()$`\\*?[\]{}~#\n]/;

/** Whether a command needs /bin/sh (it holds shell syntax outside plain words and quotes). */
export function needsShell(command: string): boolean {
  // Characters inside single quotes are literal and do not need a shell.
  return SHELL_SYNTAX.test(command.replace(/'[^']*'/g, "''"));
}

/** Split a shell-free command into argv: blanks separate words, '...' and "..." group them. */
export function splitCommand(command: string): string[] {
  const out: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: string | undefined;
  for (const ch of command) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === "'" || ch === '"') {
      quote = ch;
      inWord = true;
    } else if (ch === " " || ch === "\t") {
      if (inWord) out.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw new Error(`Unterminated quote in command "${command}"`);
  if (inWord) out.push(cur);
  return out;
}

function lookupId(file: string, name: string): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  try {
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const f = line.split(":");
      if (f[0] === name && f[2] !== undefined) return Number(f[2]);
    }
  } catch {
    // unreadable: unknown
  }
  return undefined;
}

interface Job {
  script: NotifyScript;
  resolve: (o: NotifyOutcome) => void;
}

export class NotifyRunner {
  readonly #timeoutMs: number;
  readonly #max: number;
  readonly #log: Logger | undefined;
  readonly #queue: Job[] = [];
  readonly #running = new Set<Promise<NotifyOutcome>>();

  constructor(opts: NotifyRunnerOptions = {}) {
    this.#timeoutMs = opts.timeoutMs ?? DEFAULT_NOTIFY_TIMEOUT_MS;
    this.#max = opts.maxConcurrent ?? 16;
    this.#log = opts.log;
  }

  /** Scripts running or waiting. */
  get pending(): number {
    return this.#running.size + this.#queue.length;
  }

  /** Run a script (queued when maxConcurrent are running); resolves with how it ended, never rejects. */
  run(script: NotifyScript): Promise<NotifyOutcome> {
    return new Promise((resolve) => {
      this.#queue.push({ script, resolve });
      this.#drain();
    });
  }

  /** Resolves when nothing runs or waits (each script is bounded, so this is too). */
  async idle(): Promise<void> {
    while (this.#running.size > 0 || this.#queue.length > 0) await Promise.race(this.#running);
  }

  #drain(): void {
    while (this.#running.size < this.#max && this.#queue.length > 0) {
      const job = this.#queue.shift() as Job;
      const p = this.#spawn(job.script);
      this.#running.add(p);
      p.then((o) => {
        this.#running.delete(p);
        job.resolve(o);
        this.#drain();
      });
    }
  }

  #spawn(script: NotifyScript): Promise<NotifyOutcome> {
    const command = script.command;
    const fail = (error: string): NotifyOutcome => {
      this.#log?.warn("Notify script could not run", { command, error });
      return { command, code: undefined, signal: undefined, timedOut: false, error };
    };
    let file: string;
    let args: string[];
    try {
      if (needsShell(command)) {
        file = "/bin/sh";
        args = ["-c", command];
      } else {
        const argv = splitCommand(command);
        if (argv.length === 0) return Promise.resolve(fail(`Empty notify command "${command}"`));
        file = argv[0] as string;
        args = argv.slice(1);
      }
    } catch (e) {
      return Promise.resolve(fail(e instanceof Error ? e.message : String(e)));
    }
    const ids: { uid?: number; gid?: number } = {};
    if (script.user !== undefined && process.getuid?.() === 0) {
      const uid = lookupId("/etc/passwd", script.user);
      if (uid === undefined) return Promise.resolve(fail(`Unknown user "${script.user}"`));
      ids.uid = uid;
      if (script.group !== undefined) {
        const gid = lookupId("/etc/group", script.group);
        if (gid === undefined) return Promise.resolve(fail(`Unknown group "${script.group}"`));
        ids.gid = gid;
      }
    }
    return new Promise((resolve) => {
      let timedOut = false;
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const child = spawn(file, args, { stdio: "ignore", ...ids });
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGTERM");
        killTimer = setTimeout(() => child.kill("SIGKILL"), 1000);
      }, this.#timeoutMs);
      const finish = (o: NotifyOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        if (killTimer) clearTimeout(killTimer);
        if (o.error) this.#log?.warn("Notify script could not run", { command, error: o.error });
        else if (o.timedOut)
          this.#log?.warn("Notify script killed after its time limit", { command, timeoutMs: this.#timeoutMs });
        else if (o.code !== 0) this.#log?.warn("Notify script failed", { command, code: o.code, signal: o.signal });
        resolve(o);
      };
      child.once("error", (e: NodeJS.ErrnoException) =>
        finish({ command, code: undefined, signal: undefined, timedOut, error: e.code ?? e.message }),
      );
      child.once("exit", (code, signal) =>
        finish({ command, code: code ?? undefined, signal: signal ?? undefined, timedOut }),
      );
    });
  }
}
