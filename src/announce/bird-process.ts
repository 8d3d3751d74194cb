// The BIRD instance tvsd runs beside itself. BIRD is started as tvsd's child through util-linux's
// `setpriv --pdeathsig SIGKILL`, so the kernel kills it the moment tvsd dies, however tvsd dies
// (even SIGKILL): its BGP sessions' sockets close and the router withdraws this director's routes at
// once. (A whole machine that dies is seen by BFD or the hold timer instead.) Every change rewrites
// the generated config atomically and applies it with `birdc -s SOCK configure`; applies are
// serialized so the last decision always wins. A failing birdc is logged and retried on the next
// change; it never stops tvsd.

import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Logger } from "../core/log.ts";
import { birdConfig } from "./bird-config.ts";
import type { AnnounceSpec } from "./spec.ts";

export interface AnnouncerStatus {
  daemon: "bird";
  pid: number | undefined;
  socket: string;
  config: string;
  announced: string[];
  lastError: string | undefined;
}

function run(cmd: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(" ")}: ${(stderr || stdout || err.message).trim()}`));
      else resolve(stdout);
    });
  });
}

export class BirdAnnouncer {
  readonly #spec: AnnounceSpec;
  readonly #log: Logger;
  readonly socket: string;
  readonly configFile: string;
  readonly logFile: string;
  #child: ChildProcess | undefined;
  #announced: string[] = [];
  #applied: string | undefined;
  #chain: Promise<void> = Promise.resolve();
  #lastError: string | undefined;
  #stopping = false;

  constructor(spec: AnnounceSpec, log: Logger) {
    this.#spec = spec;
    this.#log = log;
    this.socket = join(spec.runDir, "bird.ctl");
    this.configFile = join(spec.runDir, "bird.conf");
    this.logFile = join(spec.runDir, "bird.log");
  }

  /** Write the config announcing `vips`, start BIRD, and wait until its control socket answers. */
  async start(vips: readonly string[]): Promise<void> {
    await mkdir(this.#spec.runDir, { recursive: true, mode: 0o755 });
    await this.#write(vips);
    // Check the config first, so a bad one is refused with BIRD's own message before anything runs.
    try {
      await run(this.#spec.birdPath, ["-p", "-c", this.configFile], 5000);
    } catch (err) {
      if ((err as Error).message.includes("ENOENT"))
        throw new Error(
          `BIRD 2 not found as "${this.#spec.birdPath}" (apt-get install bird2, or give bird_path in tvs_announce)`,
        );
      throw new Error(`BIRD refused the generated ${this.configFile}: ${(err as Error).message}`);
    }
    const child = spawn(
      "setpriv",
      ["--pdeathsig", "SIGKILL", "--", this.#spec.birdPath, "-f", "-c", this.configFile, "-s", this.socket],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    this.#child = child;
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr = (stderr + d.toString()).slice(-2000);
    });
    child.on("exit", (code, signal) => {
      if (this.#child === child) this.#child = undefined;
      if (!this.#stopping)
        this.#log.error("BIRD exited; VIPs are no longer announced", { code, signal, stderr: stderr.trim() });
    });
    const deadline = Date.now() + 5000;
    for (;;) {
      if (this.#child === undefined) throw new Error(`BIRD exited at start: ${stderr.trim() || "no message"}`);
      if (existsSync(this.socket)) {
        try {
          await run(this.#spec.birdcPath, ["-s", this.socket, "show", "status"], 2000);
          break;
        } catch {}
      }
      if (Date.now() > deadline) throw new Error(`BIRD's control socket ${this.socket} did not answer within 5 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    this.#announced = [...vips];
    this.#log.info("BIRD started", { pid: child.pid, socket: this.socket, announced: vips });
  }

  async #write(vips: readonly string[]): Promise<string> {
    const text = birdConfig(this.#spec, vips, this.logFile);
    const tmp = `${this.configFile}.tmp`;
    await writeFile(tmp, text, { mode: 0o644 });
    await rename(tmp, this.configFile);
    this.#applied = text;
    return text;
  }

  /** Announce exactly `vips` from now on (no-op when unchanged). Resolves once BIRD has taken it. */
  apply(vips: readonly string[]): Promise<void> {
    const next = this.#chain.then(async () => {
      if (this.#child === undefined) return;
      const text = birdConfig(this.#spec, vips, this.logFile);
      if (text === this.#applied) return;
      const before = this.#announced;
      await this.#write(vips);
      try {
        await run(this.#spec.birdcPath, ["-s", this.socket, "configure"], 5000);
        this.#announced = [...vips];
        this.#lastError = undefined;
        const added = vips.filter((v) => !before.includes(v));
        const withdrawn = before.filter((v) => !vips.includes(v));
        this.#log.info("Announcements changed", { announced: vips, added, withdrawn });
      } catch (err) {
        this.#applied = undefined;
        this.#lastError = (err as Error).message;
        this.#log.warn("birdc configure failed; will retry on the next change", { err });
      }
    });
    this.#chain = next.catch(() => {});
    return next;
  }

  status(): AnnouncerStatus {
    return {
      daemon: "bird",
      pid: this.#child?.pid,
      socket: this.socket,
      config: this.configFile,
      announced: [...this.#announced],
      lastError: this.#lastError,
    };
  }

  /** Withdraw everything (the sessions stay up for a moment so the withdrawal is sent), then stop BIRD. */
  async stop(): Promise<void> {
    if (this.#child === undefined) return;
    await this.apply([]);
    this.#stopping = true;
    const child = this.#child;
    if (child === undefined) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        child.kill("SIGKILL");
      }, 2000);
      child.once("exit", () => {
        clearTimeout(t);
        resolve();
      });
      child.kill("SIGTERM");
    });
  }
}
