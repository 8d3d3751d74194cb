// global_defs lvs_sync_daemon (keepalived.conf(5)): which interface and VRRP instance drive the
// IPVS connection-sync daemons, and their options:
//   lvs_sync_daemon IFNAME [inst] INSTANCE [id SYNCID] [maxlen LEN] [port PORT] [ttl TTL] [group ADDR]
// The older form `lvs_sync_daemon IFNAME INSTANCE SYNCID` is read too (keepalived accepts it with a
// warning). keepalived runs the master daemon while the instance is MASTER and the backup daemon
// otherwise; syncid defaults to the instance's virtual_router_id. keepalived logs and ignores a
// bad option; tvs refuses it, naming the word, so that what is accepted always takes effect.

import { parseIp, parseUint } from "../values.ts";
import type { Token } from "./lexer.ts";
import type { StmtReader } from "./reader.ts";
import type { Stmt } from "./tree.ts";

export interface LvsSyncDaemonSpec {
  interface: string;
  instance: string;
  /** Undefined: the instance's virtual_router_id. */
  syncId?: number;
  maxLen?: number;
  port?: number;
  ttl?: number;
  group?: string;
  /** Where it was written (file:line:col for later cross-checks). */
  origin: Token["pos"];
}

function isMulticast(addr: string): boolean {
  if (addr.includes(":")) return addr.toLowerCase().startsWith("ff");
  const first = Number(addr.split(".")[0]);
  return first >= 224 && first <= 239;
}

export function readLvsSyncDaemon(r: StmtReader, s: Stmt): LvsSyncDaemonSpec | undefined {
  const ifTok = r.arg(s, 1, "an interface name");
  if (!ifTok) return undefined;
  if (ifTok.text.length >= 16) {
    r.diags.error(ifTok.pos, `lvs_sync_daemon interface name "${ifTok.text}" is too long (at most 15 characters)`);
    return undefined;
  }
  const spec: { -readonly [K in keyof LvsSyncDaemonSpec]?: LvsSyncDaemonSpec[K] | undefined } & {
    origin: Token["pos"];
    interface: string;
  } = {
    interface: ifTok.text,
    origin: r.pos(s),
  };
  const w = s.words;
  const num = (i: number, key: string, min: number, max: number): number | undefined => {
    const t = w[i + 1];
    if (t === undefined) {
      r.diags.error((w[i] as Token).pos, `lvs_sync_daemon ${key} needs a value (${min}..${max})`);
      return undefined;
    }
    const v = parseUint(t.text, min, max);
    if (v === undefined) r.diags.error(t.pos, `Invalid lvs_sync_daemon ${key} "${t.text}" (expected ${min}..${max})`);
    return v;
  };
  for (let i = 2; i < w.length; i++) {
    const t = w[i] as Token;
    switch (t.text) {
      case "inst": {
        const v = w[i + 1];
        if (v === undefined) r.diags.error(t.pos, "lvs_sync_daemon inst needs a vrrp_instance name");
        else spec.instance = v.text;
        i++;
        continue;
      }
      case "id":
        spec.syncId = num(i, "id", 0, 255);
        i++;
        continue;
      case "maxlen":
        spec.maxLen = num(i, "maxlen", 1, 65535 - 20 - 8);
        i++;
        continue;
      case "port":
        spec.port = num(i, "port", 1, 65535);
        i++;
        continue;
      case "ttl":
        spec.ttl = num(i, "ttl", 1, 255);
        i++;
        continue;
      case "group": {
        const v = w[i + 1];
        const ip = v ? parseIp(v.text) : undefined;
        if (!v) r.diags.error(t.pos, "lvs_sync_daemon group needs a multicast address");
        else if (ip === undefined || !isMulticast(ip))
          r.diags.error(v.pos, `lvs_sync_daemon group "${v.text}" is not a multicast address`);
        else spec.group = ip;
        i++;
        continue;
      }
      default:
        if (i === 2 && spec.instance === undefined) {
          spec.instance = t.text;
          continue;
        }
        if (i === 3 && spec.syncId === undefined) {
          const v = parseUint(t.text, 0, 255);
          if (v === undefined) r.diags.error(t.pos, `Invalid lvs_sync_daemon syncid "${t.text}" (expected 0..255)`);
          else {
            r.diags.warning(t.pos, `Please use keyword "id" before lvs_sync_daemon SYNCID`);
            spec.syncId = v;
          }
          continue;
        }
        r.diags.error(t.pos, `Unknown option "${t.text}" for lvs_sync_daemon`);
    }
  }
  if (spec.instance === undefined) {
    r.diags.error(
      spec.origin,
      "lvs_sync_daemon needs the vrrp_instance whose state drives it (lvs_sync_daemon IFNAME INSTANCE)",
    );
    return undefined;
  }
  const out: LvsSyncDaemonSpec = { interface: spec.interface, instance: spec.instance, origin: spec.origin };
  if (spec.syncId !== undefined) out.syncId = spec.syncId;
  if (spec.maxLen !== undefined) out.maxLen = spec.maxLen;
  if (spec.port !== undefined) out.port = spec.port;
  if (spec.ttl !== undefined) out.ttl = spec.ttl;
  if (spec.group !== undefined) out.group = spec.group;
  return out;
}
