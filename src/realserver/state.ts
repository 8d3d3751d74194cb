// What `tvs realserver start` changed on this host, kept in a small JSON file so `stop` can put
// every sysctl back to its previous value and `status` can say what is configured. Hosts are
// told apart by their network namespace (the inode of /proc/self/ns/net), so several real
// servers in namespaces on one machine keep separate records.

import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface RealServerState {
  vip: string;
  mode: "dr" | "tun";
  /** sysctl name → value before start changed it. */
  sysctls: Record<string, string>;
  addedAddress: boolean;
  addedRoute: boolean;
  /** TUN mode: the userspace decapsulator's PID and its TUN device. */
  decapPid?: number;
  tunDevice?: string;
  /** TUN mode: the tunnel type taken (ipip, gue, gre) and the GUE port. */
  tunType?: "ipip" | "gue" | "gre";
  tunPort?: number;
  startedAt: string;
}

export function stateDir(): string {
  return (
    process.env.TVS_STATE_DIR ??
    (process.getuid?.() === 0 ? "/run/tvs/realserver" : join("/tmp", `tvs-${process.getuid?.() ?? 0}`, "realserver"))
  );
}

function netnsId(): string {
  try {
    return String(statSync("/proc/self/ns/net").ino);
  } catch {
    return "host";
  }
}

function fileFor(vip: string): string {
  return join(stateDir(), `${netnsId()}-${vip.replaceAll(":", "_")}.json`);
}

export function readState(vip: string): RealServerState | undefined {
  try {
    return JSON.parse(readFileSync(fileFor(vip), "utf8")) as RealServerState;
  } catch {
    return undefined;
  }
}

export function writeState(s: RealServerState): void {
  mkdirSync(stateDir(), { recursive: true, mode: 0o755 });
  writeFileSync(fileFor(s.vip), `${JSON.stringify(s, null, 2)}\n`);
}

export function removeState(vip: string): void {
  rmSync(fileFor(vip), { force: true });
}

/** Every record for this network namespace. */
export function listStates(): RealServerState[] {
  const prefix = `${netnsId()}-`;
  let names: string[] = [];
  try {
    names = readdirSync(stateDir());
  } catch {
    return [];
  }
  const out: RealServerState[] = [];
  for (const n of names) {
    if (!n.startsWith(prefix) || !n.endsWith(".json")) continue;
    try {
      out.push(JSON.parse(readFileSync(join(stateDir(), n), "utf8")) as RealServerState);
    } catch {
      // A half-written record is skipped; stop with --vip still cleans it.
    }
  }
  return out;
}
