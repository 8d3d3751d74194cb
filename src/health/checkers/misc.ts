// MISC_CHECK: run the configured script (misc_path, split into words and run without a shell, as
// keepalived does) in its own process group, optionally as another user. Exit 0 passes; with
// misc_dynamic an exit status 2..255 also passes and sets the real server's weight to status - 2,
// while 1 (and, without misc_dynamic, anything but 0) fails. When misc_timeout runs out the attempt
// fails at once and the whole process group gets SIGTERM, then SIGKILL two seconds later if it is
// still there (keepalived's sequence).

import { type ChildProcess, spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { abortReason, type Checker, type CheckResult, elapsedMs } from "../checker.ts";
import type { MiscCheckSpec } from "../checker-spec.ts";

/** Grace between SIGTERM and SIGKILL for a script that overran misc_timeout. */
export const MISC_KILL_GRACE_MS = 2000;

/** Split a command line into words: blanks separate, "..." and '...' group, backslash escapes. */
export function splitCommand(line: string): string[] {
  const words: string[] = [];
  let cur = "";
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === "\\" && quote === '"' && i + 1 < line.length) cur += line[++i];
      else cur += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      cur += line[++i];
      inWord = true;
    } else if (c === " " || c === "\t") {
      if (inWord) words.push(cur);
      cur = "";
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new SyntaxError(`Unterminated ${quote} quote in misc_path "${line}"`);
  if (inWord) words.push(cur);
  return words;
}

/** uid and gid of a user name (or number) and optional group, from /etc/passwd and /etc/group. */
export async function resolveUser(user: string, group?: string): Promise<{ uid: number; gid: number }> {
  let uid: number | undefined;
  let gid: number | undefined;
  if (/^\d+$/.test(user)) uid = Number(user);
  const passwd = await readFile("/etc/passwd", "utf8").catch(() => "");
  for (const line of passwd.split("\n")) {
    const f = line.split(":");
    if (f[0] === user || (uid !== undefined && Number(f[2]) === uid)) {
      uid = Number(f[2]);
      gid = Number(f[3]);
      break;
    }
  }
  if (uid === undefined) throw new Error(`Unknown user "${user}"`);
  if (group !== undefined) {
    gid = /^\d+$/.test(group) ? Number(group) : undefined;
    if (gid === undefined) {
      const groups = await readFile("/etc/group", "utf8").catch(() => "");
      for (const line of groups.split("\n")) {
        const f = line.split(":");
        if (f[0] === group) gid = Number(f[2]);
      }
    }
    if (gid === undefined) throw new Error(`Unknown group "${group}"`);
  }
  return { uid, gid: gid ?? uid };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is gone already.
  }
}

export function createMiscChecker(spec: MiscCheckSpec): Checker {
  const argv = splitCommand(spec.path);
  let ids: Promise<{ uid: number; gid: number }> | undefined;
  return {
    type: "MISC_CHECK",
    async check(_target, signal): Promise<CheckResult> {
      const start = performance.now();
      const fail = (reason: string): CheckResult => ({ ok: false, reason, latencyMs: elapsedMs(start) });
      const [file, ...args] = argv;
      if (file === undefined) return fail("Empty misc_path");
      let cred: { uid: number; gid: number } | undefined;
      if (spec.user !== undefined) {
        ids ??= resolveUser(spec.user, spec.group);
        try {
          cred = await ids;
        } catch (e) {
          ids = undefined;
          return fail(e instanceof Error ? e.message : String(e));
        }
      }
      if (signal.aborted) return fail(abortReason(signal));
      return new Promise((resolve) => {
        let child: ChildProcess;
        try {
          child = spawn(file, args, { stdio: "ignore", detached: true, ...(cred ?? {}) });
        } catch (e) {
          resolve(fail(`Cannot run "${file}": ${e instanceof Error ? e.message : String(e)}`));
          return;
        }
        let done = false;
        const settle = (r: CheckResult) => {
          if (done) return;
          done = true;
          signal.removeEventListener("abort", onAbort);
          resolve(r);
        };
        const onAbort = () => {
          killGroup(child, "SIGTERM");
          const t = setTimeout(() => killGroup(child, "SIGKILL"), MISC_KILL_GRACE_MS);
          t.unref();
          child.once("exit", () => clearTimeout(t));
          settle(fail(`Script ${abortReason(signal).replace(/^Timed out/, "timed out")}, killed`));
        };
        signal.addEventListener("abort", onAbort, { once: true });
        child.once("error", (e) => settle(fail(`Cannot run "${file}": ${e.message}`)));
        child.once("exit", (code, sig) => {
          if (code === null) {
            settle(fail(`Script killed by ${sig ?? "a signal"}`));
            return;
          }
          if (code === 0) settle({ ok: true, reason: "Script exited 0", latencyMs: elapsedMs(start) });
          else if (spec.dynamic && code >= 2)
            settle({ ok: true, reason: `Script exited ${code}`, latencyMs: elapsedMs(start), weight: code - 2 });
          else settle(fail(`Script exited ${code}`));
        });
      });
    },
  };
}
