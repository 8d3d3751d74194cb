// The VRRP state machine of one instance (RFC 3768 §6.4, RFC 5798 §6.4, with keepalived's
// choices), pure: no sockets, no timers, no clock. Callers hand it the time (`now`, ms on a
// monotonic scale) with every event and execute the actions it returns; `nextDeadline()` says
// when to call `tick` next. Tests step it one advert at a time, as Seesaw's ha_test.go does.
//
// Timers. A backup waits master_down = 3 × master_adver_int + skew without hearing the master,
// then takes over. skew favours higher priorities: v2 (256 − prio)/256 s, v3 (256 − prio) ×
// master_adver_int / 256. A v3 backup adopts the interval the master advertises
// (master_adver_int); becoming master again it goes back to its own.
//
// Events, as keepalived handles them:
// - start: priority 255 (the address owner) with state MASTER, or a master surviving a reload,
//   becomes master at once; everything else starts as backup and waits master_down.
// - backup hears priority 0 (the master is stopping): the down timer becomes just the skew.
// - backup hears priority ≥ its own, or it has nopreempt, or its preempt_delay has not elapsed:
//   the master is alive, the down timer restarts. A lower priority with preemption on is ignored,
//   so the timer runs out and the backup preempts.
// - master hears priority 0: it sends an advert at once (so backups do not take over).
// - master hears a higher priority, or an equal one from a greater primary address: backup.
// - master hears a lower priority (or equal from a smaller address): it re-asserts with an
//   advert at once.
// - fault (tracked interface down, tracked script failed with weight 0): FAULT; a master sends
//   priority 0 first. Recovery goes to backup (or master at once for the owner).
// - stop: a master sends priority 0 and releases; the instance goes to INIT.

export type VrrpState = "INIT" | "BACKUP" | "MASTER" | "FAULT";

export interface FsmConfig {
  version: 2 | 3;
  /** Configured priority 1..255 (255 = address owner). */
  priority: number;
  /** Configured advert interval, ms. */
  intervalMs: number;
  /** keepalived's default; nopreempt turns it off. */
  preempt: boolean;
  preemptDelayMs: number;
  /** The configured `state`: MASTER only matters for the owner (and reload). */
  initialState: "MASTER" | "BACKUP";
  /** Our primary address (the advert source), for tie-breaks. */
  primaryAddr: string;
}

export type FsmAction =
  | { kind: "send"; priority: number }
  | { kind: "transition"; from: VrrpState; to: VrrpState; reason: string };

export interface ReceivedAdvert {
  priority: number;
  /** IP source of the advert (the peer's primary address). */
  src: string;
  /** The interval the advert carries, ms. */
  intervalMs: number;
}

/** Compares two addresses of one family numerically (IPv4 dotted or IPv6 text). */
export function compareAddr(a: string, b: string): number {
  const words = (x: string): number[] => {
    if (!x.includes(":")) return x.split(".").map(Number);
    const [h = "", t = ""] = x.split("::");
    const hs = h === "" ? [] : h.split(":");
    const ts = x.includes("::") ? (t === "" ? [] : t.split(":")) : [];
    const mid = x.includes("::") ? new Array(8 - hs.length - ts.length).fill("0") : [];
    return [...hs, ...mid, ...ts].map((g) => Number.parseInt(g, 16));
  };
  const wa = words(a);
  const wb = words(b);
  for (let i = 0; i < Math.max(wa.length, wb.length); i++) {
    const d = (wa[i] ?? 0) - (wb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

export class VrrpFsm {
  readonly cfg: FsmConfig;
  #state: VrrpState = "INIT";
  #priority: number;
  #masterIntervalMs: number;
  #downAt: number | undefined;
  #advertAt: number | undefined;
  #preemptUntil = 0;
  #masterAddr: string | undefined;
  #masterPriority: number | undefined;
  #faulted = false;

  constructor(cfg: FsmConfig) {
    this.cfg = cfg;
    this.#priority = cfg.priority;
    this.#masterIntervalMs = cfg.intervalMs;
  }

  get state(): VrrpState {
    return this.#state;
  }
  /** The priority sent now (configured ± tracking weights). */
  get effectivePriority(): number {
    return this.#priority;
  }
  /** The interval the down timer uses (v3: the master's). */
  get masterIntervalMs(): number {
    return this.#masterIntervalMs;
  }
  /** The current master's address (ourselves when master), if known. */
  get masterAddr(): string | undefined {
    return this.#state === "MASTER" ? this.cfg.primaryAddr : this.#masterAddr;
  }
  get masterPriority(): number | undefined {
    return this.#state === "MASTER" ? this.#priority : this.#masterPriority;
  }

  skewMs(): number {
    const p = this.#priority;
    return this.cfg.version === 2 ? ((256 - p) * 1000) / 256 : ((256 - p) * this.#masterIntervalMs) / 256;
  }

  masterDownMs(): number {
    return 3 * this.#masterIntervalMs + this.skewMs();
  }

  /** When `tick` must run next (undefined: nothing pending). */
  nextDeadline(): number | undefined {
    if (this.#state === "BACKUP") return this.#downAt;
    if (this.#state === "MASTER") return this.#advertAt;
    return undefined;
  }

  #go(to: VrrpState, reason: string, out: FsmAction[]): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    out.push({ kind: "transition", from, to, reason });
  }

  #becomeMaster(now: number, reason: string, out: FsmAction[]): void {
    this.#masterIntervalMs = this.cfg.intervalMs;
    this.#downAt = undefined;
    out.push({ kind: "send", priority: this.#priority });
    this.#advertAt = now + this.cfg.intervalMs;
    this.#go("MASTER", reason, out);
  }

  #becomeBackup(now: number, reason: string, out: FsmAction[]): void {
    this.#advertAt = undefined;
    this.#downAt = now + this.masterDownMs();
    this.#go("BACKUP", reason, out);
  }

  /** Start (or restart after stop). `reloadMaster`: we were master before a reload that kept this instance. */
  start(now: number, opts: { reloadMaster?: boolean } = {}): FsmAction[] {
    const out: FsmAction[] = [];
    if (this.#state !== "INIT") return out;
    this.#masterAddr = undefined;
    this.#masterPriority = undefined;
    this.#masterIntervalMs = this.cfg.intervalMs;
    if (this.#faulted) {
      this.#go("FAULT", "a tracked object is down at start", out);
      return out;
    }
    this.#preemptUntil = now + this.cfg.preemptDelayMs;
    if (opts.reloadMaster) this.#becomeMaster(now, "was master before the reload", out);
    else if (this.cfg.initialState === "MASTER" && this.#priority === 255)
      this.#becomeMaster(now, "address owner (priority 255)", out);
    else this.#becomeBackup(now, "start", out);
    return out;
  }

  /** Timers: a backup whose master went silent takes over; a master sends its periodic advert. */
  tick(now: number): FsmAction[] {
    const out: FsmAction[] = [];
    if (this.#state === "BACKUP" && this.#downAt !== undefined && now >= this.#downAt) {
      const reason =
        this.#masterAddr === undefined
          ? "no master heard within master_down"
          : this.#masterPriority === 0
            ? `master ${this.#masterAddr} stepped down (priority 0)`
            : this.cfg.preempt && (this.#masterPriority ?? 0) < this.#priority
              ? `preempting master ${this.#masterAddr} (priority ${this.#masterPriority} < ${this.#priority})`
              : `master ${this.#masterAddr} silent for master_down`;
      this.#becomeMaster(now, reason, out);
    } else if (this.#state === "MASTER" && this.#advertAt !== undefined && now >= this.#advertAt) {
      out.push({ kind: "send", priority: this.#priority });
      // On schedule; after a stall (the process was descheduled) no burst, one interval from now.
      this.#advertAt += this.cfg.intervalMs;
      if (this.#advertAt <= now) this.#advertAt = now + this.cfg.intervalMs;
    }
    return out;
  }

  /** A valid advert for this instance (already checked by checkAdvert). */
  receive(now: number, ad: ReceivedAdvert): FsmAction[] {
    const out: FsmAction[] = [];
    const own = this.#priority;
    if (this.#state === "BACKUP") {
      if (ad.priority === 0) {
        this.#masterAddr = ad.src;
        this.#masterPriority = 0;
        this.#downAt = now + this.skewMs();
        return out;
      }
      if (!this.cfg.preempt || ad.priority >= own || now < this.#preemptUntil) {
        if (this.cfg.version === 3 && ad.intervalMs > 0) this.#masterIntervalMs = ad.intervalMs;
        this.#masterAddr = ad.src;
        this.#masterPriority = ad.priority;
        this.#downAt = now + this.masterDownMs();
      } else {
        // A lower priority and we may preempt: only noted; the down timer runs out.
        this.#masterAddr = ad.src;
        this.#masterPriority = ad.priority;
      }
      return out;
    }
    if (this.#state === "MASTER") {
      if (ad.priority === 0) {
        out.push({ kind: "send", priority: own });
        this.#advertAt = now + this.cfg.intervalMs;
        return out;
      }
      const cmp = compareAddr(ad.src, this.cfg.primaryAddr);
      if (ad.priority > own || (ad.priority === own && cmp > 0)) {
        this.#masterAddr = ad.src;
        this.#masterPriority = ad.priority;
        if (this.cfg.version === 3 && ad.intervalMs > 0) this.#masterIntervalMs = ad.intervalMs;
        this.#advertAt = undefined;
        this.#downAt = now + this.masterDownMs();
        this.#go(
          "BACKUP",
          ad.priority > own
            ? `higher priority ${ad.priority} advert from ${ad.src}`
            : `equal priority ${ad.priority} advert from greater address ${ad.src}`,
          out,
        );
        return out;
      }
      if (cmp !== 0) out.push({ kind: "send", priority: own });
      return out;
    }
    return out;
  }

  /** Effective priority changed (tracking weights). */
  setPriority(_now: number, priority: number): FsmAction[] {
    this.#priority = Math.max(1, Math.min(255, priority));
    return [];
  }

  /** A tracked object failed (weight 0) or the interface went down. */
  fault(_now: number, reason: string): FsmAction[] {
    const out: FsmAction[] = [];
    this.#faulted = true;
    if (this.#state === "INIT" || this.#state === "FAULT") return out;
    if (this.#state === "MASTER") out.push({ kind: "send", priority: 0 });
    this.#advertAt = undefined;
    this.#downAt = undefined;
    this.#go("FAULT", reason, out);
    return out;
  }

  /** Every tracked object is up again. */
  recover(now: number, reason: string): FsmAction[] {
    const out: FsmAction[] = [];
    this.#faulted = false;
    if (this.#state !== "FAULT") return out;
    this.#masterAddr = undefined;
    this.#masterPriority = undefined;
    this.#masterIntervalMs = this.cfg.intervalMs;
    this.#preemptUntil = now + this.cfg.preemptDelayMs;
    if (this.cfg.initialState === "MASTER" && this.#priority === 255) this.#becomeMaster(now, reason, out);
    else this.#becomeBackup(now, reason, out);
    return out;
  }

  get faulted(): boolean {
    return this.#faulted;
  }

  /** A sync group moves this member with the others (to MASTER or BACKUP or FAULT). */
  force(now: number, to: "MASTER" | "BACKUP" | "FAULT", reason: string): FsmAction[] {
    const out: FsmAction[] = [];
    if (this.#state === to || this.#state === "INIT") return out;
    if (to === "MASTER") {
      if (this.#state === "FAULT") return out;
      this.#becomeMaster(now, reason, out);
    } else if (to === "BACKUP") {
      // A member held in FAULT by its group comes back with the group; its own fault keeps it there.
      if (this.#state === "FAULT" && this.#faulted) return out;
      if (this.#state === "MASTER") out.push({ kind: "send", priority: 0 });
      this.#becomeBackup(now, reason, out);
    } else {
      if (this.#state === "MASTER") out.push({ kind: "send", priority: 0 });
      this.#advertAt = undefined;
      this.#downAt = undefined;
      this.#go("FAULT", reason, out);
    }
    return out;
  }

  /** Stop: a master sends priority 0 so backups take over after their skew; then INIT. */
  stop(_now: number, reason = "stopped"): FsmAction[] {
    const out: FsmAction[] = [];
    if (this.#state === "MASTER") out.push({ kind: "send", priority: 0 });
    this.#advertAt = undefined;
    this.#downAt = undefined;
    this.#go("INIT", reason, out);
    return out;
  }
}
