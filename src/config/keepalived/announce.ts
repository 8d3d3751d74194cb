// The tvs-specific top-level block `tvs_announce { ... }` of keepalived.conf: announce this
// director's VIPs over BGP through a BIRD 2 instance tvsd runs (docs/ecmp.md). keepalived itself
// does not know the block; tvs reads it and refuses any word it does not know, so whatever is
// accepted takes effect:
//
//   tvs_announce {
//       daemon bird                       # the only one supported
//       bgp_asn 65001                     # this director's AS (required)
//       router_id 10.0.1.2                # BGP router id, an IPv4 address (required)
//       bgp_peer 10.0.1.1 as 65000 [port 179] [bfd]   # one line per peer (at least one)
//       hold_time 3                       # seconds, 3..65535 (default 3)
//       bfd_interval 100                  # milliseconds, 10..10000 (default 100)
//       bfd_multiplier 3                  # 1..255 (default 3)
//       bird_path /usr/sbin/bird          # default: bird on PATH
//       birdc_path /usr/sbin/birdc        # default: birdc on PATH
//       run_dir /run/tvs/bird             # generated bird.conf, control socket, log
//                                         # (default: bird/ beside tvsd's control socket)
//       backup_addr 10.0.8.3 [10.0.8.4 ...]  # other directors' FULLNAT local addresses, announced
//                                         # with this AS prepended (taken over when their owner dies)
//   }

import type { SourcePos } from "../diagnostics.ts";
import { parseIp, parseUint } from "../values.ts";
import type { Token } from "./lexer.ts";
import type { StmtReader } from "./reader.ts";
import type { Stmt } from "./tree.ts";

export interface AnnounceConfigPeer {
  addr: string;
  asn: number;
  port?: number;
  bfd?: boolean;
}

/** The block as read: only what was written; tvsd applies the defaults (src/announce/spec.ts). */
export interface AnnounceConfig {
  daemon: "bird";
  asn?: number;
  routerId?: string;
  peers: AnnounceConfigPeer[];
  holdTimeS?: number;
  bfdIntervalMs?: number;
  bfdMultiplier?: number;
  birdPath?: string;
  birdcPath?: string;
  runDir?: string;
  /** Other directors' FULLNAT local addresses to announce as a backup (docs/ecmp.md). */
  backupAddrs?: string[];
  /** Where each of backupAddrs was written (the word), in the same order. */
  backupAddrOrigins?: SourcePos[];
  origin: SourcePos;
}

const MAX_ASN = 4294967295;

function readPeer(r: StmtReader, s: Stmt): AnnounceConfigPeer | undefined {
  const addr = r.ip(s, 1);
  const w = s.words;
  let asn: number | undefined;
  let port: number | undefined;
  let bfd = false;
  for (let i = 2; i < w.length; i++) {
    const t = w[i]!;
    if (t.text === "bfd") bfd = true;
    else if (t.text === "as" || t.text === "port") {
      const v = w[i + 1];
      const max = t.text === "as" ? MAX_ASN : 65535;
      const n = v ? parseUint(v.text, 1, max) : undefined;
      if (v === undefined) r.diags.error(t.pos, `bgp_peer ${t.text} needs a value (1..${max})`);
      else if (n === undefined) r.diags.error(v.pos, `Invalid bgp_peer ${t.text} "${v.text}" (expected 1..${max})`);
      else if (t.text === "as") asn = n;
      else port = n;
      i++;
    } else r.diags.error(t.pos, `Unknown option "${t.text}" for bgp_peer (expected as, port or bfd)`);
  }
  if (asn === undefined) r.diags.error(r.pos(s), "bgp_peer needs the peer's AS: bgp_peer ADDR as ASN");
  if (addr === undefined || asn === undefined) return undefined;
  return { addr, asn, ...(port !== undefined ? { port } : {}), ...(bfd ? { bfd } : {}) };
}

export function readAnnounce(r: StmtReader, s: Stmt): AnnounceConfig | undefined {
  const stmts = r.block(s);
  if (stmts === undefined) return undefined;
  const out: AnnounceConfig = { daemon: "bird", peers: [], origin: r.pos(s) };
  for (const g of stmts) {
    const k = r.kw(g);
    switch (k) {
      case "daemon": {
        const t = r.value(g, "the BGP daemon (bird)");
        if (t && t.text !== "bird")
          r.diags.error(t.pos, `Unsupported tvs_announce daemon "${t.text}" (tvs drives BIRD 2: daemon bird)`);
        break;
      }
      case "bgp_asn": {
        const v = r.uint(g, 1, MAX_ASN, "an AS number");
        if (v !== undefined) out.asn = v;
        break;
      }
      case "router_id": {
        const t = r.value(g, "an IPv4 router id");
        if (t) {
          const ip = parseIp(t.text);
          if (ip === undefined || ip.includes(":"))
            r.diags.error(t.pos, `Invalid tvs_announce router_id "${t.text}" (expected an IPv4 address)`);
          else out.routerId = ip;
        }
        break;
      }
      case "bgp_peer": {
        const p = readPeer(r, g);
        if (p) out.peers.push(p);
        break;
      }
      case "hold_time": {
        const v = r.uint(g, 3, 65535, "seconds");
        if (v !== undefined) out.holdTimeS = v;
        break;
      }
      case "bfd_interval": {
        const v = r.uint(g, 10, 10000, "milliseconds");
        if (v !== undefined) out.bfdIntervalMs = v;
        break;
      }
      case "bfd_multiplier": {
        const v = r.uint(g, 1, 255);
        if (v !== undefined) out.bfdMultiplier = v;
        break;
      }
      case "bird_path":
      case "birdc_path":
      case "run_dir": {
        const v = r.str(g, "a path");
        if (v !== undefined) out[k === "bird_path" ? "birdPath" : k === "birdc_path" ? "birdcPath" : "runDir"] = v;
        break;
      }
      case "backup_addr": {
        if (g.words.length < 2) r.diags.error(r.pos(g), "backup_addr needs at least one address");
        for (let i = 1; i < g.words.length; i++) {
          const a = r.ip(g, i);
          if (a === undefined) continue;
          (out.backupAddrs ??= []).push(a);
          (out.backupAddrOrigins ??= []).push((g.words[i] as Token).pos);
        }
        break;
      }
      default:
        r.diags.error(r.pos(g), `Unknown keyword "${k}" in tvs_announce`);
    }
  }
  if (out.asn === undefined) r.diags.error(out.origin, "tvs_announce needs bgp_asn");
  if (out.routerId === undefined) r.diags.error(out.origin, "tvs_announce needs router_id (an IPv4 address)");
  if (out.peers.length === 0) r.diags.error(out.origin, "tvs_announce needs at least one bgp_peer");
  return out;
}

/**
 * The backup_addr words naming one of this director's own FULLNAT local addresses (tvsd's
 * --local-addrs), each with where it was written. Both in one list would be two routes for one
 * prefix in BIRD, the prepended backup one competing with the director's own, so tvsd refuses the
 * configuration (as it refuses --bgp-backup-addr in --local-addrs) and `tvs check-config
 * --local-addrs` reports them.
 */
export function ownBackupAddrs(
  c: AnnounceConfig,
  localAddrs: readonly string[],
): { addr: string; origin: SourcePos; message: string }[] {
  const own = new Set(localAddrs.map((l) => parseIp(l) ?? l));
  const out: { addr: string; origin: SourcePos; message: string }[] = [];
  (c.backupAddrs ?? []).forEach((addr, i) => {
    if (!own.has(addr)) return;
    out.push({
      addr,
      origin: c.backupAddrOrigins?.[i] ?? c.origin,
      message: `backup_addr ${addr} is one of this director's --local-addrs (backup addresses are other directors' local addresses)`,
    });
  });
  return out;
}
