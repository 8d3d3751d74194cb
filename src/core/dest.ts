// A real server (the kernel's struct ip_vs_dest): where a virtual service forwards, how, with what
// weight and thresholds, and the live connection counts that the schedulers read. The overload
// flag is set and cleared exactly where the kernel does it: when a connection binds or unbinds,
// and when an edit raises or clears the upper threshold.

import { type Family, formatEndpoint, ipFamily } from "./addr.ts";
import type { VirtualService } from "./service.ts";
import { Counters } from "./stats/counters.ts";

export type FwdMethod = "masq" | "local" | "tunnel" | "droute" | "fullnat";
export type TunType = "ipip" | "gue" | "gre";

export interface TunOptions {
  type: TunType;
  /** UDP port for GUE; 0 otherwise. */
  port: number;
  nocsum: boolean;
  csum: boolean;
  remcsum: boolean;
}

export interface DestSpec {
  addr: string;
  port: number;
  fwd: FwdMethod;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tun: TunOptions;
}

export const DEFAULT_TUN: TunOptions = { type: "ipip", port: 0, nocsum: false, csum: false, remcsum: false };

/**
 * What a tunnel type does not take, as ipvsadm's table of tunnel types and options says (ipip:
 * no port and no checksum option; gue: a port and at most one of nocsum, csum, remcsum; gre: no
 * port and at most one of nocsum, csum): the complaint, or undefined when the options fit.
 */
export function tunOptionsProblem(t: TunOptions): string | undefined {
  const flags = (["nocsum", "csum", "remcsum"] as const).filter((f) => t[f]);
  if (t.type === "ipip") {
    if (t.port !== 0) return `Tunnel type "ipip" takes no tunnel port`;
    if (flags.length > 0) return `Tunnel type "ipip" takes no checksum option ("${flags[0]}")`;
    return undefined;
  }
  if (t.type === "gre" && t.port !== 0) return `Tunnel type "gre" takes no tunnel port`;
  if (t.type === "gre" && t.remcsum) return `Tunnel type "gre" does not support remote checksum offload ("remcsum")`;
  if (flags.length > 1) return `Tunnel checksum options "${flags.join('" and "')}" exclude each other`;
  return undefined;
}

/** A destination spec with the defaults ipvsadm applies (-g, weight 1, no thresholds, ipip). */
export function destSpec(addr: string, port: number, over: Partial<DestSpec> = {}): DestSpec {
  return {
    addr,
    port,
    fwd: "droute",
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tun: { ...DEFAULT_TUN },
    ...over,
  };
}

/** Which counter a connection is charged to while bound to a destination. */
export type ConnKind = "active" | "inactive" | "template";

export class Dest {
  readonly addr: string;
  readonly port: number;
  readonly family: Family;
  fwd: FwdMethod;
  weight: number;
  /**
   * The latest non-zero weight (the kernel's last_weight): set on every add, and on every edit
   * that does not set weight 0, so a quiesced destination keeps its mh slots.
   */
  lastWeight: number;
  uThreshold: number;
  lThreshold: number;
  tun: TunOptions;

  activeConns = 0;
  inactConns = 0;
  persistConns = 0;
  overloaded = false;
  /** False once removed from its service (then it sits in the trash until unreferenced). */
  available = true;
  readonly stats = new Counters();
  /** The service this destination belongs (or, in the trash, belonged) to. */
  svc: VirtualService | undefined = undefined;
  /** Opaque per-dest slot for the data plane (resolved MAC, socket pool, ...). */
  plane: unknown = undefined;
  /**
   * Called after anything a scheduler ranks by changes (counts, weight, overload flag): set by an
   * indexing scheduler (lc/wlc/sed/nq) while the destination is in its service. Change those
   * fields only through the methods below so the index stays exact.
   */
  loadWatcher: ((d: Dest) => void) | undefined = undefined;

  constructor(spec: DestSpec) {
    this.addr = spec.addr;
    this.port = spec.port;
    this.family = ipFamily(spec.addr);
    this.fwd = spec.fwd;
    this.weight = spec.weight;
    this.lastWeight = spec.weight;
    this.uThreshold = spec.uThreshold;
    this.lThreshold = spec.lThreshold;
    this.tun = { ...spec.tun };
  }

  get endpoint(): string {
    return formatEndpoint(this.addr, this.port);
  }

  /** Connections holding a reference (the kernel's refcnt beyond the service's own). */
  get refs(): number {
    return this.activeConns + this.inactConns + this.persistConns;
  }

  /** The kernel's ip_vs_dest_totalconns: active + inactive (templates excluded). */
  get totalConns(): number {
    return this.activeConns + this.inactConns;
  }

  spec(): DestSpec {
    return {
      addr: this.addr,
      port: this.port,
      fwd: this.fwd,
      weight: this.weight,
      uThreshold: this.uThreshold,
      lThreshold: this.lThreshold,
      tun: { ...this.tun },
    };
  }

  /**
   * Apply an edit, or a re-add from the trash when `add` is true (the kernel's
   * __ip_vs_update_dest): last_weight follows every add and every non-zero weight; raising or
   * clearing the upper threshold clears the overload flag.
   */
  update(spec: DestSpec, add = false): void {
    this.fwd = spec.fwd;
    if (add || spec.weight !== 0) this.lastWeight = spec.weight;
    this.weight = spec.weight;
    this.tun = { ...spec.tun };
    if (spec.uThreshold === 0 || spec.uThreshold > this.uThreshold) this.overloaded = false;
    this.uThreshold = spec.uThreshold;
    this.lThreshold = spec.lThreshold;
    this.loadWatcher?.(this);
  }

  /** A connection starts using this destination (ip_vs_bind_dest). */
  bind(kind: ConnKind): void {
    if (kind === "template") this.persistConns++;
    else if (kind === "inactive") this.inactConns++;
    else this.activeConns++;
    if (this.uThreshold !== 0 && this.totalConns >= this.uThreshold) this.overloaded = true;
    this.loadWatcher?.(this);
  }

  /** A connection stops using this destination (ip_vs_unbind_dest). */
  unbind(kind: ConnKind): void {
    if (kind === "template") this.persistConns--;
    else if (kind === "inactive") this.inactConns--;
    else this.activeConns--;
    if (this.lThreshold !== 0) {
      if (this.totalConns < this.lThreshold) this.overloaded = false;
    } else if (this.uThreshold !== 0) {
      if (this.totalConns * 4 < this.uThreshold * 3) this.overloaded = false;
    } else {
      this.overloaded = false;
    }
    this.loadWatcher?.(this);
  }

  /** A bound connection entered ESTABLISHED (inactive → active). */
  becameActive(): void {
    this.inactConns--;
    this.activeConns++;
    this.loadWatcher?.(this);
  }

  /** A bound connection left ESTABLISHED (active → inactive). */
  becameInactive(): void {
    this.activeConns--;
    this.inactConns++;
    this.loadWatcher?.(this);
  }
}
