// An in-memory Ethernet segment for VRRP tests: hosts with interfaces and addresses, channels that
// deliver each advert (TTL 255, or what a test sets) to every other channel on the segment that
// listens to the group or owns the unicast destination, and a recording VIP driver. The same
// engine code runs on it as on real sockets (control/vrrp-host.ts).

import type { ChannelOptions, RxDatagram, VipDriver, VrrpChannel, VrrpHost } from "./io.ts";
import type { VirtualAddress as VipSpec } from "./spec.ts";

interface Listener {
  host: MemoryHost;
  opts: ChannelOptions;
  onRx: (rx: RxDatagram) => void;
  open: boolean;
}

export class MemorySegment {
  readonly listeners = new Set<Listener>();
  /** Every datagram sent, for assertions: [from host, dst, payload]. */
  readonly sent: { from: string; dst: string; payload: Uint8Array }[] = [];
  /** TTL the segment delivers with (a test may lower it to see ip_ttl_err). */
  ttl = 255;
  /** Drops everything while true (a cut cable). */
  cut = false;

  deliver(from: Listener, payload: Uint8Array, dst: string): void {
    this.sent.push({ from: from.host.name, dst, payload });
    if (this.cut || !from.host.up) return;
    const group = dst === "224.0.0.18" || dst === "ff02::12";
    for (const l of this.listeners) {
      if (l === from || l.host === from.host || !l.open || !l.host.up) continue;
      if (l.opts.family !== from.opts.family) continue;
      if (group ? !l.opts.multicast : l.opts.src !== dst) continue;
      const rx: RxDatagram = {
        payload: Uint8Array.from(payload),
        src: from.opts.src,
        dst,
        ttl: this.ttl,
        checksumVerified: false,
      };
      setImmediate(() => {
        if (l.open) l.onRx(rx);
      });
    }
  }
}

export class MemoryHost implements VrrpHost {
  readonly name: string;
  readonly segment: MemorySegment;
  readonly addrs: Record<string, { 4?: string; 6?: string }>;
  /** Link state per interface (all up by default). */
  readonly down = new Set<string>();
  /** The whole host is reachable (false: it vanished, as a killed peer). */
  up = true;
  readonly announced: { iface: string; addrs: string[] }[] = [];

  constructor(name: string, segment: MemorySegment, addrs: Record<string, { 4?: string; 6?: string }>) {
    this.name = name;
    this.segment = segment;
    this.addrs = addrs;
  }

  open(opts: ChannelOptions, onRx: (rx: RxDatagram) => void): VrrpChannel {
    const l: Listener = { host: this, opts, onRx, open: true };
    this.segment.listeners.add(l);
    return {
      send: (payload, dst) => this.segment.deliver(l, payload, dst),
      close: () => {
        l.open = false;
        this.segment.listeners.delete(l);
      },
    };
  }
  interfaceExists(iface: string): boolean {
    return iface in this.addrs;
  }
  linkUp(iface: string): boolean {
    return !this.down.has(iface);
  }
  primaryAddress(iface: string, family: 4 | 6): string | undefined {
    return this.addrs[iface]?.[family];
  }
  announce(iface: string, addrs: readonly string[]): void {
    this.announced.push({ iface, addrs: [...addrs] });
  }
}

/** Records which VIPs are held, per host. */
export class MemoryVips implements VipDriver {
  readonly held = new Set<string>();
  readonly log: string[] = [];
  async own(vip: VipSpec, iface: string): Promise<void> {
    this.held.add(vip.addr);
    this.log.push(`own ${vip.addr} ${iface}`);
  }
  async release(vip: VipSpec, iface: string): Promise<void> {
    this.held.delete(vip.addr);
    this.log.push(`release ${vip.addr} ${iface}`);
  }
}
