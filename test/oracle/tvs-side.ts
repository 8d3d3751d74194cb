// The tvs side of a differential comparison: a real tvsd child process on a temporary control
// socket, driven by tvsadm. tvsd runs the packet data plane on a veth in a network namespace of
// its own (the socket data plane would try to listen on every VIP and refuses -g/-i and port 0,
// none of which the kernel refuses); the namespace is deleted and tvsd killed by PID on stop. Two ways to run tvsadm: in process (its main() with the same fixed name
// resolver the guest has, program name "ipvsadm" — fast, used for the bulk) and as the real binary
// `node bin/tvsadm.js` with TVS_SOCKET set (exact, slower; its resolver is the host's).

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { main as tvsadmMain } from "../../src/cli/tvsadm/main.ts";
import type { ControlClient } from "../../src/control/api/client.ts";
import { DirectorClient, FakeSync, testBed, testResolver } from "../golden/tvsadm/harness.ts";
import { GUEST_RESET } from "./guest-env.ts";
import { repoRoot, type VmResult } from "./vm.ts";

let nsCounter = 0;

function ip(...args: string[]): void {
  const r = spawnSync("ip", args, { encoding: "utf8", timeout: 10_000 });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")} failed: ${r.stderr.trim()}`);
}

export interface TvsdProcess {
  proc: ChildProcess;
  socket: string;
  dir: string;
  ns: string;
  log: () => string;
}

/** Starts tvsd (packet data plane on veth "tv0" in a fresh namespace); resolves once it is ready. */
export async function startTvsdInNamespace(extra: string[] = []): Promise<TvsdProcess> {
  const ns = `tvso-${process.pid}-${++nsCounter}`;
  ip("netns", "add", ns);
  try {
    ip("-n", ns, "link", "set", "lo", "up");
    ip("-n", ns, "link", "add", "tv0", "type", "veth", "peer", "name", "tv1");
    ip("-n", ns, "link", "set", "tv0", "up");
    ip("-n", ns, "link", "set", "tv1", "up");
    // The guest's sync daemons use eth0 and eth1; the same names exist here for tvsd's.
    ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth1");
    ip("-n", ns, "link", "set", "eth0", "up");
    ip("-n", ns, "link", "set", "eth1", "up");
  } catch (e) {
    spawnSync("ip", ["netns", "del", ns]);
    throw e;
  }
  const dir = mkdtempSync(join(tmpdir(), "tvso-"));
  const socket = join(dir, "control.sock");
  const proc = spawn(
    "ip",
    [
      "netns",
      "exec",
      ns,
      process.execPath,
      join(repoRoot, "bin", "tvsd.js"),
      "--socket",
      socket,
      "--dataplane",
      "packet",
      "--interface",
      "tv0",
      ...extra,
    ],
    { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] },
  );
  let text = "";
  proc.stdout?.on("data", (d: Buffer) => (text += d.toString()));
  proc.stderr?.on("data", (d: Buffer) => (text += d.toString()));
  const cleanup = () => {
    proc.kill("SIGKILL");
    spawnSync("ip", ["netns", "del", ns]);
    rmSync(dir, { recursive: true, force: true });
  };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`tvsd did not become ready within 60 s: ${text}`));
    }, 60_000);
    const check = () => {
      if (text.includes('"tvsd ready"')) {
        clearTimeout(timer);
        resolve();
      }
    };
    proc.stdout?.on("data", check);
    proc.stderr?.on("data", check);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      cleanup();
      reject(new Error(`tvsd exited (${code}) before it was ready: ${text}`));
    });
  });
  return { proc, socket, dir, ns, log: () => text };
}

/**
 * tvsadm against tvs's control logic alone: the Director behind an in-process ControlClient (the
 * tvsadm golden harness's), with no data plane, so data-plane limits (SCTP, GUE/GRE, sync)
 * do not hide CLI and core differences.
 */
export class DirectorSide {
  #client: ControlClient | undefined;
  async #get(): Promise<ControlClient> {
    if (!this.#client) {
      const bed = await testBed();
      // A recording sync control, as tvsadm's golden "sync" line attaches: the kernel has sync.
      bed.director.sync = new FakeSync();
      this.#client = new DirectorClient(bed.director);
    }
    return this.#client;
  }
  async reset(): Promise<void> {
    this.#client = undefined;
  }
  async tvsadm(args: readonly string[], opts: { stdin?: string; program?: string } = {}): Promise<VmResult> {
    let stdout = "";
    let stderr = "";
    let code: number;
    try {
      code = await tvsadmMain([...args], {
        client: await this.#get(),
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
        resolver: testResolver(),
        program: opts.program ?? "ipvsadm",
        readStdin: async () => opts.stdin ?? "",
      });
    } catch (e) {
      stderr += `[tvsadm threw] ${(e as Error).stack ?? String(e)}\n`;
      code = -1;
    }
    return { stdout, stderr, code };
  }
}

export class TvsSide {
  readonly tvsd: TvsdProcess;
  private constructor(tvsd: TvsdProcess) {
    this.tvsd = tvsd;
  }

  static async start(args: string[] = []): Promise<TvsSide> {
    return new TvsSide(await startTvsdInNamespace(args));
  }

  /** tvsadm's main() in process; argv exactly as given to ipvsadm. */
  async tvsadm(args: readonly string[], opts: { stdin?: string; program?: string } = {}): Promise<VmResult> {
    let stdout = "";
    let stderr = "";
    let code: number;
    try {
      code = await tvsadmMain([...args], {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: { write: (s: string) => (stderr += s) },
        env: { TVS_SOCKET: this.tvsd.socket },
        resolver: testResolver(),
        program: opts.program ?? "ipvsadm",
        readStdin: async () => opts.stdin ?? "",
      });
    } catch (e) {
      // ipvsadm never throws; an exception is a tvsadm bug and shows up as a mismatch.
      stderr += `[tvsadm threw] ${(e as Error).stack ?? String(e)}\n`;
      code = -1;
    }
    return { stdout, stderr, code };
  }

  /** The real binary: node bin/tvsadm.js with TVS_SOCKET. */
  binary(args: readonly string[], opts: { stdin?: string; timeoutMs?: number } = {}): Promise<VmResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [join(repoRoot, "bin", "tvsadm.js"), ...args], {
        cwd: repoRoot,
        env: { ...process.env, TVS_SOCKET: this.tvsd.socket },
        stdio: ["pipe", "pipe", "pipe"],
      });
      let stdout = "";
      let stderr = "";
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`tvsadm ${args.join(" ")} did not finish within ${opts.timeoutMs ?? 30_000} ms`));
      }, opts.timeoutMs ?? 30_000);
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("error", reject);
      child.on("close", (code) => {
        clearTimeout(timer);
        resolve({ stdout, stderr, code: code ?? -1 });
      });
      child.stdin.end(opts.stdin ?? "");
    });
  }

  /** The same reset as the guest's: no services, no sync daemons, default timeouts. */
  async reset(): Promise<void> {
    for (const line of GUEST_RESET.split(";")) {
      const words = line.trim().split(/\s+/);
      if (words[0] !== "ipvsadm") continue;
      await this.tvsadm(words.slice(1).filter((w) => !w.includes(">")));
    }
  }

  /** Stops tvsd (SIGTERM, then SIGKILL after 5 s, by PID), deletes its namespace and directory. */
  async stop(): Promise<void> {
    const { proc, ns, dir } = this.tvsd;
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5_000);
      await exited;
      clearTimeout(timer);
    }
    spawnSync("ip", ["netns", "del", ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}
