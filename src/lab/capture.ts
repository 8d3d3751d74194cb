// A packet capture inside a lab namespace: tcpdump on eth0 with a filter, line-buffered, until
// stop() — which ends it by its PID and returns the lines it printed. start() resolves once
// tcpdump says it is listening, so nothing sent afterwards is missed.

import type { ChildProcess } from "node:child_process";
import { sleep, spawnIn } from "./exec.ts";

export class Capture {
  readonly #child: ChildProcess;
  readonly #lines: string[] = [];
  #stderr = "";

  private constructor(child: ChildProcess) {
    this.#child = child;
    let partial = "";
    child.stdout?.on("data", (d: Buffer) => {
      const parts = (partial + d.toString()).split("\n");
      partial = parts.pop() ?? "";
      for (const l of parts) if (l.trim() !== "" && this.#lines.length < 100_000) this.#lines.push(l);
    });
    child.stderr?.on("data", (d: Buffer) => {
      this.#stderr = (this.#stderr + d.toString()).slice(-4000);
    });
  }

  /** Start tcpdump in `ns` on eth0 (`-e` adds link-level headers, for ARP and MACs). */
  static async start(ns: string, filter: string, linkLevel = false): Promise<Capture> {
    const args = ["-i", "eth0", "-nn", "-l", "-p", ...(linkLevel ? ["-e"] : ["-q"]), filter];
    const cap = new Capture(spawnIn(ns, "tcpdump", args));
    const deadline = Date.now() + 5000;
    while (!cap.#stderr.includes("listening on")) {
      if (cap.#child.exitCode !== null)
        throw new Error(`tcpdump did not start in ${ns} (install tcpdump): ${cap.#stderr.trim()}`);
      if (Date.now() > deadline) throw new Error(`tcpdump in ${ns} did not start listening within 5 s`);
      await sleep(20);
    }
    return cap;
  }

  /** Lines so far. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  async stop(): Promise<string[]> {
    await sleep(200);
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      const exited = new Promise((r) => this.#child.once("exit", r));
      this.#child.kill("SIGTERM");
      await exited;
    }
    return [...this.#lines];
  }
}
