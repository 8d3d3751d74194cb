// For lab tests: a packet-plane tvsd started inside a test's namespace, and the polling wait the
// lab tests share. The daemon's stderr tail is kept so a start that fails names its reason.

import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { run, sleep, spawnIn } from "../../src/lab/exec.ts";
import { REPO_ROOT, TVS_BIN } from "../../src/lab/topology.ts";

const TVSD = join(REPO_ROOT, "bin", "tvsd.js");
const TVSADM = join(REPO_ROOT, "bin", "tvsadm.js");

/** Poll `check` every 100 ms until it is true; throws "`what` within N s" after `limitMs`. */
export async function waitFor(what: string, limitMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} within ${limitMs / 1000} s`);
    await sleep(100);
  }
}

export interface LabTvsd {
  readonly proc: ChildProcess;
  readonly socket: string;
  /** tvsadm against this daemon; its stdout. */
  tvsadm(...args: string[]): Promise<string>;
  /** `tvs status` of this daemon. */
  status(): Promise<string>;
}

/**
 * Start `tvsd --dataplane packet --interface eth0 --socket SOCKET ...extra` in `ns` and wait until
 * its control socket exists. The caller owns the process (stops it in its t.after).
 */
export async function startPacketTvsd(
  ns: string,
  socket: string,
  extra: readonly string[] = [],
  limitMs = 20_000,
): Promise<LabTvsd> {
  const proc = spawnIn(ns, process.execPath, [
    TVSD,
    ...["--dataplane", "packet", "--interface", "eth0", "--socket", socket],
    ...extra,
  ]);
  let err = "";
  proc.stderr?.on("data", (d: Buffer) => {
    err = (err + d.toString()).slice(-4000);
  });
  proc.stdout?.resume();
  const env = { ...process.env, TVS_SOCKET: socket };
  const daemon: LabTvsd = {
    proc,
    socket,
    tvsadm: async (...args) => (await run(process.execPath, [TVSADM, ...args], { env })).stdout,
    status: async () => (await run(process.execPath, [TVS_BIN, "status"], { env })).stdout,
  };
  try {
    await waitFor("tvsd opened its control socket", limitMs, async () => {
      if (proc.exitCode !== null) throw new Error(`tvsd exited ${proc.exitCode}: ${err}`);
      return existsSync(socket);
    });
  } catch (e) {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
    throw new Error(`${(e as Error).message} (tvsd stderr: ${err})`);
  }
  return daemon;
}
