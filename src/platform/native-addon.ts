// The native addon (native/, built by tools/build-native.mjs): its functions' types and the loader.
// Part of src/platform, a leaf: it imports nothing from src/, so every part that needs raw sockets (the packet
// data plane, the real server's tunnel decapsulator, VRRP) takes it from here without reaching
// into another part. Loading never happens at import time, so the proxy data plane, the CLI and the
// config checker work where the addon is missing; loadNative() explains what is wrong and what to do.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";

export interface NativeConstants {
  readonly [name: string]: number;
}

/** The addon's functions (see native/src/tvs_native.c for the exact contracts). */
export interface NativeAddon {
  socketPacket(): number;
  bindPacket(fd: number, ifindex: number, ethertype: number): void;
  openRawIp(family: 4 | 6, protocol: number): number;
  openTun(name: string): [number, string];
  close(fd: number): void;
  recvBatch(fd: number, buf: Buffer, slotSize: number, headroom: number, count: number, meta: Int32Array): number;
  sendBatch(fd: number, buf: Buffer, desc: Int32Array, count: number): number;
  readBatch(fd: number, buf: Buffer, slotSize: number, headroom: number, count: number, meta: Int32Array): number;
  writeBatch(fd: number, buf: Buffer, desc: Int32Array, count: number): number;
  sendTo(fd: number, buf: Buffer, offset: number, length: number, address: string): number;
  recvFrom(fd: number, buf: Buffer): [number, string] | null;
  /** [length, source, TTL/hop limit (-1 unknown), destination ("" unknown), ifindex] or null. */
  recvMsg(fd: number, buf: Buffer): [number, string, number, string, number] | null;
  bindAddr(fd: number, address: string, scopeId?: number): void;
  /** A bound, listening TCP socket (SO_REUSEADDR, SO_REUSEPORT when asked; IPv6 sockets v6-only). */
  listenTcp(address: string, port: number, backlog: number, reusePort: boolean): number;
  /** A bound UDP socket (SO_REUSEPORT when asked; IPv6 sockets v6-only). */
  bindUdp?(address: string, port: number, reusePort: boolean): number;
  /** SO_ATTACH_REUSEPORT_CBPF: the program picks the socket of fd's SO_REUSEPORT group. */
  setReuseportProgram?(fd: number, program: Uint8Array): void;
  setsockopt(fd: number, level: number, name: number, value: number | Uint8Array): void;
  getsockopt(fd: number, level: number, name: number, size?: number): number | Buffer;
  setFanoutProgram(fd: number, program: Uint8Array): void;
  ifInfo(name: string): { index: number; mac: Buffer; mtu: number; flags: number };
  poll(fd: number, events: number, cb: (status: number, events: number) => void): number;
  pollStop(id: number): void;
  readonly constants: NativeConstants;
}

export class NativeUnavailableError extends Error {
  override name = "NativeUnavailableError";
}

let cached: NativeAddon | undefined;
let failure: string | undefined;

/** The package's root (where package.json is), from the sources (src/) and the compiled dist/src/ alike. */
function packageRoot(): string {
  let dir = import.meta.dirname;
  while (!existsSync(join(dir, "package.json"))) {
    const up = dirname(dir);
    if (up === dir) return join(import.meta.dirname, "..", "..");
    dir = up;
  }
  return dir;
}

/** Where the built addon lives: $TVS_NATIVE_PATH, else native/build/Release in the package. */
export function nativeAddonPath(): string {
  const fromEnv = process.env.TVS_NATIVE_PATH;
  if (fromEnv) return resolve(fromEnv);
  return join(packageRoot(), "native", "build", "Release", "tvs_native.node");
}

/** Load the addon once; throws NativeUnavailableError saying why and what to do. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  if (failure) throw new NativeUnavailableError(failure);
  const path = nativeAddonPath();
  if (process.platform !== "linux") {
    failure = `The packet data plane needs Linux AF_PACKET sockets; this is "${process.platform}". Use --dataplane proxy`;
  } else if (!existsSync(path)) {
    failure = `The native addon is not built ("${path}" is missing). Run \`npm run build:native\` (needs a C compiler and node-gyp), or use --dataplane proxy`;
  } else {
    try {
      cached = createRequire(import.meta.url)(path) as NativeAddon;
      return cached;
    } catch (e) {
      failure = `The native addon at "${path}" failed to load (${(e as Error).message}). Rebuild it with \`npm run build:native\`, or use --dataplane proxy`;
    }
  }
  throw new NativeUnavailableError(failure);
}

/** Whether the addon can be loaded, without throwing. */
export function nativeStatus(): { ok: true } | { ok: false; reason: string } {
  try {
    loadNative();
    return { ok: true };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** Turn EPERM/EACCES from socket creation into advice. */
export function explainSocketError(e: unknown, what: string): Error {
  const code = (e as { code?: string }).code;
  if (code === "EPERM" || code === "EACCES")
    return new Error(
      `Cannot open ${what}: permission denied. Raw sockets need CAP_NET_RAW (run tvsd as root, or \`setcap cap_net_raw,cap_net_admin+ep $(command -v node)\`), or use --dataplane proxy`,
    );
  return new Error(`Cannot open ${what}: ${(e as Error).message}`);
}
