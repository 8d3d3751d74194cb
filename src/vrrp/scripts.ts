// Scripts as keepalived runs them: notify scripts and vrrp_script checks. A command line is split
// into words (double or single quotes group words; no shell unless the command names one), run
// with a timeout, optionally as script_user. enable_script_security refuses a script that a
// non-root user could change (the file or any directory above it writable by others, or owned by
// someone else) when tvsd runs as root: a root daemon must not run what an ordinary user can edit.

import { spawn } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute } from "node:path";
import type { ScriptResult, ScriptRunner } from "./io.ts";

/** keepalived's splitting of a script line into words. */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  let cur = "";
  let quote: string | undefined;
  let has = false;
  for (const ch of line) {
    if (quote) {
      if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      has = true;
    } else if (/\s/.test(ch)) {
      if (has || cur) out.push(cur);
      cur = "";
      has = false;
    } else cur += ch;
  }
  if (has || cur) out.push(cur);
  return out;
}

/** Why a script is unsafe to run as root (undefined: safe). */
export function insecureReason(path: string): string | undefined {
  if (!isAbsolute(path)) return `"${path}" is not an absolute path`;
  let p = path;
  for (;;) {
    let st: ReturnType<typeof statSync>;
    try {
      st = statSync(p);
    } catch (e) {
      return `cannot check "${p}" (${(e as NodeJS.ErrnoException).code ?? String(e)})`;
    }
    if (st.uid !== 0) return `"${p}" is owned by uid ${st.uid}, not root`;
    const sticky = (st.mode & 0o1000) !== 0;
    if ((st.mode & 0o002) !== 0 && !(st.isDirectory() && sticky)) return `"${p}" is writable by every user`;
    if ((st.mode & 0o020) !== 0 && st.gid !== 0) return `"${p}" is writable by group ${st.gid}`;
    if (p === "/") return undefined;
    p = dirname(p);
  }
}

export interface ScriptUser {
  uid: number;
  gid: number;
}

export interface ProcessRunnerOptions {
  /** enable_script_security: refuse scripts others could change (only matters as root). */
  secure: boolean;
  /** Resolves a user name to ids (injected for tests); undefined: unknown user. */
  lookupUser?: (name: string) => ScriptUser | undefined;
}

export class ProcessScriptRunner implements ScriptRunner {
  readonly #opts: ProcessRunnerOptions;
  constructor(opts: ProcessRunnerOptions) {
    this.#opts = opts;
  }

  run(
    command: string,
    args: readonly string[],
    o: { timeoutMs: number; user?: string | undefined },
  ): Promise<ScriptResult> {
    const words = splitCommand(command);
    const file = words[0];
    if (!file) return Promise.resolve({ code: null, error: "empty command" });
    if (this.#opts.secure && process.getuid?.() === 0) {
      const why = insecureReason(file);
      if (why) return Promise.resolve({ code: null, error: `enable_script_security refuses it: ${why}` });
    }
    let ids: ScriptUser | undefined;
    if (o.user !== undefined) {
      ids = this.#opts.lookupUser?.(o.user);
      if (!ids) return Promise.resolve({ code: null, error: `unknown script_user "${o.user}"` });
    }
    return new Promise((resolve) => {
      let done = false;
      const finish = (r: ScriptResult) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(r);
      };
      let child: ReturnType<typeof spawn>;
      try {
        child = spawn(file, [...words.slice(1), ...args], {
          stdio: "ignore",
          ...(ids ? { uid: ids.uid, gid: ids.gid } : {}),
        });
      } catch (e) {
        resolve({ code: null, error: (e as Error).message });
        return;
      }
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        finish({ code: null, error: `timed out after ${o.timeoutMs} ms` });
      }, o.timeoutMs);
      child.on("error", (e) => finish({ code: null, error: e.message }));
      child.on("exit", (code) => finish({ code }));
    });
  }
}

/** uid and primary gid of a user name or number, from /etc/passwd. */
export function passwdUser(name: string, passwd = "/etc/passwd"): ScriptUser | undefined {
  let text: string;
  try {
    text = readFileSync(passwd, "utf8");
  } catch {
    return undefined;
  }
  for (const line of text.split("\n")) {
    const f = line.split(":");
    if (f.length < 4) continue;
    if (f[0] === name || (/^\d+$/.test(name) && f[2] === name)) return { uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}
