// The dashboard's data: once a second the feed reads the daemon (one read whatever the number of
// open dashboards), turns counter deltas into rates, keeps the last minutes of rates for the charts,
// and hands every connected dashboard the same JSON frame. A dashboard that connects first gets the
// history, so its charts show the last minutes at once.
//
// Rates here are exact per-interval deltas (connections/s, packets/s, bytes/s over the last sample),
// not the kernel-style smoothed estimator ipvsadm --rate shows: a chart wants what happened in each
// second. A counter that went backwards (ipvsadm -Z, a service re-created) counts as 0 for that
// second.

import type { CountersView, ServiceView } from "../control/api/protocol.ts";
import { formatEndpoint } from "../core/addr.ts";
import type { ObservedState, ObserveSource } from "./source.ts";

export const FEED_INTERVAL_MS = 1000;
/** Samples kept for the charts (five minutes at one a second). */
export const HISTORY_SAMPLES = 300;
/** Services that get their own history (the first ones in table order); the rest show numbers only. */
export const CHARTED_SERVICES = 50;

export interface Rates {
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

export interface DestFrame {
  dest: string;
  fwd: string;
  weight: number;
  active: number;
  inactive: number;
  persistent: number;
  conns: number;
  cps: number;
  health?: {
    state: "up" | "down" | "unknown";
    checker: string;
    lastResult: string;
    reason: string;
    lastCheckAgoMs?: number;
    latencyMs?: number;
    sinceChangeMs: number;
  };
}

export interface ServiceFrame {
  id: string;
  scheduler: string;
  persistent: number;
  active: number;
  inactive: number;
  conns: number;
  rates: Rates;
  dests: DestFrame[];
}

export interface Frame {
  t: number;
  dataplane: string;
  config?: string;
  uptimeMs: number;
  totals: { conns: number; active: number; inactive: number; rates: Rates };
  connTable: { entries: number; limit: number; refused: number };
  workers: number;
  services: ServiceFrame[];
  vrrp: ObservedState["vrrp"];
  sync: ObservedState["sync"];
  daemons: ObservedState["snapshot"]["daemons"];
  notes: string[];
}

export interface Sample {
  t: number;
  total: Rates;
  /** Service id → [cps, inBps + outBps] for the charted services. */
  svc: Record<string, [number, number]>;
}

const ZERO: Rates = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

function rates(now: CountersView, before: CountersView | undefined, seconds: number): Rates {
  if (!before || seconds <= 0) return { ...ZERO };
  const r = (a: number, b: number) => Math.max(0, (a - b) / seconds);
  return {
    cps: r(now.conns, before.conns),
    inPps: r(now.inPkts, before.inPkts),
    outPps: r(now.outPkts, before.outPkts),
    inBps: r(now.inBytes, before.inBytes),
    outBps: r(now.outBytes, before.outBytes),
  };
}

function destKey(svc: string, addr: string, port: number): string {
  return `${svc}|${addr}|${port}`;
}

export type FrameListener = (json: string) => void;

export class DashboardFeed {
  readonly #source: ObserveSource;
  readonly #intervalMs: number;
  readonly #listeners = new Set<FrameListener>();
  readonly #history: Sample[] = [];
  #prev: { t: number; total: CountersView; counters: Map<string, CountersView> } | undefined;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;
  #lastFrame: string | undefined;
  #onError: (err: unknown) => void;

  constructor(source: ObserveSource, opts: { intervalMs?: number; onError?: (err: unknown) => void } = {}) {
    this.#source = source;
    this.#intervalMs = opts.intervalMs ?? FEED_INTERVAL_MS;
    this.#onError = opts.onError ?? (() => {});
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => void this.tick(), this.#intervalMs);
    this.#timer.unref?.();
    void this.tick();
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#listeners.clear();
  }

  /** Follow frames (JSON text); returns the function that stops following. */
  subscribe(l: FrameListener): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }

  get clients(): number {
    return this.#listeners.size;
  }

  history(): Sample[] {
    return [...this.#history];
  }

  /** The last frame sent (JSON), for a dashboard that has just connected. */
  get lastFrame(): string | undefined {
    return this.#lastFrame;
  }

  /** Take one sample: read, compute rates, record history, send the frame to every listener. */
  async tick(): Promise<void> {
    if (this.#busy) return; // a slow read never piles up reads
    this.#busy = true;
    try {
      const state = await this.#source.read();
      const t = Date.now();
      // The whole frame only when someone watches; otherwise just the charts' sample.
      if (this.#listeners.size === 0) {
        this.#sampleOnly(state, t);
        this.#lastFrame = undefined;
      } else {
        const json = JSON.stringify(this.#frame(state, t));
        this.#lastFrame = json;
        for (const l of [...this.#listeners]) {
          try {
            l(json);
          } catch {
            this.#listeners.delete(l);
          }
        }
      }
    } catch (err) {
      this.#onError(err);
    } finally {
      this.#busy = false;
    }
  }

  /** Record the history sample (totals and the charted services) without building a frame. */
  #sampleOnly(state: ObservedState, t: number): void {
    const prev = this.#prev;
    const seconds = prev ? (t - prev.t) / 1000 : 0;
    const counters = new Map<string, CountersView>();
    const sample: Sample = { t, total: rates(state.snapshot.stats, prev?.total, seconds), svc: {} };
    const services = state.snapshot.services;
    for (let i = 0; i < services.length && i < CHARTED_SERVICES; i++) {
      const s = services[i] as ServiceView;
      const id = serviceId(s);
      counters.set(id, s.stats);
      const r = rates(s.stats, prev?.counters.get(id), seconds);
      sample.svc[id] = [r.cps, r.inBps + r.outBps];
    }
    this.#prev = { t, total: state.snapshot.stats, counters };
    if (prev) this.#record(sample);
  }

  #record(sample: Sample): void {
    this.#history.push(sample);
    if (this.#history.length > HISTORY_SAMPLES) this.#history.shift();
  }

  #frame(state: ObservedState, t: number): Frame {
    const prev = this.#prev;
    const seconds = prev ? (t - prev.t) / 1000 : 0;
    const counters = new Map<string, CountersView>();
    const checks = new Map<string, ObservedState["status"]["checks"][number]>();
    for (const c of state.status.checks) {
      const key = `${c.service}|${c.dest}`;
      const cur = checks.get(key);
      // Several checkers on one server: show the failing one.
      if (!cur || (cur.state === "up" && c.state !== "up")) checks.set(key, c);
    }
    let active = 0;
    let inactive = 0;
    const sample: Sample = { t, total: rates(state.snapshot.stats, prev?.total, seconds), svc: {} };
    const services = state.snapshot.services.map((s: ServiceView, i): ServiceFrame => {
      const id = serviceId(s);
      counters.set(id, s.stats);
      const r = rates(s.stats, prev?.counters.get(id), seconds);
      if (i < CHARTED_SERVICES) sample.svc[id] = [r.cps, r.inBps + r.outBps];
      let sa = 0;
      let si = 0;
      const dests = s.dests.map((d): DestFrame => {
        const k = destKey(id, d.spec.addr, d.spec.port);
        counters.set(k, d.stats);
        sa += d.activeConns;
        si += d.inactConns;
        const shown = formatEndpoint(d.spec.addr, d.spec.port);
        const c = checks.get(`${id}|${shown}`);
        const f: DestFrame = {
          dest: shown,
          fwd: d.spec.fwd,
          weight: d.spec.weight,
          active: d.activeConns,
          inactive: d.inactConns,
          persistent: d.persistConns,
          conns: d.stats.conns,
          cps: rates(d.stats, prev?.counters.get(k), seconds).cps,
        };
        if (c)
          f.health = {
            state: c.state,
            checker: c.checker,
            lastResult: c.lastResult,
            reason: c.reason,
            sinceChangeMs: c.sinceChangeMs,
            ...(c.lastCheckAgoMs !== undefined ? { lastCheckAgoMs: c.lastCheckAgoMs } : {}),
            ...(c.latencyMs !== undefined ? { latencyMs: c.latencyMs } : {}),
          };
        return f;
      });
      active += sa;
      inactive += si;
      return {
        id,
        scheduler: s.options.scheduler,
        persistent: s.options.persistent ? s.options.timeout : 0,
        active: sa,
        inactive: si,
        conns: s.stats.conns,
        rates: r,
        dests: dests.sort((a, b) => a.dest.localeCompare(b.dest, "en", { numeric: true })),
      };
    });
    // A checked real server that is down is out of the table (or at weight 0): show it anyway.
    for (const svc of services) {
      const present = new Set(svc.dests.map((d) => d.dest));
      for (const c of checks.values()) {
        if (c.service !== svc.id || present.has(c.dest)) continue;
        svc.dests.push({
          dest: c.dest,
          fwd: "",
          weight: 0,
          active: 0,
          inactive: 0,
          persistent: 0,
          conns: 0,
          cps: 0,
          health: {
            state: c.state,
            checker: c.checker,
            lastResult: c.lastResult,
            reason: c.reason,
            sinceChangeMs: c.sinceChangeMs,
            ...(c.lastCheckAgoMs !== undefined ? { lastCheckAgoMs: c.lastCheckAgoMs } : {}),
            ...(c.latencyMs !== undefined ? { latencyMs: c.latencyMs } : {}),
          },
        });
      }
    }
    this.#prev = { t, total: state.snapshot.stats, counters };
    if (prev) this.#record(sample);
    const frame: Frame = {
      t,
      dataplane: state.status.dataplane,
      uptimeMs: state.status.uptimeMs,
      totals: { conns: state.snapshot.stats.conns, active, inactive, rates: sample.total },
      connTable: {
        entries: state.runtime.connEntries,
        limit: state.runtime.connLimit,
        refused: state.runtime.connRefused,
      },
      workers: state.runtime.workers,
      services,
      vrrp: state.vrrp,
      sync: state.sync,
      daemons: state.snapshot.daemons,
      notes: state.status.notes,
    };
    if (state.status.config !== undefined) frame.config = state.status.config;
    return frame;
  }
}

/** The id serviceKeyId gives ("tcp 10.0.0.1:80", "fwmark 1 ipv4"), from the plain key. */
export function serviceId(s: ServiceView): string {
  const k = s.key;
  return k.kind === "fwmark" ? `fwmark ${k.fwmark} ipv${k.family}` : `${k.protocol} ${formatEndpoint(k.addr, k.port)}`;
}
