// Running commands for the lab: a promise around execFile with a bounded timeout, an error that
// says which command failed and what it printed, and the same inside a network namespace.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";

export interface RunResult {
  stdout: string;
  stderr: string;
  /** Raw stdout when run with encoding "buffer". */
  stdoutBytes?: Buffer;
}

export interface RunOptions {
  timeoutMs?: number;
  input?: string;
  env?: NodeJS.ProcessEnv;
  encoding?: "utf8" | "buffer";
}

export class CommandError extends Error {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
  constructor(cmd: string, code: number | null, stdout: string, stderr: string) {
    super(`Command "${cmd}" failed (exit ${code ?? "signal"}): ${stderr.trim() || stdout.trim()}`);
    this.name = "CommandError";
    this.stdout = stdout;
    this.stderr = stderr;
    this.code = code;
  }
}

/** Run a command to completion (default limit 30 s). Rejects with CommandError on failure. */
export function run(file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      file,
      args,
      {
        timeout: opts.timeoutMs ?? 30_000,
        maxBuffer: 64 << 20,
        env: opts.env ?? process.env,
        encoding: opts.encoding === "buffer" ? "buffer" : "utf8",
      },
      (err, stdout: string | Buffer, stderr: string | Buffer) => {
        if (err) {
          const code = typeof (err as { code?: unknown }).code === "number" ? (err as { code: number }).code : null;
          reject(new CommandError([file, ...args].join(" "), code, String(stdout), String(stderr)));
        } else if (Buffer.isBuffer(stdout)) resolve({ stdout: "", stderr: String(stderr), stdoutBytes: stdout });
        else resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (opts.input !== undefined) child.stdin?.end(opts.input);
  });
}

/** Run a command inside a network namespace. */
export function runIn(ns: string, file: string, args: readonly string[], opts: RunOptions = {}): Promise<RunResult> {
  return run("ip", ["netns", "exec", ns, file, ...args], opts);
}

/** `ip` inside a namespace. */
export function ipIn(ns: string, ...args: string[]): Promise<RunResult> {
  return run("ip", ["-n", ns, ...args]);
}

/**
 * Start a long-running process inside a namespace; the caller ends it by PID. With `logFile` its
 * output goes to that file and the process is detached, so it outlives the lab command (--keep).
 */
export function spawnIn(
  ns: string,
  file: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  logFile?: string,
): ChildProcess {
  if (logFile) {
    const fd = openSync(logFile, "a");
    const child = spawn("ip", ["netns", "exec", ns, file, ...args], { stdio: ["ignore", fd, fd], env, detached: true });
    closeSync(fd);
    child.unref();
    return child;
  }
  return spawn("ip", ["netns", "exec", ns, file, ...args], { stdio: ["ignore", "pipe", "pipe"], env });
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
