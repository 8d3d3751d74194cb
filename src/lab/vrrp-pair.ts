// A VRRP pair in the lab: keepalived.conf text for either side (tvsd runs the very same file
// keepalived does), Debian's keepalived started in a namespace with its own pid files and a notify
// script that records each state, tvsd started from the same kind of file, and readers for both
// sides' state (tvsd's over its control socket, keepalived's from the notify record). Used by the
// interop lab tests, `tvs lab keepalived` and bench/vrrp-takeover.ts.

import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { HttpControlClient } from "../control/api/client.ts";
import type { StatusView } from "../control/api/protocol.ts";
import { run, sleep, spawnIn } from "./exec.ts";
import { REPO_ROOT } from "./topology.ts";

/** One VRRP instance as tvsd reports it (GET /v1/status). */
export type VrrpStatus = NonNullable<StatusView["vrrp"]>[number];

export const TVSD_BIN = join(REPO_ROOT, "bin", "tvsd.js");

export interface VrrpSide {
  state: "MASTER" | "BACKUP";
  priority: number;
  vrid: number;
  /** advert_int in seconds (v2: whole seconds). */
  advertInt: number;
  version: 2 | 3;
  /** VIP with prefix, "172.16.0.30/24". */
  vip: string;
  /** auth_pass (v2 PASS). */
  authPass?: string;
  /** Unicast: our address and the peer's. */
  unicast?: { src: string; peer: string };
  /** A virtual_server block to add (tvsd serves it; keepalived with -P ignores it). */
  virtualServer?: string;
  /** keepalived's `notify` script (records each state). */
  notify?: string;
  nopreempt?: boolean;
  iface?: string;
}

export function vrrpConf(s: VrrpSide): string {
  const lines = [`global_defs {`, `    vrrp_version ${s.version}`, `}`, `vrrp_instance VI_1 {`];
  lines.push(`    state ${s.state}`, `    interface ${s.iface ?? "eth0"}`, `    virtual_router_id ${s.vrid}`);
  lines.push(`    priority ${s.priority}`, `    advert_int ${s.advertInt}`);
  if (s.nopreempt) lines.push("    nopreempt");
  if (s.authPass !== undefined)
    lines.push("    authentication {", "        auth_type PASS", `        auth_pass ${s.authPass}`, "    }");
  if (s.unicast)
    lines.push(`    unicast_src_ip ${s.unicast.src}`, "    unicast_peer {", `        ${s.unicast.peer}`, "    }");
  if (s.notify) lines.push(`    notify ${s.notify}`);
  lines.push("    virtual_ipaddress {", `        ${s.vip}`, "    }", "}");
  if (s.virtualServer) lines.push(s.virtualServer);
  return `${lines.join("\n")}\n`;
}

/** A notify script that appends "STATE epoch-ms" to `record` (keepalived's $3 is the state). */
export function writeNotifyScript(dir: string, record: string, name = "notify"): string {
  const path = join(dir, `${name}.sh`);
  writeFileSync(path, `#!/bin/sh\necho "$3 $(date +%s%3N)" >> ${record}\n`);
  chmodSync(path, 0o755);
  return path;
}

export class KeepalivedProcess {
  readonly child: ChildProcess;
  readonly record: string;
  readonly #dir: string;
  constructor(child: ChildProcess, dir: string, record: string) {
    this.child = child;
    this.#dir = dir;
    this.record = record;
  }
  /** The states keepalived's notify recorded, in order, with their times (ms since the epoch). */
  states(): { state: string; at: number }[] {
    if (!existsSync(this.record)) return [];
    return readFileSync(this.record, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => {
        const [state = "", at = "0"] = l.split(" ");
        return { state, at: Number(at) };
      });
  }
  last(): string | undefined {
    return this.states().at(-1)?.state;
  }
  async stop(): Promise<void> {
    await stopChild(this.child, 5000);
    void this.#dir;
  }
}

/**
 * Debian's keepalived in a namespace, VRRP only (-P: no ip_vs needed), in the foreground (-n),
 * logging to the console (-l -D), with its own pid files (two can run on one machine).
 */
export function startKeepalived(ns: string, dir: string, side: VrrpSide, name = "ka"): KeepalivedProcess {
  const record = join(dir, `${name}.states`);
  const notify = writeNotifyScript(dir, record, `${name}-notify`);
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, vrrpConf({ ...side, notify }));
  const child = spawnIn(
    ns,
    "keepalived",
    ["-n", "-l", "-D", "-P", "-f", conf, "-p", join(dir, `${name}.pid`), "-r", join(dir, `${name}_vrrp.pid`)],
    { ...process.env, TMPDIR: dir },
    join(dir, `${name}.log`),
  );
  return new KeepalivedProcess(child, dir, record);
}

export class TvsdProcess {
  readonly child: ChildProcess;
  readonly socket: string;
  readonly client: HttpControlClient;
  constructor(child: ChildProcess, socket: string) {
    this.child = child;
    this.socket = socket;
    this.client = new HttpControlClient({ socketPath: socket, timeoutMs: 2000 });
  }
  /** The VRRP instance's status, or undefined while tvsd is not answering. */
  async vrrp(): Promise<VrrpStatus | undefined> {
    try {
      return (await this.client.status()).vrrp?.[0];
    } catch {
      return undefined;
    }
  }
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    await stopChild(this.child, 15_000, signal);
  }
}

/** tvsd from a keepalived.conf in a namespace (socket data plane unless `args` says otherwise). */
export function startTvsd(ns: string, dir: string, side: VrrpSide, name = "tvsd", args: string[] = []): TvsdProcess {
  return startTvsdConf(ns, dir, vrrpConf(side), name, args);
}

/** tvsd from keepalived.conf text, written to DIR/NAME.conf; control socket DIR/NAME.sock. */
export function startTvsdConf(ns: string, dir: string, text: string, name: string, args: string[] = []): TvsdProcess {
  const conf = join(dir, `${name}.conf`);
  writeFileSync(conf, text);
  const socket = join(dir, `${name}.sock`);
  const child = spawnIn(
    ns,
    process.execPath,
    [TVSD_BIN, "--config", conf, "--socket", socket, "--http", "none", "--drain-timeout", "1000", ...args],
    process.env,
    join(dir, `${name}.log`),
  );
  return new TvsdProcess(child, socket);
}

/** SIGTERM (or `signal`) and wait for the exit; SIGKILL after `ms`. By PID only. */
export async function stopChild(child: ChildProcess, ms: number, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  // `ip netns exec` execs the program, so the PID is the program's own.
  const done = new Promise<void>((r) => child.once("exit", () => r()));
  try {
    process.kill(child.pid, signal);
  } catch {
    return;
  }
  const timer = new Promise<"late">((r) => setTimeout(() => r("late"), ms));
  if ((await Promise.race([done, timer])) === "late") {
    try {
      process.kill(child.pid, "SIGKILL");
    } catch {
      // gone
    }
    await Promise.race([done, sleep(1000)]);
  }
}

/** Poll `pred` every `stepMs` until it is true; returns the elapsed ms, or throws after `ms`. */
export async function waitFor(
  what: string,
  pred: () => boolean | Promise<boolean>,
  ms: number,
  stepMs = 20,
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await pred()) return performance.now() - t0;
    if (performance.now() - t0 > ms) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(stepMs);
  }
}

/** Whether a namespace has `addr` configured on an interface. */
export async function hasAddress(ns: string, addr: string): Promise<boolean> {
  const r = await run("ip", ["-n", ns, "-o", "addr", "show"]);
  return r.stdout.split("\n").some((l) => l.includes(` ${addr}/`));
}

/** The MAC of a namespace's interface. */
export async function macOf(ns: string, iface = "eth0"): Promise<string> {
  const r = await run("ip", ["-n", ns, "-o", "link", "show", iface]);
  const m = /link\/ether ([0-9a-f:]{17})/.exec(r.stdout);
  if (!m) throw new Error(`No MAC on ${iface} in ${ns}`);
  return m[1] as string;
}

/** Who answers ARP for `addr` as seen from `ns`: the MAC its neighbour table learns after a fresh ping. */
export async function arpOwner(ns: string, addr: string): Promise<string | undefined> {
  await run("ip", ["-n", ns, "neigh", "flush", "to", addr]).catch(() => undefined);
  await run("ip", ["netns", "exec", ns, "ping", "-c", "1", "-W", "1", addr]).catch(() => undefined);
  const r = await run("ip", ["-n", ns, "neigh", "show", "to", addr]);
  return /lladdr ([0-9a-f:]{17})/.exec(r.stdout)?.[1];
}
