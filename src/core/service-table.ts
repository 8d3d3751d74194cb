// The table of virtual services and their destinations: the single owner of that state. Every
// operation validates fully before it mutates, so a failed call leaves the table exactly as it
// was, and throws a CoreError carrying the errno the kernel returns for the same request.
// Removed destinations that still carry connections move to a trash list (as the kernel's
// dest_trash) and are revived, counters and all, if the same destination is added again.

import { canonicalIp, type Family, ipFamily } from "./addr.ts";
import { Dest, type DestSpec, tunOptionsProblem } from "./dest.ts";
import { CoreError, type CoreOp } from "./errors.ts";
import type { SchedulerRegistry } from "./sched/registry.ts";
import type { Protocol, SchedEnv } from "./sched/types.ts";
import { type ServiceKey, type ServiceOptions, serviceKeyId, VirtualService } from "./service.ts";
import { Counters } from "./stats/counters.ts";

/** Persistence engines this build knows (ipvsadm --pe). */
export const PERSISTENCE_ENGINES: readonly string[] = ["sip"];

const U16 = 0xffff;
const I32_MAX = 0x7fffffff;

export class ServiceTable {
  readonly #registry: SchedulerRegistry;
  readonly #env: SchedEnv;
  /** In creation order; listings sort separately. */
  readonly #services = new Map<string, VirtualService>();
  readonly #byVip = new Map<string, VirtualService>();
  readonly #byMark = new Map<string, VirtualService>();
  readonly #trash = new Set<Dest>();
  /** Global counters (ipvsadm -L --stats totals, /proc/net/ip_vs_stats). */
  readonly stats = new Counters();

  constructor(registry: SchedulerRegistry, env: SchedEnv) {
    this.#registry = registry;
    this.#env = env;
  }

  get env(): SchedEnv {
    return this.#env;
  }

  get size(): number {
    return this.#services.size;
  }

  services(): VirtualService[] {
    return [...this.#services.values()];
  }

  trash(): Dest[] {
    return [...this.#trash];
  }

  get(key: ServiceKey): VirtualService | undefined {
    return this.#services.get(serviceKeyId(normalizeKey(key, "get-service")));
  }

  /**
   * The service a packet belongs to, in the kernel's order (ip_vs_service_find): firewall mark
   * first, then protocol + address + port, then the port-0 (persistent) catch-all.
   */
  lookup(protocol: Protocol, addr: string, port: number, fwmark = 0): VirtualService | undefined {
    if (fwmark !== 0) {
      const m = this.#byMark.get(`${fwmark}/${ipFamily(addr)}`);
      if (m) return m;
    }
    return this.#byVip.get(`${protocol}/${addr}/${port}`) ?? this.#byVip.get(`${protocol}/${addr}/0`);
  }

  addService(key: ServiceKey, options: ServiceOptions): VirtualService {
    const k = normalizeKey(key, "add-service");
    const opts = this.#validateOptions(k, options, "add-service");
    const id = serviceKeyId(k);
    if (this.#services.has(id)) throw new CoreError("EEXIST", "add-service", `Service ${id} already exists`);
    const sched = this.#scheduler(opts.scheduler, "add-service");
    const svc = new VirtualService(k, opts, (s) => sched.create(s, this.#env));
    this.#services.set(id, svc);
    if (k.kind === "vip") this.#byVip.set(`${k.protocol}/${k.addr}/${k.port}`, svc);
    else this.#byMark.set(`${k.fwmark}/${k.family}`, svc);
    return svc;
  }

  editService(key: ServiceKey, options: ServiceOptions): VirtualService {
    const svc = this.#mustService(key, "edit-service");
    const opts = this.#validateOptions(svc.key, options, "edit-service");
    if (opts.scheduler !== svc.options.scheduler) {
      const sched = this.#scheduler(opts.scheduler, "edit-service");
      svc.sched.dispose?.();
      svc.options = opts;
      svc.schedFlags = new Set(opts.schedFlags);
      svc.sched = sched.create(svc, this.#env);
    } else {
      svc.options = opts;
      svc.schedFlags = new Set(opts.schedFlags);
    }
    return svc;
  }

  deleteService(key: ServiceKey): void {
    const svc = this.#mustService(key, "del-service");
    this.#unlinkService(svc);
  }

  /** Remove every service (ipvsadm -C). */
  flush(): void {
    for (const svc of [...this.#services.values()]) this.#unlinkService(svc);
  }

  addDest(key: ServiceKey, spec: DestSpec): Dest {
    const svc = this.#mustService(key, "add-dest");
    const s = this.#validateDest(svc, spec, "add-dest");
    if (svc.findDest(s.addr, s.port))
      throw new CoreError("EEXIST", "add-dest", `Destination ${s.addr}:${s.port} already exists`);
    let dest: Dest | undefined;
    for (const t of this.#trash) {
      if (t.svc?.id === svc.id && t.addr === s.addr && t.port === s.port) {
        dest = t;
        break;
      }
    }
    if (dest) {
      this.#trash.delete(dest);
      // A destination of a deleted and re-created service starts its counters afresh.
      if (dest.svc !== svc) dest.stats.zero();
      dest.update(s, true);
      dest.available = true;
    } else dest = new Dest(s);
    dest.svc = svc;
    svc.dests.unshift(dest);
    svc.sched.addDest?.(dest);
    return dest;
  }

  editDest(key: ServiceKey, spec: DestSpec): Dest {
    const svc = this.#mustService(key, "edit-dest");
    const s = this.#validateDest(svc, spec, "edit-dest");
    const dest = svc.findDest(s.addr, s.port);
    if (!dest) throw new CoreError("ENOENT", "edit-dest", `No destination ${s.addr}:${s.port}`);
    dest.update(s);
    svc.sched.updDest?.(dest);
    return dest;
  }

  deleteDest(key: ServiceKey, addr: string, port: number): void {
    const svc = this.#mustService(key, "del-dest");
    const a = canonicalIp(addr);
    const dest = a === undefined ? undefined : svc.findDest(a, port);
    if (!dest) throw new CoreError("ENOENT", "del-dest", `No destination ${addr}:${port}`);
    this.#unlinkDest(svc, dest);
  }

  /** Zero the counters of one service and its destinations, or of everything (ipvsadm -Z). */
  zero(key?: ServiceKey): void {
    if (key) {
      const svc = this.#mustService(key, "zero");
      zeroService(svc);
      return;
    }
    for (const svc of this.#services.values()) zeroService(svc);
    this.stats.zero();
  }

  /**
   * A connection released its destination: a trashed destination with no references left is
   * freed (the kernel's trash expiry, done eagerly).
   */
  released(dest: Dest): void {
    if (!dest.available && dest.refs === 0) this.#trash.delete(dest);
  }

  #unlinkService(svc: VirtualService): void {
    for (const d of [...svc.dests]) this.#unlinkDest(svc, d);
    svc.sched.dispose?.();
    this.#services.delete(svc.id);
    const k = svc.key;
    if (k.kind === "vip") this.#byVip.delete(`${k.protocol}/${k.addr}/${k.port}`);
    else this.#byMark.delete(`${k.fwmark}/${k.family}`);
  }

  #unlinkDest(svc: VirtualService, dest: Dest): void {
    const i = svc.dests.indexOf(dest);
    if (i !== -1) svc.dests.splice(i, 1);
    dest.available = false;
    svc.sched.delDest?.(dest);
    if (dest.refs > 0) this.#trash.add(dest);
  }

  #mustService(key: ServiceKey, op: CoreOp): VirtualService {
    const k = normalizeKey(key, op);
    const svc = this.#services.get(serviceKeyId(k));
    if (!svc) throw new CoreError("ESRCH", op, `No service ${serviceKeyId(k)}`);
    return svc;
  }

  #scheduler(name: string, op: CoreOp) {
    const s = this.#registry.get(name);
    if (!s) throw new CoreError("ENOENT", op, `Scheduler "${name}" not found`);
    return s;
  }

  #validateOptions(key: ServiceKey, o: ServiceOptions, op: CoreOp): ServiceOptions {
    const family: Family = key.kind === "fwmark" ? key.family : ipFamily(key.addr);
    const sched = this.#scheduler(o.scheduler, op);
    const known = new Set(sched.flags ?? []);
    for (const f of o.schedFlags) {
      if (!known.has(f)) throw new CoreError("EINVAL", op, `Scheduler flag "${f}" does not apply to "${o.scheduler}"`);
    }
    if (o.pe !== "" && !PERSISTENCE_ENGINES.includes(o.pe))
      throw new CoreError("ENOENT", op, `Persistence engine "${o.pe}" not found`);
    if (!isInt(o.timeout, 1, I32_MAX) && o.persistent)
      throw new CoreError("ERANGE", op, `Persistence timeout "${o.timeout}" out of range`);
    const maxMask = family === 4 ? 32 : 128;
    if (!isInt(o.netmask, family === 4 ? 0 : 1, maxMask))
      throw new CoreError("EINVAL", op, `Netmask /${o.netmask} invalid for IPv${family}`);
    if (key.kind === "vip" && key.port === 0 && !o.persistent)
      throw new CoreError("EINVAL", op, "Zero port specified for non-persistent service");
    return { ...o, schedFlags: [...o.schedFlags] };
  }

  #validateDest(svc: VirtualService, spec: DestSpec, op: CoreOp): DestSpec {
    const addr = canonicalIp(spec.addr);
    if (addr === undefined) throw new CoreError("EINVAL", op, `Invalid destination address "${spec.addr}"`);
    if (!isInt(spec.port, 0, U16)) throw new CoreError("EINVAL", op, `Invalid destination port "${spec.port}"`);
    if (!Number.isInteger(spec.weight) || spec.weight < 0 || spec.weight > I32_MAX)
      throw new CoreError("ERANGE", op, `Weight "${spec.weight}" out of range`);
    if (!isInt(spec.uThreshold, 0, I32_MAX) || !isInt(spec.lThreshold, 0, I32_MAX))
      throw new CoreError("ERANGE", op, `Threshold out of range`);
    if (spec.lThreshold > spec.uThreshold)
      throw new CoreError(
        "ERANGE",
        op,
        `Lower threshold ${spec.lThreshold} exceeds upper threshold ${spec.uThreshold}`,
      );
    if (ipFamily(addr) !== svc.family && spec.fwd !== "tunnel")
      throw new CoreError("EINVAL", op, `Destination ${addr} is not IPv${svc.family}`);
    if (!isInt(spec.tun.port, 0, U16)) throw new CoreError("EINVAL", op, `Invalid tunnel port "${spec.tun.port}"`);
    if (spec.tun.type === "gue" && spec.tun.port === 0)
      throw new CoreError("EINVAL", op, `GUE tunnel to ${addr} needs a tunnel port`);
    const tunProblem = spec.fwd === "tunnel" ? tunOptionsProblem(spec.tun) : undefined;
    if (tunProblem !== undefined) throw new CoreError("EINVAL", op, `${tunProblem} (real server ${addr})`);
    return { ...spec, addr, tun: { ...spec.tun } };
  }
}

function zeroService(svc: VirtualService): void {
  svc.stats.zero();
  for (const d of svc.dests) d.stats.zero();
}

function isInt(v: number, lo: number, hi: number): boolean {
  return Number.isInteger(v) && v >= lo && v <= hi;
}

/** Validate and canonicalise a service key (address text, port and mark ranges). */
export function normalizeKey(key: ServiceKey, op: CoreOp): ServiceKey {
  if (key.kind === "fwmark") {
    if (!isInt(key.fwmark, 1, 0xffffffff)) throw new CoreError("EINVAL", op, `Invalid firewall mark "${key.fwmark}"`);
    if (key.family !== 4 && key.family !== 6) throw new CoreError("EINVAL", op, `Invalid family "${key.family}"`);
    return key;
  }
  if (key.protocol !== "tcp" && key.protocol !== "udp" && key.protocol !== "sctp")
    throw new CoreError("EINVAL", op, `Invalid protocol "${String(key.protocol)}"`);
  const addr = canonicalIp(key.addr);
  if (addr === undefined) throw new CoreError("EINVAL", op, `Invalid service address "${key.addr}"`);
  if (!isInt(key.port, 0, U16)) throw new CoreError("EINVAL", op, `Invalid service port "${key.port}"`);
  return addr === key.addr ? key : { ...key, addr };
}
