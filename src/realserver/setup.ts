// The real-server side of DR and TUN, as the seeds' lvs-web.sh does it by hand: the VIP as a /32
// on lo, arp_ignore=1 and arp_announce=2 on lo and all (so only the director answers ARP for the
// VIP), and a host route for the VIP via lo. TUN mode additionally needs IPIP decapsulation; where
// the kernel has no ipip module (as on this machine) a userspace decapsulator runs in the
// background (see decap.ts). Everything start() changes is recorded and undone by stop().
//
// An IPv6 VIP goes on lo as a /128 without duplicate address detection and needs no sysctl: Linux
// answers neighbour solicitations only for addresses of the interface they arrive on, so a VIP on
// lo is never advertised on the wire (IPv6 has no arp_ignore because it needs none), and the local
// route comes with the address. Its TUN mode always uses the userspace decapsulator, which takes
// IPv6-in-IPv6 and IPv6-in-IPv4 alike.
//
// GUE and GRE (the director's --tun-type gue|gre) are always decapsulated in userspace by the same
// decapsulator started for that type (GUE on its --tun-port): no kernel tunnel device is set up.

import { execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { canonicalIp, ipFamily } from "../core/addr.ts";
import type { DecapTunnel } from "./decap.ts";
import { listStates, type RealServerState, readState, removeState, writeState } from "./state.ts";
import { readSysctl, writeSysctl } from "./sysctl.ts";

export type RealServerMode = "dr" | "tun";

const ARP_SYSCTLS: Record<string, string> = {
  "net.ipv4.conf.lo.arp_ignore": "1",
  "net.ipv4.conf.all.arp_ignore": "1",
  "net.ipv4.conf.lo.arp_announce": "2",
  "net.ipv4.conf.all.arp_announce": "2",
};

/** TUN mode: decapsulated packets arrive on the TUN device with the client's source address. */
const TUN_SYSCTLS: Record<string, string> = {
  "net.ipv4.conf.all.rp_filter": "0",
  "net.ipv4.conf.default.rp_filter": "0",
};

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function tryIp(...args: string[]): boolean {
  try {
    ip(...args);
    return true;
  } catch {
    return false;
  }
}

export function hasKernelIpip(): boolean {
  const probe = `tvsprobe${process.pid % 10000}`;
  if (tryIp("link", "add", probe, "type", "ipip", "remote", "192.0.2.1", "local", "192.0.2.2")) {
    tryIp("link", "del", probe);
    return true;
  }
  return false;
}

export function validateVip(text: string): string {
  const vip = canonicalIp(text);
  if (vip === undefined) throw new Error(`Invalid VIP "${text}"`);
  return vip;
}

/** Whether lo holds the VIP as a host address in this network namespace. */
function vipOnLo(vip: string): boolean {
  try {
    const out = ip(ipFamily(vip) === 6 ? "-6" : "-4", "-o", "addr", "show", "dev", "lo");
    return out.split("\n").some((l) => l.includes(` ${hostPrefix(vip)} `));
  } catch {
    return false;
  }
}

/** The VIP as a host prefix (/32 or /128). */
function hostPrefix(vip: string): string {
  return `${vip}/${ipFamily(vip) === 6 ? 128 : 32}`;
}

export interface StartOptions {
  vip: string;
  mode: RealServerMode;
  /** Command that runs the userspace decapsulator (argv, without the VIP/device arguments). */
  decapCommand?: string[];
  /** TUN mode: the tunnel type the director sends (default IPIP) and, for GUE, its UDP port. */
  tunnel?: DecapTunnel;
}

export function startRealServer(opts: StartOptions): RealServerState {
  const vip = validateVip(opts.vip);
  const existing = readState(vip);
  // A record is keyed by the namespace's inode, which the kernel reuses once a namespace is gone:
  // a record whose VIP is not on lo here belongs to a namespace that no longer exists.
  if (existing && vipOnLo(vip)) return existing;
  if (existing) removeState(vip);
  const v6 = ipFamily(vip) === 6;
  const wanted = v6 ? {} : { ...ARP_SYSCTLS, ...(opts.mode === "tun" ? TUN_SYSCTLS : {}) };
  const sysctls: Record<string, string> = {};
  for (const name of Object.keys(wanted)) sysctls[name] = readSysctl(name);
  const state: RealServerState = {
    vip,
    mode: opts.mode,
    sysctls,
    addedAddress: false,
    addedRoute: false,
    startedAt: new Date().toISOString(),
  };
  // Sysctls first: the VIP must never be announced, even for a moment.
  for (const [name, value] of Object.entries(wanted)) writeSysctl(name, value);
  if (v6) state.addedAddress = tryIp("-6", "addr", "add", hostPrefix(vip), "dev", "lo", "nodad");
  else {
    state.addedAddress = tryIp("addr", "add", hostPrefix(vip), "dev", "lo", "scope", "host");
    state.addedRoute = tryIp("route", "add", hostPrefix(vip), "dev", "lo");
  }
  const tunnel = opts.tunnel ?? { type: "ipip", port: 0 };
  if (opts.mode === "tun") {
    state.tunType = tunnel.type;
    if (tunnel.type === "gue") state.tunPort = tunnel.port;
  }
  if (opts.mode === "tun" && (v6 || tunnel.type !== "ipip" || !hasKernelIpip())) {
    if (!opts.decapCommand)
      throw new Error(
        `TUN mode needs the userspace decapsulator (${v6 ? "IPv6 VIPs always use it" : tunnel.type !== "ipip" ? `${tunnel.type.toUpperCase()} always uses it` : "this kernel has no ipip module"})`,
      );
    const device = `tvsip${process.pid % 100000}`;
    const typeArgs = tunnel.type === "ipip" ? [] : ["--tun-type", tunnel.type];
    if (tunnel.type === "gue") typeArgs.push("--tun-port", String(tunnel.port));
    const child = spawn(
      opts.decapCommand[0] as string,
      [...opts.decapCommand.slice(1), "--vip", vip, "--device", device, ...typeArgs],
      {
        detached: true,
        stdio: "ignore",
      },
    );
    child.unref();
    if (child.pid !== undefined) state.decapPid = child.pid;
    state.tunDevice = device;
    // Return only once the decapsulator holds its raw socket and has brought its device up, so
    // traffic sent right after `start` is not answered with "protocol unreachable".
    waitForDeviceUp(device, 60_000, child.pid);
  } else if (opts.mode === "tun") {
    // The kernel decapsulates: a tunl0-style device receiving IPIP, as lvs-web.sh would set up.
    tryIp("link", "add", "tvstunl0", "type", "ipip", "local", "any");
    tryIp("link", "set", "tvstunl0", "up");
    sysctls["net.ipv4.conf.tvstunl0.rp_filter"] = "0";
    tryIp("addr", "add", `${vip}/32`, "dev", "tvstunl0");
  }
  writeState(state);
  return state;
}

function waitForDeviceUp(device: string, limitMs: number, pid: number | undefined): void {
  const deadline = Date.now() + limitMs;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      if (Number.parseInt(readFileSync(`/sys/class/net/${device}/flags`, "utf8"), 16) & 1) return;
    } catch {
      // Not created yet.
    }
    if (pid !== undefined && !processAlive(pid))
      throw new Error(`The tunnel decapsulator (pid ${pid}) exited before bringing "${device}" up`);
    if (Date.now() > deadline)
      throw new Error(`The tunnel decapsulator did not bring "${device}" up within ${limitMs / 1000} s`);
    Atomics.wait(nap, 0, 0, 50);
  }
}

/** Whether the process runs (not gone, not a zombie waiting for us to reap it). */
function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

export function stopRealServer(vipText: string): RealServerState | undefined {
  const vip = validateVip(vipText);
  const state = readState(vip);
  if (!state) return undefined;
  if (state.decapPid !== undefined) {
    try {
      process.kill(state.decapPid, "SIGTERM");
    } catch {
      // Already gone.
    }
  }
  tryIp("link", "del", "tvstunl0");
  if (state.addedRoute) tryIp("route", "del", hostPrefix(vip), "dev", "lo");
  if (state.addedAddress) tryIp("addr", "del", hostPrefix(vip), "dev", "lo");
  for (const [name, value] of Object.entries(state.sysctls)) {
    try {
      writeSysctl(name, value);
    } catch {
      // A device-specific sysctl whose device is gone.
    }
  }
  removeState(vip);
  return state;
}

export interface RealServerStatus {
  configured: RealServerState[];
  sysctls: Record<string, string>;
  vipsOnLo: string[];
  kernelIpip: boolean;
  decapRunning: Record<string, boolean>;
}

export function realServerStatus(): RealServerStatus {
  const sysctls: Record<string, string> = {};
  for (const name of Object.keys(ARP_SYSCTLS)) sysctls[name] = readSysctl(name);
  const lo = ip("-o", "addr", "show", "dev", "lo");
  const vipsOnLo = [...lo.matchAll(/inet6? (\S+)\/(?:32|128) /g)].map((m) => m[1] as string).filter((a) => a !== "::1");
  const configured = listStates();
  const decapRunning: Record<string, boolean> = {};
  for (const s of configured) {
    if (s.decapPid === undefined) continue;
    try {
      process.kill(s.decapPid, 0);
      decapRunning[s.vip] = true;
    } catch {
      decapRunning[s.vip] = false;
    }
  }
  return { configured, sysctls, vipsOnLo, kernelIpip: hasKernelIpip(), decapRunning };
}
