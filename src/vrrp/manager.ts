// The VRRP engine of one tvsd: turns keepalived.conf's vrrp_instance / vrrp_sync_group /
// vrrp_script blocks into running instances, shares one raw socket per interface, family and
// source among the instances there and dispatches received adverts by VRID, tracks interfaces
// and scripts (weights move the effective priority; weight 0 or the instance's own interface down
// means FAULT), moves sync-group members together, and reloads without disturbing an unchanged
// instance (a MASTER stays MASTER). Emits "state" (VrrpStateChange) on every transition: the
// connection-sync daemon and the metrics follow it.
//
// Resolution errors (an interface that does not exist, no source address, VRID clashes) are
// found by prepare() before anything changes, each with the position of its block, so a reload
// is all or nothing.

import { EventEmitter } from "node:events";
import { performance } from "node:perf_hooks";
import { decodeAdvert } from "./codec.ts";
import { type GarpSettings, type InstanceConfig, VrrpInstance } from "./instance.ts";
import type { RxDatagram, ScriptRunner, VipDriver, VrrpChannel, VrrpHost, VrrpLog, VrrpTimers } from "./io.ts";
import { ProcessScriptRunner, passwdUser } from "./scripts.ts";
import type {
  SourceRef as SourcePos,
  VrrpSpec as VrrpConfig,
  InstanceSpec as VrrpInstanceSpec,
  ScriptSpec as VrrpScriptSpec,
} from "./spec.ts";
import type { VrrpInstanceStatus, VrrpStateChange } from "./status.ts";

export const TRACK_POLL_MS = 200;

export class VrrpConfigError extends Error {
  readonly problems: { origin: SourcePos; message: string }[];
  constructor(problems: { origin: SourcePos; message: string }[]) {
    super(problems.map((p) => `${p.origin.file}:${p.origin.line}:${p.origin.column}: ${p.message}`).join("; "));
    this.problems = problems;
    this.name = "VrrpConfigError";
  }
}

export interface VrrpManagerDeps {
  host: VrrpHost;
  vips: VipDriver;
  log: VrrpLog;
  scripts?: ScriptRunner;
  timers?: VrrpTimers;
}

/** What prepare() resolved, ready to apply. */
export interface PreparedVrrp {
  instances: InstanceConfig[];
  /** Instance name → tracked interfaces and scripts. */
  tracking: Map<
    string,
    { interfaces: { name: string; weight?: number | undefined }[]; scripts: { name: string; weight: number }[] }
  >;
  scripts: VrrpScriptSpec[];
  groups: { name: string; members: string[]; notify: VrrpConfig["syncGroups"][number]["notify"] }[];
  secure: boolean;
  scriptUser?: string | undefined;
}

const realTimers: VrrpTimers = {
  now: () => performance.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref?.();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

function num(words: string[] | undefined): number | undefined {
  const w = words?.[0];
  if (w === undefined || !/^\d+(\.\d+)?$/.test(w)) return undefined;
  return Number(w);
}

function sameConfig(a: InstanceConfig, b: InstanceConfig): boolean {
  const strip = (c: InstanceConfig) =>
    JSON.stringify({
      ...c,
      vips: c.vips.map((v) => ({ ...v, origin: 0 })),
      excludedVips: c.excludedVips.map((v) => ({ ...v, origin: 0 })),
    });
  return strip(a) === strip(b);
}

/** Runs one vrrp_script on its interval with rise/fall; `ok` is its current verdict. */
class ScriptTracker {
  readonly spec: VrrpScriptSpec;
  ok = true;
  #good = 0;
  #bad = 0;
  #timer: unknown;
  #stopped = false;
  readonly #run: () => void;
  constructor(spec: VrrpScriptSpec, runner: ScriptRunner, timers: VrrpTimers, user: string | undefined, log: VrrpLog) {
    this.spec = spec;
    const loop = () => {
      if (this.#stopped) return;
      runner
        .run(spec.script, [], { timeoutMs: spec.timeoutMs ?? spec.intervalMs, user: spec.user ?? user })
        .then((r) => {
          const pass = r.code === 0;
          if (r.error) log.debug("vrrp_script run failed", { script: spec.name, err: r.error });
          if (pass) {
            this.#good++;
            this.#bad = 0;
            if (!this.ok && this.#good >= spec.rise) {
              this.ok = true;
              log.info("vrrp_script succeeded", { script: spec.name });
            }
          } else {
            this.#bad++;
            this.#good = 0;
            if (this.ok && this.#bad >= spec.fall) {
              this.ok = false;
              log.warn("vrrp_script failed", { script: spec.name, code: r.code, err: r.error });
            }
          }
        })
        .finally(() => {
          if (!this.#stopped) this.#timer = timers.setTimeout(loop, spec.intervalMs);
        });
    };
    this.#run = loop;
    this.#timer = undefined;
    void timers;
  }
  start(): void {
    this.#run();
  }
  stop(timers: VrrpTimers): void {
    this.#stopped = true;
    if (this.#timer !== undefined) timers.clearTimeout(this.#timer);
  }
}

interface ChannelEntry {
  channel: VrrpChannel;
  family: 4 | 6;
  instances: Set<VrrpInstance>;
}

export class VrrpManager extends EventEmitter {
  readonly #deps: VrrpManagerDeps;
  readonly #timers: VrrpTimers;
  #instances = new Map<string, VrrpInstance>();
  #channels = new Map<string, ChannelEntry>();
  #prepared: PreparedVrrp | undefined;
  #scripts = new Map<string, ScriptTracker>();
  #poll: unknown;
  #syncing = false;
  #runner: ScriptRunner | undefined;

  constructor(deps: VrrpManagerDeps) {
    super();
    this.#deps = deps;
    this.#timers = deps.timers ?? realTimers;
  }

  get running(): boolean {
    return this.#instances.size > 0;
  }

  /** Resolve a configuration against this host; throws VrrpConfigError listing every problem. */
  prepare(cfg: VrrpConfig, globals: Record<string, string[]>): PreparedVrrp {
    const problems: { origin: SourcePos; message: string }[] = [];
    const host = this.#deps.host;
    const gVersion = num(globals.vrrp_version);
    const instances: InstanceConfig[] = [];
    const tracking: PreparedVrrp["tracking"] = new Map();
    const groupOf = new Map<string, string>();
    for (const g of cfg.syncGroups) for (const m of g.instances) groupOf.set(m, g.name);
    const garpDefault = (k: string, dflt: number) => num(globals[k]) ?? dflt;
    for (const s of cfg.instances) {
      const bad = (message: string) => problems.push({ origin: s.origin, message });
      const iface = s.interface;
      if (iface === undefined) {
        bad(`vrrp_instance ${s.name} has no interface`);
        continue;
      }
      if (!host.interfaceExists(iface)) {
        bad(`vrrp_instance ${s.name}: interface "${iface}" does not exist`);
        continue;
      }
      const family = familyOf(s);
      const version: 2 | 3 = family === 6 ? 3 : (s.version ?? (gVersion === 3 ? 3 : 2));
      const src = s.unicastSrcIp ?? s.mcastSrcIp ?? host.primaryAddress(iface, family);
      if (src === undefined) {
        bad(`vrrp_instance ${s.name}: interface "${iface}" has no IPv${family} address to send adverts from`);
        continue;
      }
      const extra = s.extra;
      const garp: GarpSettings = {
        delayMs: s.garpMasterDelayMs ?? garpDefault("vrrp_garp_master_delay", 5) * 1000,
        repeat: num(extra.garp_master_repeat) ?? garpDefault("vrrp_garp_master_repeat", 5),
        refreshMs: (num(extra.garp_master_refresh) ?? garpDefault("vrrp_garp_master_refresh", 0)) * 1000,
        refreshRepeat: num(extra.garp_master_refresh_repeat) ?? garpDefault("vrrp_garp_master_refresh_repeat", 1),
      };
      const asV2 = "v3_checksum_as_v2" in extra || "v3_checksum_as_v2" in globals;
      instances.push({
        name: s.name,
        iface,
        family,
        version,
        vrid: s.virtualRouterId,
        priority: s.priority,
        intervalMs: version === 2 ? Math.max(1000, Math.round(s.advertIntMs / 1000) * 1000) : s.advertIntMs,
        preempt: s.preempt,
        preemptDelayMs: s.preemptDelayMs,
        wantState: s.state,
        auth:
          version === 2 && s.authentication?.type === "PASS"
            ? { type: "PASS", pass: s.authentication.pass }
            : undefined,
        vips: s.virtualIpaddresses,
        excludedVips: s.virtualIpaddressesExcluded,
        src,
        unicastPeers: s.unicastPeers,
        garp,
        notify: s.notify,
        scriptUser: globals.script_user?.[0],
        v3Ipv4Checksum: asV2 ? "message" : "pseudo-header",
        syncGroup: groupOf.get(s.name),
      });
      const scripts = new Map(cfg.scripts.map((x) => [x.name, x]));
      tracking.set(s.name, {
        interfaces: s.trackInterfaces.map((t) => ({ name: t.name, weight: t.weight })),
        scripts: s.trackScripts
          .filter((t) => scripts.has(t.name))
          .map((t) => ({ name: t.name, weight: t.weight ?? (scripts.get(t.name) as VrrpScriptSpec).weight })),
      });
      for (const t of s.trackInterfaces)
        if (!host.interfaceExists(t.name)) bad(`vrrp_instance ${s.name}: tracked interface "${t.name}" does not exist`);
    }
    // One VRID per interface and family; one owner per VIP.
    const vrids = new Map<string, string>();
    const owners = new Map<string, string>();
    for (const [i, c] of instances.entries()) {
      const origin = cfg.instances.find((s) => s.name === c.name)?.origin as SourcePos;
      const key = `${c.iface}/${c.family}/${c.vrid}`;
      const other = vrids.get(key);
      if (other)
        problems.push({
          origin,
          message: `vrrp_instance ${c.name} uses virtual_router_id ${c.vrid} on ${c.iface}, already used by ${other}`,
        });
      else vrids.set(key, c.name);
      for (const v of [...c.vips, ...c.excludedVips]) {
        const o = owners.get(v.addr);
        if (o && o !== c.name)
          problems.push({
            origin: v.origin,
            message: `Virtual address ${v.addr} is in vrrp_instance ${o} and ${c.name}`,
          });
        else owners.set(v.addr, c.name);
      }
      void i;
    }
    if (problems.length > 0) throw new VrrpConfigError(problems);
    const used = new Set([...tracking.values()].flatMap((t) => t.scripts.map((s) => s.name)));
    return {
      instances,
      tracking,
      scripts: cfg.scripts.filter((s) => used.has(s.name)),
      groups: cfg.syncGroups.map((g) => ({ name: g.name, members: g.instances, notify: g.notify })),
      secure: "enable_script_security" in globals,
      scriptUser: globals.script_user?.[0],
    };
  }

  /** Every VIP the configuration may bring up (the socket plane defers binding these). */
  static managedVips(cfg: VrrpConfig): string[] {
    return cfg.instances.flatMap((i) => [...i.virtualIpaddresses, ...i.virtualIpaddressesExcluded].map((v) => v.addr));
  }

  #channelFor(c: InstanceConfig): ChannelEntry {
    const multicast = c.unicastPeers.length === 0;
    const key = `${c.iface}|${c.family}|${c.src}|${multicast ? "m" : "u"}`;
    let e = this.#channels.get(key);
    if (!e) {
      const entry: ChannelEntry = {
        family: c.family,
        instances: new Set(),
        channel: undefined as unknown as VrrpChannel,
      };
      entry.channel = this.#deps.host.open({ iface: c.iface, family: c.family, multicast, src: c.src }, (rx) =>
        this.#dispatch(entry, rx),
      );
      this.#channels.set(key, entry);
      e = entry;
    }
    return e;
  }

  #dispatch(e: ChannelEntry, rx: RxDatagram): void {
    try {
      const vrid = rx.payload.length > 1 ? (rx.payload[1] as number) : -1;
      const targets = [...e.instances].filter((i) => i.cfg.vrid === vrid);
      if (targets.length === 0) return;
      const r = decodeAdvert(rx.payload, {
        family: e.family,
        src: rx.src,
        dst: rx.dst || (e.family === 4 ? "224.0.0.18" : "ff02::12"),
        checksumVerified: rx.checksumVerified,
      });
      for (const inst of targets) {
        if (!r.ok) {
          if (rx.src !== inst.cfg.src) inst.countError(r.error);
          continue;
        }
        inst.receive(r.advert, rx.src, rx.ttl);
      }
    } catch (err) {
      this.#deps.log.error("VRRP advert handling failed", { from: rx.src, err: (err as Error).message });
    }
  }

  #runnerFor(p: PreparedVrrp): ScriptRunner {
    if (this.#deps.scripts) return this.#deps.scripts;
    this.#runner = new ProcessScriptRunner({ secure: p.secure, lookupUser: (n) => passwdUser(n) });
    return this.#runner;
  }

  /** Start, or reload to, a prepared configuration. Unchanged instances keep running untouched. */
  async apply(p: PreparedVrrp): Promise<void> {
    const runner = this.#runnerFor(p);
    const next = new Map(p.instances.map((c) => [c.name, c]));
    const carried = new Map<string, { reloadMaster: boolean }>();
    // Leave: instances gone or changed.
    for (const [name, inst] of [...this.#instances]) {
      const n = next.get(name);
      if (n && sameConfig(n, inst.cfg)) continue;
      this.#instances.delete(name);
      this.#detach(inst);
      const sameRouter = n && n.iface === inst.cfg.iface && n.family === inst.cfg.family && n.vrid === inst.cfg.vrid;
      if (n && sameRouter && inst.state === "MASTER") {
        await inst.retire(new Set([...n.vips, ...n.excludedVips].map((v) => v.addr)));
        carried.set(name, { reloadMaster: true });
      } else await inst.stop(n ? "reconfigured" : "removed from the configuration");
    }
    // Scripts: restart the set (cheap; results settle within rise/fall).
    for (const t of this.#scripts.values()) t.stop(this.#timers);
    this.#scripts = new Map();
    for (const s of p.scripts) {
      const t = new ScriptTracker(s, runner, this.#timers, p.scriptUser, this.#deps.log);
      this.#scripts.set(s.name, t);
      t.start();
    }
    this.#prepared = p;
    // Enter: new or changed instances.
    for (const c of p.instances) {
      if (this.#instances.has(c.name)) continue;
      const entry = this.#channelFor(c);
      const inst = new VrrpInstance(c, {
        host: this.#deps.host,
        vips: this.#deps.vips,
        scripts: runner,
        log: this.#deps.log,
        timers: this.#timers,
        channel: entry.channel,
        onTransition: (i, t) => this.#onTransition(i, t),
      });
      entry.instances.add(inst);
      this.#instances.set(c.name, inst);
      const { faults } = this.#trackState(inst);
      inst.start({ reloadMaster: carried.get(c.name)?.reloadMaster ?? false, faults });
    }
    this.#closeIdleChannels();
    this.#startPoll();
  }

  #detach(inst: VrrpInstance): void {
    for (const e of this.#channels.values()) e.instances.delete(inst);
  }

  #closeIdleChannels(): void {
    for (const [k, e] of this.#channels)
      if (e.instances.size === 0) {
        e.channel.close();
        this.#channels.delete(k);
      }
  }

  #trackState(inst: VrrpInstance): { priority: number; faults: Map<string, string> } {
    const host = this.#deps.host;
    const faults = new Map<string, string>();
    let delta = 0;
    if (!host.linkUp(inst.cfg.iface)) faults.set(`if:${inst.cfg.iface}`, `interface ${inst.cfg.iface} is down`);
    const t = this.#prepared?.tracking.get(inst.name);
    for (const ti of t?.interfaces ?? []) {
      const up = host.linkUp(ti.name);
      if (!ti.weight) {
        if (!up) faults.set(`if:${ti.name}`, `tracked interface ${ti.name} is down`);
      } else if (ti.weight > 0 && up) delta += ti.weight;
      else if (ti.weight < 0 && !up) delta += ti.weight;
    }
    for (const ts of t?.scripts ?? []) {
      const ok = this.#scripts.get(ts.name)?.ok ?? true;
      if (ts.weight === 0) {
        if (!ok) faults.set(`script:${ts.name}`, `vrrp_script ${ts.name} failed`);
      } else if (ts.weight > 0 && ok) delta += ts.weight;
      else if (ts.weight < 0 && !ok) delta += ts.weight;
    }
    const base = inst.cfg.priority;
    // The address owner's priority is not moved by tracking (keepalived keeps 255).
    const priority = base === 255 ? 255 : Math.max(1, Math.min(254, base + delta));
    return { priority, faults };
  }

  #startPoll(): void {
    if (this.#poll !== undefined) return;
    const tick = () => {
      this.#poll = undefined;
      for (const inst of this.#instances.values()) {
        try {
          const { priority, faults } = this.#trackState(inst);
          inst.track(priority, faults);
        } catch (err) {
          this.#deps.log.error("VRRP tracking failed", { instance: inst.name, err: (err as Error).message });
        }
      }
      if (this.#instances.size > 0) this.#poll = this.#timers.setTimeout(tick, TRACK_POLL_MS);
    };
    this.#poll = this.#timers.setTimeout(tick, TRACK_POLL_MS);
  }

  #onTransition(inst: VrrpInstance, t: { from: string; to: string; reason: string; at: string }): void {
    const change: VrrpStateChange = {
      instance: inst.name,
      syncGroup: inst.cfg.syncGroup ?? null,
      from: t.from as VrrpStateChange["from"],
      to: t.to as VrrpStateChange["to"],
      reason: t.reason,
      at: t.at,
      vips: inst.addrs,
    };
    try {
      this.emit("state", change);
    } catch (err) {
      this.#deps.log.error("A VRRP state listener failed", { err: (err as Error).message });
    }
    const g = this.#prepared?.groups.find((x) => x.name === inst.cfg.syncGroup);
    if (!g || this.#syncing) return;
    this.#syncing = true;
    try {
      const others = g.members.map((m) => this.#instances.get(m)).filter((m): m is VrrpInstance => !!m && m !== inst);
      const why = `sync group ${g.name}: ${inst.name} went ${t.to}`;
      if (t.to === "MASTER") for (const o of others) o.force("MASTER", why);
      else if (t.to === "FAULT") for (const o of others) o.force("FAULT", why);
      else if (t.to === "BACKUP" && (t.from === "MASTER" || t.from === "FAULT"))
        for (const o of others) if (!o.fsm.faulted) o.force("BACKUP", why);
      this.#groupNotify(g, t.to);
    } finally {
      this.#syncing = false;
    }
  }

  #groupNotify(g: PreparedVrrp["groups"][number], state: string): void {
    const n = g.notify;
    const specific = { MASTER: n.master, BACKUP: n.backup, FAULT: n.fault, STOP: n.stop }[state];
    const runner = this.#deps.scripts ?? this.#runner;
    if (!runner) return;
    const opts = { timeoutMs: 30_000, user: this.#prepared?.scriptUser };
    if (specific) void runner.run(specific, [], opts);
    if (n.any) void runner.run(n.any, ["GROUP", g.name, state, "0"], opts);
  }

  /** Step every instance down (priority 0 from masters, VIPs released), stop tracking. */
  async stop(): Promise<void> {
    if (this.#poll !== undefined) this.#timers.clearTimeout(this.#poll);
    this.#poll = undefined;
    for (const t of this.#scripts.values()) t.stop(this.#timers);
    this.#scripts.clear();
    const all = [...this.#instances.values()];
    this.#instances.clear();
    await Promise.all(all.map((i) => i.stop("tvsd is stopping")));
    for (const i of all) this.#detach(i);
    this.#closeIdleChannels();
  }

  status(): VrrpInstanceStatus[] {
    return [...this.#instances.values()].map((i) => i.status());
  }

  instance(name: string): VrrpInstance | undefined {
    return this.#instances.get(name);
  }
}

function familyOf(s: VrrpInstanceSpec): 4 | 6 {
  const first = s.virtualIpaddresses[0]?.addr ?? s.unicastSrcIp ?? s.unicastPeers[0];
  return first?.includes(":") ? 6 : 4;
}

export interface VrrpManagerEvents {
  state: [VrrpStateChange];
}
