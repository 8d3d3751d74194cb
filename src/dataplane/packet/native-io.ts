// The native addon (native/, built by tools/build-native.mjs), loaded lazily on first use, and
// NativePacketIo: a PacketIo over an AF_PACKET socket bound to one interface. Loading never
// happens at import time, so the proxy data plane, the CLI and the config checker work where the
// addon is missing; loadNative() explains what is wrong and what to do.

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { FrameBatch, type PacketIo, VNET_HDR_LEN } from "./io.ts";

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
    if (up === dir) return join(import.meta.dirname, "..", "..", "..");
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

export interface NativePacketIoOptions {
  /** Interface to bind. */
  ifname: string;
  /** Use PACKET_VNET_HDR (checksum offload and 64 KB GSO frames); default true. */
  vnetHdr?: boolean;
  /** Join this PACKET_FANOUT group so several workers share the interface. */
  fanoutGroup?: number;
  /**
   * How the group spreads frames: "cbpf" (default; a program set later with setFanoutProgram
   * decides, see steering.ts) or "hash" (the kernel's flow hash: fine for DR/TUN only, since a
   * NAT reply's 5-tuple differs from its request's).
   */
  fanoutMode?: "cbpf" | "hash";
  /**
   * Have the kernel reassemble IPv4 fragments before they reach the group
   * (PACKET_FANOUT_FLAG_DEFRAG), so the pipeline always sees the transport ports; default true.
   */
  defrag?: boolean;
  /** Receive buffer size to force (SO_RCVBUFFORCE); default 4 MB. */
  rcvbuf?: number;
}

/** linux/if_packet.h (since 4.20): members of the group do not get outgoing frames. */
const PACKET_FANOUT_FLAG_IGNORE_OUTGOING = 0x4000;

/** Slot size for full 64 KB GSO frames plus the vnet header and headroom. */
export const GSO_SLOT = 65536 + 256;
/** Slot size for MTU-sized frames when vnet headers are off (GRO must then be off). */
export const PLAIN_SLOT = 2048 + 128;

/**
 * PacketIo over one AF_PACKET socket: created with protocol 0, options set, then bound with
 * ETH_P_ALL (so no frame from another interface slips in before the bind); outgoing frames of
 * other sockets are ignored (PACKET_IGNORE_OUTGOING).
 */
export class NativePacketIo implements PacketIo {
  readonly vnetHdr: boolean;
  readonly frameCapacity: number;
  readonly ifindex: number;
  readonly mac: Buffer;
  readonly mtu: number;
  readonly fd: number;
  readonly slotSize: number;
  #n: NativeAddon;
  #polls = new Set<number>();
  #closed = false;

  constructor(opts: NativePacketIoOptions) {
    const n = loadNative();
    this.#n = n;
    const C = n.constants as Record<string, number>;
    const info = n.ifInfo(opts.ifname);
    this.ifindex = info.index;
    this.mac = info.mac;
    this.mtu = info.mtu;
    this.vnetHdr = opts.vnetHdr ?? true;
    this.slotSize = this.vnetHdr ? GSO_SLOT : PLAIN_SLOT;
    let fd: number;
    try {
      fd = n.socketPacket();
    } catch (e) {
      throw explainSocketError(e, `a packet socket on "${opts.ifname}"`);
    }
    this.fd = fd;
    try {
      if (this.vnetHdr) n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_VNET_HDR!, 1);
      n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_AUXDATA!, 1);
      n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_IGNORE_OUTGOING!, 1);
      try {
        n.setsockopt(fd, C.SOL_SOCKET!, C.SO_RCVBUFFORCE!, opts.rcvbuf ?? 4 << 20);
      } catch {
        n.setsockopt(fd, C.SOL_SOCKET!, C.SO_RCVBUF!, opts.rcvbuf ?? 4 << 20);
      }
      n.bindPacket(fd, info.index, C.ETH_P_ALL!);
      if (opts.fanoutGroup !== undefined) {
        const mode = opts.fanoutMode === "hash" ? C.PACKET_FANOUT_HASH! : C.PACKET_FANOUT_CBPF!;
        // A fanout member's own PACKET_IGNORE_OUTGOING no longer applies once it joins: the
        // group's flag keeps frames the host sends on this interface away from the workers.
        const flags = PACKET_FANOUT_FLAG_IGNORE_OUTGOING | (opts.defrag === false ? 0 : C.PACKET_FANOUT_FLAG_DEFRAG!);
        n.setsockopt(fd, C.SOL_PACKET!, C.PACKET_FANOUT!, (opts.fanoutGroup & 0xffff) | ((mode | flags) << 16));
      }
    } catch (e) {
      n.close(fd);
      throw e;
    }
    this.frameCapacity = this.slotSize - 64 - (this.vnetHdr ? VNET_HDR_LEN : 0);
  }

  /** A batch sized for this io. */
  newBatch(size = 64): FrameBatch {
    return new FrameBatch(size, this.slotSize, size);
  }

  /** The last receive error (e.g. ENETDOWN while the interface is down); receiving goes on. */
  lastError: Error | undefined;
  receiveErrors = 0;

  receive(batch: FrameBatch): number {
    let got = 0;
    try {
      got = this.#n.recvBatch(this.fd, batch.buf, batch.slotSize, batch.headroom, batch.rxCapacity, batch.meta);
    } catch (e) {
      // A pending socket error (ENETDOWN, ENXIO when the interface goes) is reported once and
      // cleared by the kernel; it must not take the daemon down.
      this.lastError = e as Error;
      this.receiveErrors++;
    }
    batch.rxCount = got;
    return got;
  }

  /** Send the queued frames; a frame the kernel refuses (e.g. EMSGSIZE) is skipped and counted. */
  send(batch: FrameBatch): number {
    let sent = 0;
    let start = 0;
    let errors = 0;
    while (start < batch.txCount) {
      const view = start === 0 ? batch.tx : batch.tx.subarray(start * 2);
      const r = this.#n.sendBatch(this.fd, batch.buf, view, batch.txCount - start);
      if (r > 0) {
        sent += r;
        start += r;
      } else if (r === 0)
        break; // socket buffer full: drop the rest of this round
      else {
        errors++;
        start++;
      }
    }
    this.sendErrors += errors;
    return sent;
  }

  sendErrors = 0;

  watch(ready: () => void): () => void {
    const id = this.#n.poll(this.fd, this.#n.constants.POLL_READABLE!, () => ready());
    this.#polls.add(id);
    return () => {
      if (this.#polls.delete(id)) this.#n.pollStop(id);
    };
  }

  /** Join a link-layer multicast group (PACKET_ADD_MEMBERSHIP), e.g. VRRP's 01:00:5e:00:00:12. */
  addMembership(mac: Uint8Array): void {
    const C = this.#n.constants as Record<string, number>;
    const mreq = Buffer.alloc(16);
    mreq.writeInt32LE(this.ifindex, 0);
    mreq.writeUInt16LE(C.PACKET_MR_MULTICAST!, 4);
    mreq.writeUInt16LE(6, 6);
    mreq.set(mac, 8);
    this.#n.setsockopt(this.fd, C.SOL_PACKET!, C.PACKET_ADD_MEMBERSHIP!, mreq);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const id of this.#polls) this.#n.pollStop(id);
    this.#polls.clear();
    this.#n.close(this.fd);
  }
}
