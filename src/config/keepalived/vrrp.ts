// keepalived VRRP blocks (vrrp_instance, vrrp_sync_group, vrrp_script, static_ipaddress): checked
// for known keywords and value shapes and kept as VrrpConfig for the VRRP engine (src/vrrp). What
// tvs cannot do is refused or flagged here, so `tvs check-config` says it before tvsd starts:
// use_vmac / use_ipvlan and auth_type AH are errors; keepalived keywords tvs does not act on are
// warnings naming them; an interface missing on this machine, a VRID used twice on one interface
// and a virtual address in two instances are errors.

import { existsSync } from "node:fs";
import { canonicalIp } from "../../core/addr.ts";
import type { SourcePos } from "../diagnostics.ts";
import { parseUint } from "../values.ts";
import type {
  TrackRef,
  VipSpec,
  VrrpConfig,
  VrrpInstanceSpec,
  VrrpNotify,
  VrrpScriptSpec,
  VrrpSyncGroupSpec,
} from "../vrrp-spec.ts";
import type { StmtReader } from "./reader.ts";
import type { Stmt } from "./tree.ts";

/** vrrp_instance keywords the engine reads from `extra` (the garp settings, the checksum form). */
const INSTANCE_EXTRA_USED = new Set([
  "garp_master_refresh",
  "garp_master_repeat",
  "garp_master_refresh_repeat",
  "v3_checksum_as_v2",
]);

/** Refused: a VMAC / ipvlan interface per instance is not something tvs creates. */
const INSTANCE_REFUSED = new Set(["use_vmac", "use_vmac_addr", "vmac_xmit_base", "use_ipvlan"]);

/** vrrp_instance keywords kept as written (known to keepalived, not interpreted here). */
const INSTANCE_EXTRA = new Set([
  "use_vmac",
  "use_vmac_addr",
  "vmac_xmit_base",
  "use_ipvlan",
  "unicast_fault_no_peer",
  "check_unicast_src",
  "old_unicast_checksum",
  "native_ipv6",
  "vrf",
  "dont_track_primary",
  "track_file",
  "track_process",
  "track_bfd",
  "mcast_dst_ip",
  "track_src_ip",
  "unicast_ttl",
  "no_virtual_ipaddress",
  "promote_secondaries",
  "linkbeat_use_polling",
  "v3_checksum_as_v2",
  "virtual_routes",
  "virtual_rules",
  "accept",
  "no_accept",
  "skip_check_adv_addr",
  "strict_mode",
  "debug",
  "notify_deleted",
  "notify_master_rx_lower_pri",
  "smtp_alert",
  "notify_priority_changes",
  "lvs_sync_daemon_interface",
  "garp_master_refresh",
  "garp_master_repeat",
  "garp_master_refresh_repeat",
  "garp_lower_prio_delay",
  "garp_lower_prio_repeat",
  "down_timer_adverts",
  "timer_expired_backup",
  "thread_timer_expired",
  "garp_extra_if",
  "vmac_garp_intvl",
  "lower_prio_no_advert",
  "higher_prio_send_advert",
  "owner_ignore_adverts",
  "kernel_rx_buf_size",
  "interface_up_down_delays",
]);

const SYNC_GROUP_EXTRA = new Set([
  "track_interface",
  "track_script",
  "track_file",
  "track_process",
  "track_bfd",
  "smtp_alert",
  "global_tracking",
  "sync_group_tracking_weight",
  "notify_priority_changes",
]);

function words(s: Stmt): string[] {
  return s.words.slice(1).map((w) => w.text);
}

/** One address line: `ADDR[/LEN] [brd B] [dev IF] [scope S] [label L] ...`. */
export function readVip(r: StmtReader, s: Stmt): VipSpec | undefined {
  const first = s.words[0];
  if (!first) return undefined;
  const [a, len] = first.text.split("/");
  const addr = canonicalIp(a ?? "");
  if (addr === undefined) {
    r.diags.error(first.pos, `Invalid virtual IP address "${first.text}"`);
    return undefined;
  }
  const max = addr.includes(":") ? 128 : 32;
  let prefix = max;
  if (len !== undefined) {
    const p = parseUint(len, 0, max);
    if (p === undefined) {
      r.diags.error(first.pos, `Invalid prefix length "/${len}" in "${first.text}" (expected 0..${max})`);
      return undefined;
    }
    prefix = p;
  }
  const vip: VipSpec = { addr, prefix, options: [], origin: first.pos };
  for (let i = 1; i < s.words.length; i++) {
    const w = s.words[i]?.text as string;
    const next = s.words[i + 1]?.text;
    if ((w === "dev" || w === "label") && next !== undefined) {
      if (w === "dev") vip.dev = next;
      else vip.label = next;
      i++;
    } else vip.options.push(w);
  }
  r.noBlock(s);
  return vip;
}

function readVipBlock(r: StmtReader, s: Stmt): VipSpec[] {
  const out: VipSpec[] = [];
  for (const c of r.block(s) ?? []) {
    const v = readVip(r, c);
    if (v) out.push(v);
  }
  return out;
}

function readTrackBlock(r: StmtReader, s: Stmt): TrackRef[] {
  const out: TrackRef[] = [];
  for (const c of r.block(s) ?? []) {
    const ref: TrackRef = { name: r.kw(c) };
    if (c.words[1]?.text === "weight") {
      const t = c.words[2];
      const v = t && /^[-+]?\d+$/.test(t.text) ? Number(t.text) : Number.NaN;
      if (!t || !Number.isInteger(v) || v < -254 || v > 254)
        r.diags.error(
          (t ?? (c.words[1] as NonNullable<typeof t>)).pos,
          `Invalid track weight "${t?.text ?? ""}" (expected -254..254)`,
        );
      else ref.weight = v;
    } else if (c.words[1])
      r.diags.warning(c.words[1].pos, `Unexpected "${c.words[1].text}" after "${ref.name}" - ignored`);
    r.noBlock(c);
    out.push(ref);
  }
  return out;
}

function readNotify(r: StmtReader, s: Stmt, notify: VrrpNotify): boolean {
  const k = r.kw(s);
  const slot = {
    notify_master: "master",
    notify_backup: "backup",
    notify_fault: "fault",
    notify_stop: "stop",
    notify: "any",
  }[k] as keyof VrrpNotify | undefined;
  if (!slot) return false;
  const cmd = r.rest(s, 1, "a script");
  if (cmd !== undefined) notify[slot] = cmd;
  r.noBlock(s);
  return true;
}

export function readVrrpInstance(r: StmtReader, s: Stmt): VrrpInstanceSpec | undefined {
  const name = r.arg(s, 1, "an instance name");
  const stmts = r.block(s);
  if (!name || !stmts) return undefined;
  r.noExtra(s, 1);
  const pos = r.pos(s);
  const inst: VrrpInstanceSpec = {
    name: name.text,
    state: "BACKUP",
    virtualRouterId: 0,
    priority: 100,
    advertIntMs: 1000,
    preempt: true,
    preemptDelayMs: 0,
    virtualIpaddresses: [],
    virtualIpaddressesExcluded: [],
    unicastPeers: [],
    trackScripts: [],
    trackInterfaces: [],
    notify: {},
    extra: {},
    origin: pos,
  };
  let sawVrid = false;
  for (const c of stmts) {
    const k = r.kw(c);
    if (readNotify(r, c, inst.notify)) continue;
    switch (k) {
      case "state": {
        const t = r.value(c, "MASTER or BACKUP");
        if (t?.text === "MASTER" || t?.text === "BACKUP") inst.state = t.text;
        else if (t) r.diags.error(t.pos, `Invalid state "${t.text}" (expected MASTER or BACKUP)`);
        break;
      }
      case "interface": {
        const v = r.str(c, "an interface name");
        if (v !== undefined) inst.interface = v;
        break;
      }
      case "virtual_router_id": {
        const v = r.uint(c, 1, 255);
        sawVrid = true;
        if (v !== undefined) inst.virtualRouterId = v;
        break;
      }
      case "priority":
        inst.priority = r.uint(c, 1, 255) ?? inst.priority;
        break;
      case "advert_int": {
        const v = r.timerMs(c, 10);
        if (v !== undefined && v > 255_000) r.diags.error(r.pos(c), `advert_int ${v / 1000} is above 255 seconds`);
        else if (v !== undefined) inst.advertIntMs = v;
        break;
      }
      case "version": {
        const v = r.uint(c, 2, 3);
        if (v === 2 || v === 3) inst.version = v;
        break;
      }
      case "nopreempt":
        r.bare(c);
        inst.preempt = false;
        break;
      case "preempt":
        r.bare(c);
        inst.preempt = true;
        break;
      case "preempt_delay":
        inst.preemptDelayMs = r.timerMs(c) ?? inst.preemptDelayMs;
        break;
      case "garp_master_delay": {
        const v = r.timerMs(c);
        if (v !== undefined) inst.garpMasterDelayMs = v;
        break;
      }
      case "mcast_src_ip":
      case "unicast_src_ip": {
        const v = r.ip(c);
        r.noExtra(c, 1);
        if (v !== undefined && k === "mcast_src_ip") inst.mcastSrcIp = v;
        else if (v !== undefined) inst.unicastSrcIp = v;
        break;
      }
      case "unicast_peer":
        for (const p of r.block(c) ?? []) {
          const v = canonicalIp(r.kw(p));
          if (v === undefined) r.diags.error(r.pos(p), `Invalid unicast_peer address "${r.kw(p)}"`);
          else inst.unicastPeers.push(v);
          r.noBlock(p);
        }
        continue;
      case "virtual_ipaddress":
        inst.virtualIpaddresses.push(...readVipBlock(r, c));
        continue;
      case "virtual_ipaddress_excluded":
        inst.virtualIpaddressesExcluded.push(...readVipBlock(r, c));
        continue;
      case "track_script":
        inst.trackScripts.push(...readTrackBlock(r, c));
        continue;
      case "track_interface":
        inst.trackInterfaces.push(...readTrackBlock(r, c));
        continue;
      case "authentication": {
        let type: "PASS" | "AH" | undefined;
        let pass: string | undefined;
        for (const a of r.block(c) ?? []) {
          if (r.kw(a) === "auth_type") {
            const t = r.value(a, "PASS or AH");
            if (t?.text === "PASS" || t?.text === "AH") type = t.text;
            else if (t) r.diags.error(t.pos, `Invalid auth_type "${t.text}" (expected PASS or AH)`);
          } else if (r.kw(a) === "auth_pass") {
            const t = r.value(a, "a password");
            if (t && t.text.length > 8) {
              r.diags.warning(
                t.pos,
                `auth_pass is longer than 8 characters - truncated to "${t.text.slice(0, 8)}" as keepalived does`,
              );
              pass = t.text.slice(0, 8);
            } else if (t) pass = t.text;
          } else r.unknown(a, "authentication");
          r.noBlock(a);
        }
        if (type === undefined || pass === undefined)
          r.diags.error(r.pos(c), "authentication needs both auth_type and auth_pass");
        else if (type === "AH")
          r.diags.error(
            r.pos(c),
            "auth_type AH (IPsec AH authentication, removed from VRRP by RFC 3768) is not supported by tvs: use auth_type PASS or no authentication",
          );
        else inst.authentication = { type, pass };
        continue;
      }
      default:
        if (INSTANCE_EXTRA.has(k)) {
          inst.extra[k] = words(c);
          if (c.block) inst.extra[k] = c.block.stmts.flatMap((b) => b.words.map((w) => w.text));
          if (INSTANCE_REFUSED.has(k))
            r.diags.error(
              r.pos(c),
              `${k} is not supported by tvs (it does not create a VMAC or ipvlan interface per instance): remove it; the VIPs are configured on "${inst.interface ?? "the interface"}" itself`,
            );
          else if (!INSTANCE_EXTRA_USED.has(k))
            r.diags.warning(r.pos(c), `${k} is not supported by tvs VRRP - ignored`);
          continue;
        }
        r.unknown(c, "vrrp_instance");
    }
    r.noBlock(c);
  }
  if (!sawVrid) r.diags.error(pos, `vrrp_instance ${inst.name} has no virtual_router_id`);
  if (inst.interface === undefined) r.diags.warning(pos, `vrrp_instance ${inst.name} has no interface`);
  if (inst.state === "MASTER" && inst.priority < 255 && !s.block?.stmts.some((c) => r.kw(c) === "priority"))
    r.diags.warning(pos, `vrrp_instance ${inst.name} is MASTER without a priority (default 100)`);
  const v6 = inst.virtualIpaddresses.some((v) => v.addr.includes(":"));
  const v4 = inst.virtualIpaddresses.some((v) => !v.addr.includes(":"));
  if (v4 && v6)
    r.diags.error(
      pos,
      `vrrp_instance ${inst.name} mixes IPv4 and IPv6 virtual_ipaddress (use virtual_ipaddress_excluded for the other family)`,
    );
  if (v6 && inst.version === 2)
    r.diags.warning(
      pos,
      `vrrp_instance ${inst.name} has IPv6 addresses: VRRP version 3 is used (version 2 is IPv4 only)`,
    );
  if (inst.authentication && inst.version === 3)
    r.diags.warning(pos, `vrrp_instance ${inst.name}: VRRPv3 has no authentication - authentication ignored`);
  return inst;
}

export function readVrrpSyncGroup(r: StmtReader, s: Stmt): VrrpSyncGroupSpec | undefined {
  const name = r.arg(s, 1, "a group name");
  const stmts = r.block(s);
  if (!name || !stmts) return undefined;
  const g: VrrpSyncGroupSpec = { name: name.text, instances: [], notify: {}, extra: {}, origin: r.pos(s) };
  for (const c of stmts) {
    const k = r.kw(c);
    if (readNotify(r, c, g.notify)) continue;
    if (k === "group") {
      for (const m of r.block(c) ?? []) {
        for (const w of m.words) g.instances.push(w.text);
        r.noBlock(m);
      }
      continue;
    }
    if (SYNC_GROUP_EXTRA.has(k)) {
      g.extra[k] = c.block ? c.block.stmts.flatMap((b) => b.words.map((w) => w.text)) : words(c);
      continue;
    }
    r.unknown(c, "vrrp_sync_group");
    r.noBlock(c);
  }
  if (g.instances.length === 0) r.diags.error(g.origin, `vrrp_sync_group ${g.name} has no group { } of instances`);
  for (const k of Object.keys(g.extra))
    r.diags.warning(g.origin, `vrrp_sync_group ${g.name}: ${k} is not supported by tvs - ignored`);
  return g;
}

export function readVrrpScript(r: StmtReader, s: Stmt): VrrpScriptSpec | undefined {
  const name = r.arg(s, 1, "a script name");
  const stmts = r.block(s);
  if (!name || !stmts) return undefined;
  const sc: VrrpScriptSpec = {
    name: name.text,
    script: "",
    intervalMs: 1000,
    weight: 0,
    rise: 1,
    fall: 1,
    origin: r.pos(s),
  };
  for (const c of stmts) {
    switch (r.kw(c)) {
      case "script":
        sc.script = r.rest(c, 1, "a command") ?? sc.script;
        break;
      case "interval":
        sc.intervalMs = r.timerMs(c, 1) ?? sc.intervalMs;
        break;
      case "timeout": {
        const v = r.timerMs(c, 1);
        if (v !== undefined) sc.timeoutMs = v;
        break;
      }
      case "weight": {
        const t = r.arg(c, 1, "a weight (-253..253)");
        const v = t && /^[-+]?\d+$/.test(t.text) ? Number(t.text) : Number.NaN;
        if (t && (!Number.isInteger(v) || v < -253 || v > 253))
          r.diags.error(t.pos, `Invalid weight "${t.text}" (expected -253..253)`);
        else if (t) sc.weight = v;
        if (c.words[2] && c.words[2].text !== "reverse") r.noExtra(c, 1);
        break;
      }
      case "rise":
        sc.rise = r.uint(c, 1, 2 ** 31 - 1) ?? sc.rise;
        break;
      case "fall":
        sc.fall = r.uint(c, 1, 2 ** 31 - 1) ?? sc.fall;
        break;
      case "user": {
        const u = r.arg(c, 1, "a user name");
        if (u) sc.user = u.text;
        break;
      }
      case "init_fail":
        r.bare(c);
        break;
      default:
        r.unknown(c, "vrrp_script");
    }
    r.noBlock(c);
  }
  if (sc.script === "") r.diags.error(sc.origin, `vrrp_script ${sc.name} has no script`);
  return sc;
}

/** Whether a network interface exists on this machine (Linux sysfs; elsewhere assumed). */
export function interfaceExists(name: string): boolean {
  if (process.platform !== "linux") return true;
  return /^[^/\0\s]{1,15}$/.test(name) && existsSync(`/sys/class/net/${name}`);
}

/**
 * The checks that depend on this machine, for `tvs check-config` (tvsd makes the same ones when it
 * starts or reloads): every interface an instance runs on or tracks exists.
 */
export function checkVrrpInterfaces(
  vrrp: VrrpConfig,
  ifExists: (name: string) => boolean = interfaceExists,
): { origin: SourcePos; message: string }[] {
  const out: { origin: SourcePos; message: string }[] = [];
  for (const i of vrrp.instances) {
    if (i.interface !== undefined && !ifExists(i.interface))
      out.push({ origin: i.origin, message: `vrrp_instance ${i.name}: interface "${i.interface}" does not exist` });
    for (const t of i.trackInterfaces)
      if (!ifExists(t.name))
        out.push({
          origin: i.origin,
          message: `vrrp_instance ${i.name}: tracked interface "${t.name}" does not exist`,
        });
  }
  return out;
}

/**
 * Cross-checks: sync groups name existing instances; tracked scripts exist; interfaces exist;
 * VRIDs unique per interface; a virtual address belongs to one instance.
 */
export function checkVrrp(r: StmtReader, vrrp: VrrpConfig, globals: Record<string, string[]>): void {
  const gVersion = globals.vrrp_version?.[0] === "3" ? 3 : 2;
  for (const i of vrrp.instances) {
    const v6 = i.virtualIpaddresses.some((v) => v.addr.includes(":"));
    if (i.advertIntMs % 1000 !== 0 && (i.version ?? gVersion) === 2 && !v6)
      r.diags.warning(
        i.origin,
        `vrrp_instance ${i.name}: advert_int ${i.advertIntMs / 1000} is not whole seconds; VRRPv2 rounds it (set version 3 or vrrp_version 3 for sub-second adverts)`,
      );
  }
  const owner = new Map<string, string>();
  for (const i of vrrp.instances)
    for (const v of [...i.virtualIpaddresses, ...i.virtualIpaddressesExcluded]) {
      const o = owner.get(v.addr);
      if (o !== undefined && o !== i.name)
        r.diags.error(v.origin, `Virtual address ${v.addr} is in vrrp_instance ${o} and ${i.name}`);
      else owner.set(v.addr, i.name);
    }
  const names = new Map(vrrp.instances.map((i) => [i.name, i]));
  for (const g of vrrp.syncGroups)
    for (const n of g.instances)
      if (!names.has(n)) r.diags.error(g.origin, `vrrp_sync_group ${g.name} names unknown vrrp_instance "${n}"`);
  const scripts = new Set(vrrp.scripts.map((s) => s.name));
  for (const i of vrrp.instances)
    for (const t of i.trackScripts)
      if (!scripts.has(t.name))
        r.diags.warning(i.origin, `vrrp_instance ${i.name} tracks unknown vrrp_script "${t.name}"`);
  const seen = new Map<string, VrrpInstanceSpec>();
  for (const i of vrrp.instances) {
    if (i.virtualRouterId === 0) continue;
    const fam = i.virtualIpaddresses[0]?.addr.includes(":") ? 6 : 4;
    const id = `${i.interface ?? ""}/${fam}/${i.virtualRouterId}`;
    const other = seen.get(id);
    if (other)
      r.diags.error(
        i.origin,
        `vrrp_instance ${i.name} uses virtual_router_id ${i.virtualRouterId} on ${i.interface ?? "the default interface"}, already used by ${other.name}`,
      );
    else seen.set(id, i);
  }
}
