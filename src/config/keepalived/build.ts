// keepalived.conf → DirectorConfig: reads the file and its includes, builds the statement tree,
// then walks the top level: global_defs, virtual_server_group (address ranges expanded),
// virtual_server, track_file, SSL, and the VRRP blocks. Virtual servers are built after the whole
// file is read so a group may be defined after its use, as keepalived allows.

import { canonicalIp, formatIpv4, ipWords, parseIpv4, wordsToIp } from "../../core/addr.ts";
import type { FwmarkRule } from "../../core/fwmark/rule.ts";
import { MAX_FWMARK, serviceKeyId } from "../../core/service.ts";
import type { DesiredService } from "../desired.ts";
import { Diagnostics, type SourcePos } from "../diagnostics.ts";
import type { DirectorConfig, ServiceHealth } from "../director-config.ts";
import { parsePort, parseUint } from "../values.ts";
import { emptyVrrpConfig } from "../vrrp-spec.ts";
import { type AnnounceConfig, readAnnounce } from "./announce.ts";
import { CHECKER_KEYWORDS, type PendingFileRef } from "./checkers.ts";
import { readFwmarkRules } from "./fwmark-rules.ts";
import { type LvsSyncDaemonSpec, readLvsSyncDaemon } from "./lvs-sync-daemon.ts";
import { StmtReader } from "./reader.ts";
import { readKeepalivedSource } from "./source.ts";
import { parseTree, type Stmt } from "./tree.ts";
import { buildVirtualServer, type GroupEntry, readVirtualServer, type VsDraft } from "./virtual-server.ts";
import { checkVrrp, readVip, readVrrpInstance, readVrrpScript, readVrrpSyncGroup } from "./vrrp.ts";

/** Largest number of services one virtual_server_group may expand into. */
export const MAX_GROUP_EXPANSION = 4096;

const GLOBAL_DEFS = new Set(
  (
    "linkbeat_use_polling net_namespace net_namespace_ipvs namespace_with_ipsets use_pid_dir instance child_wait_time " +
    "process_names process_name vrrp_process_name checker_process_name lvs_process_name bfd_process_name " +
    "use_symlink_paths set_supplementary_groups router_id notification_email_from smtp_server smtp_helo_name " +
    "smtp_connect_timeout notification_email smtp_alert startup_script startup_script_timeout shutdown_script " +
    "shutdown_script_timeout max_auto_priority min_auto_priority_delay smtp_alert_vrrp smtp_alert_checker " +
    "checker_log_all_failures dynamic_interfaces no_email_faults default_interface disable_local_igmp " +
    "v3_checksum_as_v2 lvs_timeouts lvs_flush lvs_flush_on_stop lvs_flush_onstop lvs_sync_daemon vrrp_mcast_group4 " +
    "vrrp_mcast_group6 vrrp_garp_master_delay vrrp_garp_master_repeat vrrp_garp_master_refresh " +
    "vrrp_garp_master_refresh_repeat vrrp_garp_lower_prio_delay vrrp_garp_lower_prio_repeat vrrp_down_timer_adverts " +
    "vrrp_garp_interval vrrp_gna_interval vrrp_min_garp vrrp_garp_extra_if vrrp_vmac_garp_intvl " +
    "vrrp_lower_prio_no_advert vrrp_higher_prio_send_advert vrrp_version vrrp_iptables vrrp_ipsets nftables " +
    "nftables_priority nftables_ifindex vrrp_check_unicast_src vrrp_skip_check_adv_addr vrrp_strict vrrp_priority " +
    "vrrp_no_swap vrrp_rt_priority vrrp_cpu_affinity vrrp_rlimit_rttime vrrp_rlimit_rtime nftables_ipvs " +
    "nftables_ipvs_priority nftables_ipvs_start_fwmark nftables_counters notify_fifo notify_fifo_script " +
    "vrrp_notify_fifo vrrp_notify_fifo_script vrrp_notify_priority_changes fifo_write_vrrp_states_on_reload " +
    "lvs_notify_fifo lvs_notify_fifo_script checker_priority checker_no_swap checker_rt_priority checker_cpu_affinity " +
    "checker_rlimit_rttime checker_rlimit_rtime bfd_priority bfd_no_swap bfd_rt_priority bfd_cpu_affinity " +
    "bfd_rlimit_rttime bfd_rlimit_rtime snmp_socket enable_traps enable_snmp_vrrp enable_snmp_keepalived " +
    "enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_snmp_checker snmp_vs_stats_update_interval " +
    "snmp_rs_stats_update_interval enable_dbus dbus_service_name dbus_no_interface_name script_user " +
    "enable_script_security vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs " +
    "vrrp_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs process_monitor_rcv_bufs_force " +
    "lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force lvs_netlink_monitor_rcv_bufs " +
    "lvs_netlink_monitor_rcv_bufs_force rs_init_notifies no_checker_emails vrrp_rx_bufs_policy " +
    "vrrp_rx_bufs_multiplier vrrp_startup_delay vrrp_delay_after_boot log_unknown_vrids vrrp_owner_ignore_adverts " +
    "vmac_prefix vmac_addr_prefix umask random_seed reload_check_config reload_time_file reload_repeat reload_file " +
    "include_check config_save_dir tmp_config_directory data_use_instance json_version iproute_usr_dir " +
    "iproute_etc_dir state_dump_file stats_dump_file json_dump_file"
  ).split(" "),
);

/** Top-level blocks keepalived knows that tvs reads but does not use. */
const KNOWN_UNUSED_TOP = new Set([
  "static_routes",
  "static_rules",
  "vrrp_track_process",
  "track_process",
  "bfd_instance",
  "garp_group",
  "linkbeat_use_polling",
  "net_namespace",
]);

/** Expands one virtual_server_group line into entries (ranges "A-B", "A-C.D.E.F", "A/len", fwmark). */
function readGroupEntry(r: StmtReader, s: Stmt, out: GroupEntry[]): boolean {
  const first = s.words[0];
  if (!first) return false;
  r.noBlock(s);
  if (first.text === "fwmark") {
    const t = r.arg(s, 1, "a firewall mark");
    if (!t) return false;
    const mark = parseUint(t.text, 1, MAX_FWMARK);
    if (mark === undefined) {
      r.diags.error(t.pos, `Invalid fwmark "${t.text}" (expected 1..4294967295)`);
      return false;
    }
    const fam = s.words[2];
    if (fam && fam.text !== "inet" && fam.text !== "inet6") {
      r.diags.error(fam.pos, `Invalid fwmark family "${fam.text}" (expected inet or inet6)`);
      return false;
    }
    r.noExtra(s, 2);
    out.push(
      fam ? { kind: "fwmark", fwmark: mark, family: fam.text === "inet" ? 4 : 6 } : { kind: "fwmark", fwmark: mark },
    );
    return false;
  }
  let port = 0;
  const p = s.words[1];
  if (p) {
    const v = parsePort(p.text);
    if (v === undefined) {
      r.diags.error(p.pos, `Invalid port "${p.text}" (expected 0..65535)`);
      return false;
    }
    port = v;
  }
  r.noExtra(s, 1);
  const text = first.text;
  const bad = (why: string): false => {
    r.diags.error(first.pos, `Invalid virtual_server_group address "${text}" (${why})`);
    return false;
  };
  let startText = text;
  let endWords: number[] | undefined;
  let startWords: number[];
  const slash = text.indexOf("/");
  const dash = text.indexOf("-");
  if (slash !== -1) {
    startText = text.slice(0, slash);
    const a = canonicalIp(startText);
    if (a === undefined) return bad("not an IP address");
    const max = a.includes(":") ? 128 : 32;
    const len = parseUint(text.slice(slash + 1), 1, max);
    if (len === undefined) return bad(`prefix length must be 1..${max}`);
    startWords = ipWords(a);
    endWords = startWords.map((w, i) => {
      const bits = Math.max(0, Math.min(32, len - i * 32));
      const host = bits === 32 ? 0 : (0xffffffff >>> bits) >>> 0;
      return (w | host) >>> 0;
    });
    const hostBitsSet = startWords.some((w, i) => {
      const bits = Math.max(0, Math.min(32, len - i * 32));
      const host = bits === 32 ? 0 : (0xffffffff >>> bits) >>> 0;
      return (w & host) !== 0;
    });
    if (hostBitsSet) return bad("host bits set below the prefix length");
  } else if (dash !== -1) {
    startText = text.slice(0, dash);
    const a = canonicalIp(startText);
    if (a === undefined) return bad("not an IP address");
    startWords = ipWords(a);
    const endText = text.slice(dash + 1);
    const v4 = parseIpv4(a) !== undefined;
    if ((v4 && endText.includes(".")) || (!v4 && endText.includes(":"))) {
      const e = canonicalIp(endText);
      if (e === undefined || e.includes(":") !== !v4) return bad("the range end is not an address of the same family");
      endWords = ipWords(e);
    } else {
      const last = v4
        ? parseUint(endText, 0, 255)
        : /^[0-9a-fA-F]{1,4}$/.test(endText)
          ? Number.parseInt(endText, 16)
          : undefined;
      if (last === undefined) return bad("the range end must be the last part of the address");
      endWords = [...startWords];
      const i = endWords.length - 1;
      const mask = v4 ? 0xff : 0xffff;
      endWords[i] = (((endWords[i] as number) & ~mask) | last) >>> 0;
      if (last <= ((startWords[i] as number) & mask)) return bad("the range end must be above the start");
    }
  } else {
    const a = canonicalIp(text);
    if (a === undefined) return bad("not an IP address");
    out.push({ kind: "vip", addr: a, port });
    return true;
  }
  // Walk start..end (inclusive) as a big-endian multiword counter, bounded.
  const cur = [...startWords];
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return (a[i] as number) < (b[i] as number) ? -1 : 1;
    return 0;
  };
  if (cmp(cur, endWords) > 0) return bad("the range end is below the start");
  let n = 0;
  for (;;) {
    if (++n > MAX_GROUP_EXPANSION) {
      r.diags.error(
        first.pos,
        `virtual_server_group range "${text}" expands to more than ${MAX_GROUP_EXPANSION} addresses`,
      );
      return false;
    }
    out.push({ kind: "vip", addr: cur.length === 1 ? formatIpv4(cur[0] as number) : wordsToIp(cur), port });
    if (cmp(cur, endWords) === 0) break;
    for (let i = cur.length - 1; i >= 0; i--) {
      cur[i] = ((cur[i] as number) + 1) >>> 0;
      if (cur[i] !== 0) break;
    }
  }
  return true;
}

/** Parses keepalived.conf text already read (and its includes from disk). Never throws. */
export function buildKeepalived(
  file: string,
  text: string | undefined,
): { config: DirectorConfig; diagnostics: Diagnostics } {
  const diags = new Diagnostics();
  const r = new StmtReader(diags);
  const src = readKeepalivedSource(file, diags, text);
  const tree = parseTree(src.tokens, diags);
  const globals: Record<string, string[]> = {};
  const groups = new Map<string, GroupEntry[]>();
  const groupPos = new Map<string, SourcePos>();
  const drafts: VsDraft[] = [];
  const trackFiles = new Map<string, string>();
  const vrrp = emptyVrrpConfig();
  let lvsSyncDaemon: LvsSyncDaemonSpec | undefined;
  let announce: AnnounceConfig | undefined;
  let fwmarkRules: FwmarkRule[] | undefined;

  for (const s of tree) {
    const k = r.kw(s);
    switch (k) {
      case "global_defs":
        for (const g of r.block(s) ?? []) {
          const gk = r.kw(g);
          if (!GLOBAL_DEFS.has(gk)) r.unknown(g, "global_defs");
          else if (g.block) globals[gk] = g.block.stmts.flatMap((b) => b.words.map((w) => w.text));
          else globals[gk] = g.words.slice(1).map((w) => w.text);
          if (gk === "router_id") r.str(g, "a router id");
          if (gk === "lvs_sync_daemon") {
            if (lvsSyncDaemon) r.diags.error(r.pos(g), "lvs_sync_daemon is given twice");
            else lvsSyncDaemon = readLvsSyncDaemon(r, g);
          }
          if (gk === "vrrp_version") r.uint(g, 2, 3);
          if (
            gk === "vrrp_garp_master_delay" ||
            gk === "vrrp_garp_master_repeat" ||
            gk === "vrrp_garp_master_refresh" ||
            gk === "vrrp_garp_master_refresh_repeat"
          )
            r.uint(g, 0, 2 ** 31 - 1);
        }
        break;
      case "virtual_server_group": {
        const name = r.arg(s, 1, "a group name");
        const stmts = r.block(s);
        if (!name || !stmts) break;
        r.noExtra(s, 1);
        if (groups.has(name.text)) {
          diags.error(name.pos, `virtual_server_group "${name.text}" is defined twice`);
          break;
        }
        const entries: GroupEntry[] = [];
        for (const e of stmts) readGroupEntry(r, e, entries);
        if (entries.length === 0) diags.warning(r.pos(s), `virtual_server_group ${name.text} has no entries`);
        groups.set(name.text, entries);
        groupPos.set(name.text, r.pos(s));
        break;
      }
      case "virtual_server": {
        const d = readVirtualServer(r, s);
        if (d) drafts.push(d);
        break;
      }
      case "real_server":
        diags.error(r.pos(s), "real_server outside a virtual_server");
        break;
      case "track_file":
      case "vrrp_track_file": {
        const name = r.arg(s, 1, "a track_file name");
        const stmts = r.block(s);
        if (!name || !stmts) break;
        let path: string | undefined;
        for (const c of stmts) {
          const ck = r.kw(c);
          if (ck === "file") path = r.str(c, "a file path");
          else if (ck === "weight") r.arg(c, 1, "a weight");
          else if (ck !== "init_file") r.unknown(c, k);
          r.noBlock(c);
        }
        if (path === undefined) diags.error(r.pos(s), `${k} ${name.text} has no file`);
        else trackFiles.set(name.text, path);
        break;
      }
      case "SSL":
        for (const c of r.block(s) ?? []) {
          const ck = r.kw(c);
          if (ck === "password" || ck === "ca" || ck === "certificate" || ck === "key")
            globals[`SSL.${ck}`] = [r.str(c, "a value") ?? ""];
          else r.unknown(c, "SSL");
          r.noBlock(c);
        }
        break;
      case "tvs_fwmark_rules":
        if (fwmarkRules) r.diags.error(r.pos(s), "tvs_fwmark_rules is given twice");
        else fwmarkRules = readFwmarkRules(r, s);
        break;
      case "tvs_announce":
        if (announce) r.diags.error(r.pos(s), "tvs_announce is given twice");
        else announce = readAnnounce(r, s);
        break;
      case "vrrp_instance": {
        const v = readVrrpInstance(r, s);
        if (v) vrrp.instances.push(v);
        break;
      }
      case "vrrp_sync_group": {
        const v = readVrrpSyncGroup(r, s);
        if (v) vrrp.syncGroups.push(v);
        break;
      }
      case "vrrp_script": {
        const v = readVrrpScript(r, s);
        if (v) vrrp.scripts.push(v);
        break;
      }
      case "static_ipaddress":
        for (const c of r.block(s) ?? []) {
          const v = readVip(r, c);
          if (v) vrrp.staticIpaddresses.push(v);
        }
        diags.warning(r.pos(s), "static_ipaddress is parsed and kept, but tvs does not configure addresses yet");
        break;
      default:
        if (CHECKER_KEYWORDS.has(k)) diags.error(r.pos(s), `${k} outside a real_server`);
        else if (KNOWN_UNUSED_TOP.has(k)) r.unsupported(s, "the configuration");
        else r.unknown(s, "the configuration");
    }
  }

  const fileRefs: PendingFileRef[] = [];
  const services: DesiredService[] = [];
  const health: ServiceHealth[] = [];
  const seen = new Map<string, SourcePos>();
  const usedGroups = new Set<string>();
  for (const d of drafts) {
    if (d.target.kind === "group") usedGroups.add(d.target.name);
    for (const b of buildVirtualServer(r, d, groups, fileRefs)) {
      const id = serviceKeyId(b.service.key);
      const prev = seen.get(id);
      if (prev) {
        diags.error(d.pos, `Virtual service ${id} is defined twice (first at ${prev.file}:${prev.line})`);
        continue;
      }
      seen.set(id, d.pos);
      services.push(b.service);
      health.push(b.health);
    }
  }
  for (const [name, pos] of groupPos)
    if (!usedGroups.has(name)) diags.warning(pos, `virtual_server_group ${name} is not used by any virtual_server`);
  for (const ref of fileRefs) {
    const path = trackFiles.get(ref.name);
    if (path === undefined) diags.error(ref.pos, `FILE_CHECK names unknown track_file "${ref.name}"`);
    else ref.spec.file = path;
  }
  checkVrrp(r, vrrp, globals);
  if (lvsSyncDaemon && !vrrp.instances.some((i) => i.name === lvsSyncDaemon?.instance))
    diags.error(lvsSyncDaemon.origin, `lvs_sync_daemon names unknown vrrp_instance "${lvsSyncDaemon.instance}"`);

  const config: DirectorConfig = {
    format: "keepalived",
    file,
    files: src.files,
    desired: { services },
    health,
    vrrp,
    globals,
    warnings: diags.warnings,
  };
  if (lvsSyncDaemon) config.lvsSyncDaemon = lvsSyncDaemon;
  if (announce) config.announce = announce;
  if (fwmarkRules) config.fwmarkRules = fwmarkRules;
  return { config, diagnostics: diags };
}
