// Batched TCP connect probes through the native addon (native/src/tcp_probe.c): each probe is a
// non-blocking connect registered with one private epoll instance, which a single uv_poll watches;
// when it turns readable every finished probe is collected in one call and its descriptor is
// already closed. Health checking uses it for TCP_CHECK at thousands of probes a second: no
// libuv handle, no JavaScript object and no timer per probe (the caller owns the time limits).
//
// Contract: start() returns a ticket (>= 0) and later calls `done(errno)` exactly once (0 =
// connected, else the positive errno of the failure), never from inside start(); or it returns a
// negative errno when the probe failed before it started (then `done` is never called). cancel()
// closes a probe in flight; its `done` is then never called.

import net from "node:net";
import { loadNative, type NativeAddon } from "./native-addon.ts";

/** The addon's probe functions (see tcp_probe.c). */
interface ProbeAddon {
  probeOpen(): number;
  probeConnect(
    ep: number,
    token: number,
    family: 4 | 6,
    addr: Buffer,
    port: number,
    bind: Buffer | null,
    bindPort: number,
  ): number;
  probeCollect(ep: number, out: Int32Array): number;
  close(fd: number): void;
  poll(fd: number, events: number, cb: (status: number, events: number) => void): number;
  pollStop(id: number): void;
  readonly constants: NativeAddon["constants"];
}

/** Where a probe goes: the shape of health's CheckTarget. */
export interface ProbeTarget {
  address: string;
  port: number;
  bindTo?: string;
  bindPort?: number;
}

const BATCH = 256;

/** Packed addresses, parsed once per distinct string (bounded: cleared when it grows past this). */
const ADDRESS_CACHE_LIMIT = 65536;

export class TcpProber {
  readonly #addon: ProbeAddon;
  readonly #ep: number;
  #pollId: number;
  /** Per ticket: the descriptor in flight (-1 = free), its callback, and the next free ticket. */
  #fds = new Int32Array(64).fill(-1);
  #dones: (((errno: number) => void) | undefined)[] = [];
  #free: number[] = [];
  readonly #out = new Int32Array(3 * BATCH);
  /** Callbacks and results of the batch being delivered (reused). */
  readonly #batchDone: ((errno: number) => void)[] = [];
  readonly #batchErr = new Int32Array(BATCH);
  readonly #addresses = new Map<string, { family: 4 | 6; bytes: Buffer }>();
  #inFlight = 0;
  #closed = false;

  /** Throws NativeUnavailableError (from loadNative) or an Error when epoll cannot be created. */
  constructor(addon: NativeAddon = loadNative()) {
    const a = addon as unknown as Partial<ProbeAddon>;
    if (typeof a.probeOpen !== "function" || typeof a.probeConnect !== "function")
      throw new Error("The native addon has no TCP probes; rebuild it with `npm run build:native`");
    this.#addon = a as ProbeAddon;
    const ep = this.#addon.probeOpen();
    if (ep < 0) throw new Error(`Cannot create the probes' epoll instance (errno ${-ep})`);
    this.#ep = ep;
    this.#pollId = this.#addon.poll(ep, this.#addon.constants.POLL_READABLE ?? 1, this.#collect);
  }

  /** Probes in flight. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Start a probe; see the contract in the header. Throws only on an address that is not an IP. */
  start(target: ProbeTarget, done: (errno: number) => void): number {
    if (this.#closed) throw new Error("TCP prober closed");
    const dst = this.#address(target.address);
    let bind: Buffer | null = null;
    if (target.bindTo !== undefined) {
      const b = this.#address(target.bindTo);
      if (b.family !== dst.family)
        throw new Error(`Cannot bind "${target.bindTo}" to probe "${target.address}": address families differ`);
      bind = b.bytes;
    }
    let ticket = this.#free.pop();
    if (ticket === undefined) {
      ticket = this.#dones.length;
      this.#dones.push(undefined);
      if (ticket >= this.#fds.length) {
        const fds = new Int32Array(this.#fds.length * 2).fill(-1);
        fds.set(this.#fds);
        this.#fds = fds;
      }
    }
    const fd = this.#addon.probeConnect(
      this.#ep,
      ticket,
      dst.family,
      dst.bytes,
      target.port,
      bind,
      target.bindPort ?? 0,
    );
    if (fd < 0) {
      this.#free.push(ticket);
      return fd;
    }
    this.#fds[ticket] = fd;
    this.#dones[ticket] = done;
    this.#inFlight++;
    return ticket;
  }

  /** Close a probe in flight (no callback follows); a finished or unknown ticket is ignored. */
  cancel(ticket: number): void {
    if (!(ticket >= 0 && ticket < this.#dones.length)) return;
    const fd = this.#fds[ticket] as number;
    if (fd < 0) return;
    this.#fds[ticket] = -1;
    this.#dones[ticket] = undefined;
    this.#free.push(ticket);
    this.#inFlight--;
    this.#addon.close(fd);
  }

  /** Close every probe in flight and the epoll instance. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#addon.pollStop(this.#pollId);
    for (let t = 0; t < this.#dones.length; t++) this.cancel(t);
    this.#addon.close(this.#ep);
  }

  #address(address: string): { family: 4 | 6; bytes: Buffer } {
    let a = this.#addresses.get(address);
    if (a) return a;
    if (address.includes("%")) throw new Error(`Cannot probe "${address}": scoped addresses take the socket path`);
    const family = net.isIP(address);
    if (family === 4) a = { family: 4, bytes: Buffer.from(address.split(".").map(Number)) };
    else if (family === 6) a = { family: 6, bytes: ipv6Bytes(address) };
    else throw new Error(`Cannot probe "${address}": not an IP address`);
    if (this.#addresses.size >= ADDRESS_CACHE_LIMIT) this.#addresses.clear();
    this.#addresses.set(address, a);
    return a;
  }

  /**
   * The epoll descriptor is readable: collect finished probes, a batch at a time. Two passes per
   * batch: first every ticket is released (its descriptor is closed already, so a cancel() made
   * by a callback of this batch must find nothing to close), then the callbacks run.
   */
  readonly #collect = (): void => {
    if (this.#closed) return;
    const out = this.#out;
    for (;;) {
      const n = this.#addon.probeCollect(this.#ep, out);
      if (n <= 0) return;
      let m = 0;
      for (let i = 0; i < n; i++) {
        const ticket = out[3 * i] as number;
        const fd = out[3 * i + 2] as number;
        if (this.#fds[ticket] !== fd) continue;
        const done = this.#dones[ticket];
        this.#fds[ticket] = -1;
        this.#dones[ticket] = undefined;
        this.#free.push(ticket);
        this.#inFlight--;
        if (!done) continue;
        this.#batchDone[m] = done;
        this.#batchErr[m] = out[3 * i + 1] as number;
        m++;
      }
      for (let i = 0; i < m; i++) {
        const done = this.#batchDone[i] as (errno: number) => void;
        this.#batchDone[i] = noop;
        done(this.#batchErr[i] as number);
      }
      if (n < BATCH) return;
    }
  };
}

const noop = (): void => {};

/** The 16 bytes of an IPv6 address (net.isIP has said it is one). */
export function ipv6Bytes(address: string): Buffer {
  const zone = address.indexOf("%");
  let s = zone === -1 ? address : address.slice(0, zone);
  const out = Buffer.alloc(16);
  // An embedded dotted IPv4 tail becomes two hex groups.
  const lastColon = s.lastIndexOf(":");
  const tail = s.slice(lastColon + 1);
  if (tail.includes(".")) {
    const v4 = tail.split(".").map(Number);
    s = `${s.slice(0, lastColon + 1)}${(((v4[0] ?? 0) << 8) | (v4[1] ?? 0)).toString(16)}:${(((v4[2] ?? 0) << 8) | (v4[3] ?? 0)).toString(16)}`;
  }
  const [head, rest] = s.includes("::") ? (s.split("::") as [string, string]) : [s, undefined];
  const h = head === "" ? [] : head.split(":");
  const r = rest === undefined || rest === "" ? [] : rest.split(":");
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill("0"), ...r];
  for (let i = 0; i < 8; i++) out.writeUInt16BE(Number.parseInt(groups[i] ?? "0", 16), 2 * i);
  return out;
}
