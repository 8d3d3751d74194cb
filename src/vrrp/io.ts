// What the VRRP engine needs from the system, as interfaces: raw IP protocol 112 channels, the
// interface's addresses and link state, gratuitous ARP / unsolicited NA, owning and releasing the
// virtual addresses, and running scripts. tvsd wires the real ones (control/vrrp-host.ts: the
// native addon, `ip addr`, the packet plane's ARP/ND switch); tests wire an in-memory segment.

import type { Logger } from "../core/log.ts";
import type { VirtualAddress as VipSpec } from "./spec.ts";

export interface RxDatagram {
  /** The VRRP message (after the IP header). */
  payload: Uint8Array;
  src: string;
  /** Destination address ("" when the socket could not tell). */
  dst: string;
  /** TTL / hop limit; -1 when unknown. */
  ttl: number;
  /** The checksum was verified by the kernel (IPv6 raw socket with IPV6_CHECKSUM). */
  checksumVerified: boolean;
}

export interface ChannelOptions {
  iface: string;
  family: 4 | 6;
  /** Join the VRRP group on the interface (false: unicast only). */
  multicast: boolean;
  /** Source address of our adverts (unicast_src_ip / mcast_src_ip / the interface's primary). */
  src: string;
}

/** One raw protocol-112 socket on one interface and family, shared by the instances there. */
export interface VrrpChannel {
  /** Send one VRRP message to dst with TTL / hop limit 255. Throws when the kernel refuses. */
  send(payload: Uint8Array, dst: string): void;
  close(): void;
}

export interface VrrpHost {
  open(opts: ChannelOptions, onRx: (rx: RxDatagram) => void): VrrpChannel;
  interfaceExists(iface: string): boolean;
  /** Carrier and administrative state: false when the link is down. */
  linkUp(iface: string): boolean;
  /** The interface's primary address of a family (IPv6: its link-local one), if any. */
  primaryAddress(iface: string, family: 4 | 6): string | undefined;
  /** Gratuitous ARP (IPv4) / unsolicited neighbour advertisement (IPv6) for each address. */
  announce(iface: string, addrs: readonly string[]): void;
}

/** Owning a VIP: the socket plane configures it on the interface; the packet plane answers ARP/ND for it. */
export interface VipDriver {
  own(vip: VipSpec, iface: string): Promise<void>;
  release(vip: VipSpec, iface: string): Promise<void>;
}

export interface ScriptResult {
  /** Exit status; null when killed (timeout) or not started. */
  code: number | null;
  error?: string;
}

export interface ScriptRunner {
  /** Run a command line (keepalived's splitting: words, quotes) with extra arguments appended. */
  run(
    command: string,
    args: readonly string[],
    opts: { timeoutMs: number; user?: string | undefined },
  ): Promise<ScriptResult>;
}

/** The VRRP engine logs through the one Logger of tvs (core/log.ts). */
export type VrrpLog = Logger;

/** Timers, injectable for tests. */
export interface VrrpTimers {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}
