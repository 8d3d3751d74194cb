// One running VRRP instance: the pure state machine (fsm.ts) driven by real time and real adverts.
// It sends what the machine asks for (to the group, or one copy per unicast peer, the v3 checksum
// computed per destination), owns the VIPs while MASTER and releases them on leaving it (one
// queue, so an own never overtakes a release), announces them (gratuitous ARP / unsolicited NA:
// garp_master_repeat at once, again after garp_master_delay, every garp_master_refresh), runs the
// notify scripts, and keeps keepalived's counters. The manager (manager.ts) feeds it received
// adverts, tracking results and sync-group moves.

import {
  type ChecksumForm,
  checkAdvert,
  encodeAdvert,
  type InstanceView,
  VRRP_GROUP4,
  VRRP_GROUP6,
  type VrrpAdvert,
  type VrrpRxError,
} from "./codec.ts";
import { type FsmAction, VrrpFsm, type VrrpState } from "./fsm.ts";
import type { ScriptRunner, VipDriver, VrrpChannel, VrrpHost, VrrpLog, VrrpTimers } from "./io.ts";
import type { VirtualAddress as VipSpec, NotifyScripts as VrrpNotify } from "./spec.ts";
import { type VrrpCounters, type VrrpInstanceStatus, type VrrpTransition, zeroCounters } from "./status.ts";

export interface GarpSettings {
  delayMs: number;
  repeat: number;
  refreshMs: number;
  refreshRepeat: number;
}

/** An instance's settings after defaults, globals and the host's addresses are applied. */
export interface InstanceConfig {
  name: string;
  iface: string;
  family: 4 | 6;
  version: 2 | 3;
  vrid: number;
  priority: number;
  intervalMs: number;
  preempt: boolean;
  preemptDelayMs: number;
  wantState: "MASTER" | "BACKUP";
  auth?: { type: "PASS"; pass: string } | undefined;
  vips: VipSpec[];
  excludedVips: VipSpec[];
  /** Our advert source address. */
  src: string;
  unicastPeers: string[];
  garp: GarpSettings;
  notify: VrrpNotify;
  /** Notify scripts run as this user (script_user), if set. */
  scriptUser?: string | undefined;
  v3Ipv4Checksum: ChecksumForm;
  syncGroup?: string | undefined;
}

export interface InstanceDeps {
  host: VrrpHost;
  vips: VipDriver;
  scripts: ScriptRunner;
  log: VrrpLog;
  timers: VrrpTimers;
  /** The instance's channel (shared with others on the interface). */
  channel: VrrpChannel;
  /** Every transition, after the instance acted on it. */
  onTransition(inst: VrrpInstance, t: VrrpTransition): void;
}

/** How long a notify script may run. */
const NOTIFY_TIMEOUT_MS = 30_000;

export class VrrpInstance {
  readonly cfg: InstanceConfig;
  readonly fsm: VrrpFsm;
  readonly counters: VrrpCounters = zeroCounters();
  readonly #deps: InstanceDeps;
  #timer: unknown;
  #garpTimers: unknown[] = [];
  #vipQueue: Promise<void> = Promise.resolve();
  #owned = false;
  #last: VrrpTransition | null = null;
  #faults = new Map<string, string>();
  #stopped = false;

  constructor(cfg: InstanceConfig, deps: InstanceDeps) {
    this.cfg = cfg;
    this.#deps = deps;
    this.fsm = new VrrpFsm({
      version: cfg.version,
      priority: cfg.priority,
      intervalMs: cfg.intervalMs,
      preempt: cfg.preempt,
      preemptDelayMs: cfg.preemptDelayMs,
      initialState: cfg.wantState,
      primaryAddr: cfg.src,
    });
  }

  get name(): string {
    return this.cfg.name;
  }
  get state(): VrrpState {
    return this.fsm.state;
  }
  get vipsOwned(): boolean {
    return this.#owned;
  }
  get addrs(): string[] {
    return this.cfg.vips.map((v) => v.addr);
  }

  view(): InstanceView {
    return {
      version: this.cfg.version,
      family: this.cfg.family,
      vrid: this.cfg.vrid,
      intervalMs: this.cfg.intervalMs,
      addrs: this.addrs,
      auth: this.cfg.auth,
      checkTtl: this.cfg.unicastPeers.length === 0,
    };
  }

  /** Start; a BACKUP start releases VIPs a previous run may have left configured. */
  start(opts: { reloadMaster?: boolean; faults?: Map<string, string> } = {}): void {
    this.#stopped = false;
    if (opts.faults) for (const [k, v] of opts.faults) this.#faults.set(k, v);
    if (this.#faults.size > 0) this.fsm.fault(this.#deps.timers.now(), [...this.#faults.values()].join("; "));
    this.#act(this.fsm.start(this.#deps.timers.now(), opts.reloadMaster ? { reloadMaster: true } : {}));
    if (this.fsm.state !== "MASTER") this.#queueRelease(true);
  }

  /** Step down: priority 0 if master, VIPs released, notify_stop. Resolves when the VIPs are gone. */
  async stop(reason = "stopped"): Promise<void> {
    if (this.#stopped) return this.#vipQueue;
    this.#act(this.fsm.stop(this.#deps.timers.now(), reason));
    this.#stopped = true;
    this.#clearTimer();
    this.#clearGarp();
    this.#runNotify("STOP");
    await this.#vipQueue;
  }

  /**
   * Leave without a word (a reload replacing this instance with one that takes over its state):
   * timers stop, nothing is sent, VIPs not in `keep` are released.
   */
  async retire(keep: ReadonlySet<string>): Promise<void> {
    this.#stopped = true;
    this.#clearTimer();
    this.#clearGarp();
    const drop = [...this.cfg.vips, ...this.cfg.excludedVips].filter((v) => !keep.has(v.addr));
    this.#vipQueue = this.#vipQueue.then(async () => {
      for (const v of drop) await this.#deps.vips.release(v, v.dev ?? this.cfg.iface).catch(() => undefined);
    });
    await this.#vipQueue;
  }

  /** A decoded advert for our VRID on our interface. */
  receive(ad: VrrpAdvert, src: string, ttl: number): void {
    if (this.#stopped || this.fsm.state === "INIT") return;
    if (src === this.cfg.src) return; // our own, looped back
    this.counters.advert_rcvd++;
    const check = checkAdvert(ad, ttl, this.view());
    if (check.error) {
      this.#count(check.error);
      this.#deps.log.debug("VRRP advert refused", {
        instance: this.name,
        from: src,
        error: check.error,
        detail: check.detail,
      });
    }
    if (!check.accept) return;
    if (ad.priority === 0) this.counters.pri_zero_rcvd++;
    this.#act(this.fsm.receive(this.#deps.timers.now(), { priority: ad.priority, src, intervalMs: ad.intervalMs }));
  }

  /** A packet for our VRID that failed to decode. */
  countError(e: VrrpRxError): void {
    this.#count(e);
  }

  #count(e: VrrpRxError): void {
    this.counters[e]++;
  }

  /** Tracking: the effective priority and the current faults (empty: healthy). */
  track(priority: number, faults: Map<string, string>): void {
    if (this.#stopped) return;
    const now = this.#deps.timers.now();
    if (priority !== this.fsm.effectivePriority) {
      this.#deps.log.info("VRRP effective priority changed", {
        instance: this.name,
        from: this.fsm.effectivePriority,
        to: priority,
      });
      this.#act(this.fsm.setPriority(now, priority));
    }
    const was = this.#faults.size > 0;
    this.#faults = new Map(faults);
    if (!was && faults.size > 0) this.#act(this.fsm.fault(now, [...faults.values()].join("; ")));
    else if (was && faults.size === 0) this.#act(this.fsm.recover(now, "tracked objects are up again"));
  }

  /** A sync-group move. */
  force(to: "MASTER" | "BACKUP" | "FAULT", reason: string): void {
    if (this.#stopped) return;
    this.#act(this.fsm.force(this.#deps.timers.now(), to, reason));
  }

  #act(actions: FsmAction[]): void {
    for (const a of actions) {
      if (a.kind === "send") this.#send(a.priority);
      else this.#transition(a.from, a.to, a.reason);
    }
    this.#arm();
  }

  #arm(): void {
    this.#clearTimer();
    if (this.#stopped) return;
    const at = this.fsm.nextDeadline();
    if (at === undefined) return;
    const t = this.#deps.timers;
    this.#timer = t.setTimeout(
      () => {
        this.#timer = undefined;
        this.#act(this.fsm.tick(t.now()));
      },
      Math.max(0, at - t.now()),
    );
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) this.#deps.timers.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #send(priority: number): void {
    const c = this.cfg;
    const dsts = c.unicastPeers.length > 0 ? c.unicastPeers : [c.family === 4 ? VRRP_GROUP4 : VRRP_GROUP6];
    for (const dst of dsts) {
      try {
        const msg = encodeAdvert({
          version: c.version,
          family: c.family,
          vrid: c.vrid,
          priority,
          intervalMs: c.intervalMs,
          addrs: this.addrs,
          auth: c.auth,
          src: c.src,
          dst,
          v3Ipv4Checksum: c.v3Ipv4Checksum,
        });
        this.#deps.channel.send(msg, dst);
        this.counters.advert_sent++;
        if (priority === 0) this.counters.pri_zero_sent++;
      } catch (err) {
        this.#deps.log.warn("Cannot send VRRP advert", { instance: c.name, to: dst, err: (err as Error).message });
      }
    }
  }

  #transition(from: VrrpState, to: VrrpState, reason: string): void {
    const t: VrrpTransition = { from, to, reason, at: new Date().toISOString() };
    this.#last = t;
    this.#deps.log.info(`VRRP ${this.name}: ${from} -> ${to}`, { instance: this.name, reason });
    if (to === "MASTER") {
      this.counters.become_master++;
      this.#queueOwn();
    } else if (from === "MASTER") {
      this.counters.release_master++;
      this.#clearGarp();
      this.#queueRelease(false);
    }
    if (to === "MASTER" || to === "BACKUP" || to === "FAULT") this.#runNotify(to);
    this.#deps.onTransition(this, t);
  }

  #all(): VipSpec[] {
    return [...this.cfg.vips, ...this.cfg.excludedVips];
  }

  #queueOwn(): void {
    this.#vipQueue = this.#vipQueue.then(async () => {
      if (this.fsm.state !== "MASTER") return;
      for (const v of this.#all()) {
        try {
          await this.#deps.vips.own(v, v.dev ?? this.cfg.iface);
        } catch (err) {
          this.#deps.log.error("Cannot take virtual address", {
            instance: this.name,
            vip: v.addr,
            err: (err as Error).message,
          });
        }
      }
      this.#owned = true;
      if (this.fsm.state === "MASTER") this.#startGarp();
    });
  }

  /** `quiet`: a start-up clean-up, where an address that is not there is no news. */
  #queueRelease(quiet: boolean): void {
    this.#vipQueue = this.#vipQueue.then(async () => {
      for (const v of this.#all()) {
        try {
          await this.#deps.vips.release(v, v.dev ?? this.cfg.iface);
        } catch (err) {
          if (!quiet)
            this.#deps.log.warn("Cannot release virtual address", {
              instance: this.name,
              vip: v.addr,
              err: (err as Error).message,
            });
        }
      }
      this.#owned = false;
    });
  }

  /** Gratuitous ARP / NA per interface, grouped by each address's dev. */
  #announce(times: number): void {
    const byDev = new Map<string, string[]>();
    for (const v of this.#all()) {
      const dev = v.dev ?? this.cfg.iface;
      byDev.set(dev, [...(byDev.get(dev) ?? []), v.addr]);
    }
    for (let i = 0; i < times; i++)
      for (const [dev, addrs] of byDev) {
        try {
          this.#deps.host.announce(dev, addrs);
        } catch (err) {
          this.#deps.log.warn("Cannot send gratuitous ARP/NA", {
            instance: this.name,
            dev,
            err: (err as Error).message,
          });
        }
      }
  }

  #startGarp(): void {
    const g = this.cfg.garp;
    const t = this.#deps.timers;
    this.#announce(g.repeat);
    if (g.delayMs > 0)
      this.#garpTimers.push(
        t.setTimeout(() => {
          if (this.fsm.state === "MASTER") this.#announce(g.repeat);
        }, g.delayMs),
      );
    if (g.refreshMs > 0) {
      const refresh = () => {
        if (this.fsm.state !== "MASTER" || this.#stopped) return;
        this.#announce(g.refreshRepeat);
        this.#garpTimers.push(t.setTimeout(refresh, g.refreshMs));
      };
      this.#garpTimers.push(t.setTimeout(refresh, g.refreshMs));
    }
  }

  #clearGarp(): void {
    for (const h of this.#garpTimers) this.#deps.timers.clearTimeout(h);
    this.#garpTimers = [];
  }

  /** notify_<state> with no arguments, and `notify` with keepalived's four: INSTANCE name STATE priority. */
  #runNotify(state: "MASTER" | "BACKUP" | "FAULT" | "STOP"): void {
    const n = this.cfg.notify;
    const specific = { MASTER: n.master, BACKUP: n.backup, FAULT: n.fault, STOP: n.stop }[state];
    const opts = { timeoutMs: NOTIFY_TIMEOUT_MS, user: this.cfg.scriptUser };
    const run = (cmd: string, args: string[]) => {
      this.#deps.scripts.run(cmd, args, opts).then(
        (r) => {
          if (r.code !== 0)
            this.#deps.log.warn("Notify script failed", {
              instance: this.name,
              script: cmd,
              code: r.code,
              err: r.error,
            });
        },
        (err) => this.#deps.log.warn("Notify script failed", { instance: this.name, script: cmd, err }),
      );
    };
    if (specific) run(specific, []);
    if (n.any) run(n.any, ["INSTANCE", this.name, state, String(this.fsm.effectivePriority)]);
  }

  status(): VrrpInstanceStatus {
    const c = this.cfg;
    return {
      name: c.name,
      interface: c.iface,
      vrid: c.vrid,
      version: c.version,
      family: c.family,
      state: this.fsm.state,
      wantState: c.wantState,
      configuredPriority: c.priority,
      effectivePriority: this.fsm.effectivePriority,
      advertIntervalMs: c.intervalMs,
      masterIntervalMs: this.fsm.masterIntervalMs,
      masterAddress: this.fsm.masterAddr ?? null,
      masterPriority: this.fsm.masterPriority ?? null,
      sourceAddress: c.src,
      unicastPeers: [...c.unicastPeers],
      virtualIpaddresses: [...c.vips, ...c.excludedVips].map((v) => `${v.addr}/${v.prefix}`),
      vipsOwned: this.#owned,
      syncGroup: c.syncGroup ?? null,
      lastTransition: this.#last,
      counters: { ...this.counters },
      faults: [...this.#faults.values()],
    };
  }
}
