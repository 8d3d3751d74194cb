// ipvsadm 1.31's output, byte for byte, from a control API Snapshot: the service listing in each
// of its formats (plain, --stats, --rate, --thresholds, --persistent-conn, --tun-info), the rules
// of -S, the connection entries of -c, --timeout and --daemon. Names are looked up beforehand
// (see names.ts) and passed in as a synchronous table.
//
// Sorting reproduces libipvs's comparators, quirks included: addresses are compared by subtracting
// 32-bit words and reading the difference as a signed int, so addresses more than 2^31 apart
// compare "backwards" (192.168.0.1 lists before 10.0.0.1), exactly as ipvsadm shows them.

import type { ListFormat } from "../../config/ipvsadm-grammar.ts";
import type { ConnView, DestView, ServiceView, Snapshot, SyncDaemonSpec } from "../../control/api/protocol.ts";
import { formatIpv4, ipWords, wordsToIp } from "../../core/addr.ts";
import { schedFlagBits, schedFlagNames } from "../../core/sched/flags.ts";
import type { ServiceKey } from "../../core/service.ts";

export type Proto = "tcp" | "udp" | "sctp";

/** Names found before formatting: host names by address, service names by port and protocol. */
export interface NameTable {
  host(addr: string): string | undefined;
  service(port: number, protocol: Proto): string | undefined;
}

export const NO_NAMES: NameTable = { host: () => undefined, service: () => undefined };

export interface FormatOptions extends ListFormat {
  /** -S: rules instead of a listing. */
  rule?: boolean;
  /** With rule: also -x/-y when a destination has them (ipvsadm -S leaves them out, -R takes them). */
  ruleThresholds?: boolean;
}

const pad = (s: string | number, n: number): string => String(s).padEnd(n);
const lpad = (s: string | number, n: number): string => String(s).padStart(n);
/** C's "%d" of a value stored as unsigned 32 bits. */
const int32 = (v: number): number => v | 0;

/** ipvsadm's addrport_to_anyname: "host:port", "[v6]:port"; names unless numeric. */
export function addrPort(
  addr: string,
  port: number,
  protocol: Proto | undefined,
  numeric: boolean,
  names: NameTable,
): string {
  const v6 = addr.includes(":");
  const host = numeric ? addr : (names.host(addr) ?? addr);
  const svc = numeric || protocol === undefined ? undefined : names.service(port, protocol);
  const text = v6 ? `[${host}]:${svc ?? port}` : `${host}:${svc ?? port}`;
  return text.slice(0, 59);
}

/** print_largenum: 9 columns, K/M/G/T above 10^8 unless --exact. */
export function largeNum(n: number, exact: boolean): string {
  const i = Math.max(0, Math.trunc(n));
  if (exact) {
    const s = String(i);
    return lpad(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (i < 1e8) return lpad(i, 9);
  if (i < 1e9) return `${lpad(Math.floor(i / 1e3), 8)}K`;
  if (i < 1e11) return `${lpad(Math.floor(i / 1e6), 8)}M`;
  if (i < 1e14) return `${lpad(Math.floor(i / 1e9), 8)}G`;
  return `${lpad(Math.floor(i / 1e12), 8)}T`;
}

function wrapDiff(a: number, b: number): number {
  return (a - b) | 0;
}

function compareWords(a: string, b: string, v6: boolean): number {
  const wa = ipWords(a);
  const wb = ipWords(b);
  const n = v6 ? 4 : 1;
  for (let i = 0; i < n; i++) {
    const r = wrapDiff(wa[i] ?? 0, wb[i] ?? 0);
    if (r !== 0) return r;
  }
  return 0;
}

const PROTO_NUM: Record<Proto, number> = { tcp: 6, udp: 17, sctp: 132 };
const afNum = (v6: boolean): number => (v6 ? 10 : 2);

/** libipvs's ipvs_cmp_services. */
export function compareServices(a: ServiceKey, b: ServiceKey): number {
  const fa = a.kind === "fwmark" ? a.fwmark : 0;
  const fb = b.kind === "fwmark" ? b.fwmark : 0;
  let r = wrapDiff(fa, fb);
  if (r !== 0) return r;
  const va = a.kind === "fwmark" ? a.family === 6 : a.addr.includes(":");
  const vb = b.kind === "fwmark" ? b.family === 6 : b.addr.includes(":");
  r = afNum(va) - afNum(vb);
  if (r !== 0) return r;
  if (a.kind === "fwmark" || b.kind === "fwmark") return 0;
  r = PROTO_NUM[a.protocol] - PROTO_NUM[b.protocol];
  if (r !== 0) return r;
  r = compareWords(a.addr, b.addr, va);
  if (r !== 0) return r;
  return a.port - b.port;
}

/** libipvs's ipvs_cmp_dests. */
export function compareDests(a: DestView, b: DestView): number {
  const r = compareWords(a.spec.addr, b.spec.addr, a.spec.addr.includes(":"));
  if (r !== 0) return r;
  return a.spec.port - b.spec.port;
}

const FWD_NAME: Record<string, string> = {
  masq: "Masq",
  local: "Local",
  tunnel: "Tunnel",
  droute: "Route",
  fullnat: "FullNat",
};
const FWD_SWITCH: Record<string, string> = {
  masq: "-m",
  tunnel: "-i",
  local: "-g",
  droute: "-g",
  fullnat: "--fullnat",
};
const TUN_FLAG_SHORT = ["-c", "+c", "r+c"];
const TUN_FLAG_OPT = ["--tun-nocsum", "--tun-csum", "--tun-remcsum"];

function tunFlagIndex(d: DestView): number {
  return d.spec.tun.remcsum ? 2 : d.spec.tun.csum ? 1 : 0;
}

function tunInfo(d: DestView): string {
  if (d.spec.fwd !== "tunnel") return "n/a";
  const t = d.spec.tun;
  if (t.type === "ipip") return "ipip";
  if (t.type === "gue") return `gue:${t.port}:${TUN_FLAG_SHORT[tunFlagIndex(d)]}`.slice(0, 15);
  return `gre:${TUN_FLAG_SHORT[tunFlagIndex(d)]}`;
}

function title(f: FormatOptions): string {
  const head = pad("Prot LocalAddress:Port", 33);
  const cols = (names: string[], w: number, left: boolean) =>
    names.map((n) => (left ? pad(n, w) : lpad(n, w))).join(" ");
  if (f.stats)
    return `${head} ${cols(["Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"], 8, false)}\n  -> RemoteAddress:Port\n`;
  if (f.rate)
    return `${head} ${cols(["CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"], 8, false)}\n  -> RemoteAddress:Port\n`;
  if (f.thresholds)
    return `${head} ${cols(["Uthreshold", "Lthreshold", "ActiveConn", "InActConn"], 10, true)}\n  -> RemoteAddress:Port\n`;
  if (f.persistentConn)
    return `${head} ${pad("Weight", 9)} ${pad("PersistConn", 11)} ${pad("ActiveConn", 10)} ${pad("InActConn", 10)}\n  -> RemoteAddress:Port\n`;
  if (f.tunInfo)
    return "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n";
  if (f.rule) return "";
  return "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";
}

function netmaskText(prefix: number): string {
  return formatIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** print_service_entry: the service line and its destinations. */
export function formatService(s: ServiceView, f: FormatOptions, names: NameTable): string {
  const k = s.key;
  const v6 = k.kind === "fwmark" ? k.family === 6 : k.addr.includes(":");
  const proto = k.kind === "vip" ? k.protocol : undefined;
  let svcName: string;
  if (k.kind === "fwmark") {
    const m = int32(k.fwmark);
    svcName = f.rule ? `-f ${m}${v6 ? " -6" : ""}` : `FWM  ${m}${v6 ? " IPv6" : ""}`;
  } else {
    const vname = addrPort(k.addr, k.port, k.protocol, f.numeric, names);
    if (f.rule) {
      const opt = k.protocol === "tcp" ? "-t" : k.protocol === "udp" ? "-u" : "--sctp-service";
      svcName = `${opt} ${vname}`;
    } else {
      svcName = `${pad(k.protocol.toUpperCase(), 4)} ${vname}`;
      if (!v6) svcName = svcName.slice(0, 33);
    }
  }
  const o = s.options;
  const flags = schedFlagNames(o.scheduler, schedFlagBits(o.schedFlags)).join(",");
  const maskPart = (word: string): string => {
    if (!v6 && o.netmask !== 32) return ` ${word} ${netmaskText(o.netmask)}`;
    if (v6 && o.netmask !== 128) return ` ${word} ${o.netmask}`;
    return "";
  };
  let out = "";
  if (f.rule) {
    out += `-A ${svcName} -s ${o.scheduler}`;
    if (o.persistent) out += ` -p ${o.timeout}${maskPart("-M")}`;
    if (o.pe) out += ` --pe ${o.pe}`;
    if (o.ops) out += " -o";
    if (flags) out += ` -b ${flags}`;
  } else if (f.stats || f.rate) {
    const c = f.stats
      ? [s.stats.conns, s.stats.inPkts, s.stats.outPkts, s.stats.inBytes, s.stats.outBytes]
      : [s.rates.cps, s.rates.inPps, s.rates.outPps, s.rates.inBps, s.rates.outBps];
    out += pad(svcName, 33) + c.map((n) => largeNum(n, f.exact)).join("");
  } else {
    out += `${svcName} ${o.scheduler}`;
    if (flags) out += ` (${flags})`;
    if (o.persistent) {
      out += ` persistent ${o.timeout}${maskPart("mask")}`;
      if (o.pe) out += ` pe ${o.pe}`;
    }
    if (o.ops) out += " ops";
  }
  out += "\n";

  const dests = f.nosort ? [...s.dests] : [...s.dests].sort(compareDests);
  for (const d of dests) {
    const dv6 = d.spec.addr.includes(":");
    let dname = addrPort(d.spec.addr, d.spec.port, proto, f.numeric, names);
    if (!f.rule && !dv6) dname = dname.slice(0, 28);
    const fwd = d.spec.fwd;
    if (f.rule) {
      let base = `-a ${svcName} -r ${dname} ${FWD_SWITCH[fwd]} -w ${d.spec.weight}`;
      if (f.ruleThresholds && d.spec.uThreshold > 0) base += ` -x ${d.spec.uThreshold}`;
      if (f.ruleThresholds && d.spec.lThreshold > 0) base += ` -y ${d.spec.lThreshold}`;
      if (fwd === "tunnel") {
        const t = d.spec.tun;
        if (t.type === "gre") out += `${base} --tun-type gre ${TUN_FLAG_OPT[tunFlagIndex(d)]}\n`;
        else if (t.type === "gue")
          out += `${base} --tun-type gue --tun-port ${t.port} ${TUN_FLAG_OPT[tunFlagIndex(d)]}\n`;
        else out += `${base} --tun-type ipip\n`;
      } else out += `${base}\n`;
    } else if (f.stats) {
      const c = [d.stats.conns, d.stats.inPkts, d.stats.outPkts, d.stats.inBytes, d.stats.outBytes];
      out += `  -> ${pad(dname, 28)}${c.map((n) => largeNum(n, f.exact)).join("")}\n`;
    } else if (f.rate) {
      const r = d.rates;
      const u = (v: number) => lpad(Math.max(0, Math.trunc(v)), 8);
      out += `  -> ${pad(dname, 28)} ${u(r.cps)} ${u(r.inPps)} ${u(r.outPps)}`;
      out += `${largeNum(r.inBps, f.exact)}${largeNum(r.outBps, f.exact)}\n`;
    } else if (f.thresholds) {
      out += `  -> ${pad(dname, 28)} ${pad(d.spec.uThreshold, 10)} ${pad(d.spec.lThreshold, 10)} ${pad(d.activeConns, 10)} ${pad(d.inactConns, 10)}\n`;
    } else if (f.persistentConn) {
      out += `  -> ${pad(dname, 28)} ${pad(d.spec.weight, 9)} ${pad(d.persistConns, 11)} ${pad(d.activeConns, 10)} ${pad(d.inactConns, 10)}\n`;
    } else if (f.tunInfo) {
      out += `  -> ${pad(dname, 28)} ${pad(FWD_NAME[fwd] ?? "(null)", 7)} ${pad(tunInfo(d), 13)} ${pad(int32(d.spec.weight), 6)} ${pad(d.activeConns, 10)} ${pad(d.inactConns, 10)}\n`;
    } else {
      out += `  -> ${pad(dname, 28)} ${pad(FWD_NAME[fwd] ?? "(null)", 7)} ${pad(int32(d.spec.weight), 6)} ${pad(d.activeConns, 10)} ${pad(d.inactConns, 10)}\n`;
    }
  }
  return out;
}

function sortedServices(snap: Snapshot, f: FormatOptions): ServiceView[] {
  return f.nosort ? [...snap.services] : [...snap.services].sort((a, b) => compareServices(a.key, b.key));
}

/** list_all: `ipvsadm -L` (and -S with rule set). */
export function formatListAll(snap: Snapshot, f: FormatOptions, names: NameTable): string {
  let out = f.rule ? "" : `IP Virtual Server version ${snap.version} (size=${snap.connTableSize})\n`;
  out += title(f);
  for (const s of sortedServices(snap, f)) out += formatService(s, f, names);
  return out;
}

/** list_service: `ipvsadm -L -t VIP:PORT` (no version line). */
export function formatListService(s: ServiceView, f: FormatOptions, names: NameTable): string {
  return title(f) + formatService(s, f, names);
}

/** The vaddr /proc/net/ip_vs_conn shows for a fwmark template: the mark in the first address word. */
function fwmarkAddr(c: ConnView): string {
  return c.caddr.includes(":") ? wordsToIp([c.fwmark >>> 0, 0, 0, 0]) : formatIpv4(c.fwmark >>> 0);
}

/** list_conn: `ipvsadm -L -c`. */
export function formatConns(conns: readonly ConnView[], f: FormatOptions, names: NameTable): string {
  let out = "IPVS connection entries\n";
  if (f.persistentConn)
    out += `pro expire ${pad("state", 11)} ${pad("source", 18)} ${pad("virtual", 18)} ${pad("destination", 18)} ${pad("pe name", 16)} pe_data\n`;
  else out += `pro expire ${pad("state", 11)} ${pad("source", 18)} ${pad("virtual", 18)} destination\n`;
  for (const c of conns) {
    // A fwmark service's template is keyed by protocol IP with the mark where the VIP would be.
    const fwmTemplate = c.template && c.fwmark !== 0 && c.vport === 0 && c.vaddr === fwmarkAddr(c);
    const protoName = fwmTemplate ? "IP" : c.protocol.toUpperCase();
    const proto = fwmTemplate ? undefined : c.protocol;
    const vaddr = c.vaddr;
    const vport = c.vport;
    const secs = Math.floor(c.expiresInMs / 1000);
    const expire = `${String(Math.floor(secs / 60)).padStart(2, "0")}:${String(secs % 60).padStart(2, "0")}`;
    const cname = addrPort(c.caddr, c.cport, proto, f.numeric, names);
    const vname = addrPort(vaddr, vport, proto, f.numeric, names);
    const dname = addrPort(c.daddr, c.dport, proto, f.numeric, names);
    // ipvsadm prints the engine's columns only for an entry that has them (a template keyed by
    // --pe), and with the widths of the destination and pe name columns swapped against its header.
    if (f.persistentConn && c.peName)
      out += `${pad(protoName, 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(cname, 18)} ${pad(vname, 18)} ${pad(dname, 16)} ${pad(c.peName, 18)} ${c.peData ?? ""}\n`;
    else
      out += `${pad(protoName, 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(cname, 18)} ${pad(vname, 18)} ${dname}\n`;
  }
  return out;
}

export function formatTimeout(snap: Snapshot): string {
  const t = snap.timeouts;
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** list_daemon: master first, then backup. */
export function formatDaemons(daemons: readonly SyncDaemonSpec[]): string {
  let out = "";
  for (const state of ["master", "backup"] as const) {
    const d = daemons.find((x) => x.state === state);
    if (!d) continue;
    out += `${state} sync daemon (mcast=${d.mcastIfn}, syncid=${d.syncId}`;
    if (d.syncMaxLen) out += `, maxlen=${d.syncMaxLen}`;
    if (d.mcastGroup) out += `, group=${d.mcastGroup}`;
    if (d.mcastPort) out += `, port=${d.mcastPort}`;
    if (d.mcastTtl) out += `, ttl=${d.mcastTtl}`;
    out += ")\n";
  }
  return out;
}

/** Every address a listing will print, for looking names up beforehand. */
export function addressesOf(snap: Snapshot): Set<string> {
  const out = new Set<string>();
  for (const s of snap.services) {
    if (s.key.kind === "vip") out.add(s.key.addr);
    for (const d of s.dests) out.add(d.spec.addr);
  }
  for (const c of snap.conns ?? []) {
    out.add(c.caddr);
    out.add(c.daddr);
    out.add(c.vaddr);
  }
  return out;
}

/**
 * The table as `ipvsadm -S -n` prints it, with -x/-y added (which -S leaves out and -R reads):
 * what tvsd writes to its --state-file (bin/tvsd.ts hands this to the daemon).
 */
export function formatStateFile(snap: Snapshot): string {
  return formatListAll(
    snap,
    {
      rule: true,
      ruleThresholds: true,
      numeric: true,
      stats: false,
      rate: false,
      thresholds: false,
      persistentConn: false,
      nosort: false,
      exact: false,
      tunInfo: false,
    },
    NO_NAMES,
  );
}
