// keepalived checker blocks (TCP_CHECK, HTTP_GET, SSL_GET, SMTP_CHECK, DNS_CHECK, MISC_CHECK,
// UDP_CHECK, PING_CHECK, FILE_CHECK) → CheckerSpec. Timing options are inherited the way
// keepalived.conf(5) says: the virtual_server's setting is the default for its real servers and
// the real server's the default for its checkers; what none sets gets keepalived's per-type
// default (retry 3 and delay_before_retry = delay_loop for DNS_CHECK, retry 0 for MISC_CHECK, ...).

import { MAX_PORT } from "../../core/addr.ts";
import {
  type CheckerCommon,
  type CheckerSpec,
  type CheckerType,
  checkerCommon,
  DEFAULT_SMTP_HELO,
  DEFAULT_STATUS_CODES,
  DEFAULT_UDP_MAX_REPLY,
  DNS_QUERY_TYPES,
  type DnsQueryType,
  type HttpProtocol,
  type StatusRange,
  type UrlSpec,
} from "../../health/checker-spec.ts";
import type { SourcePos } from "../diagnostics.ts";
import { parsePort, parseUint } from "../values.ts";
import type { StmtReader } from "./reader.ts";
import type { Stmt } from "./tree.ts";

/** Timing and connection options explicitly set at some level (virtual server, real server, checker). */
export type CommonOverrides = Partial<CheckerCommon>;

/** A FILE_CHECK's reference to a top-level track_file block, resolved after the whole file is read. */
export interface PendingFileRef {
  spec: { file: string };
  name: string;
  pos: SourcePos;
}

export const CHECKER_KEYWORDS = new Set<string>([
  "TCP_CHECK",
  "HTTP_GET",
  "SSL_GET",
  "SMTP_CHECK",
  "DNS_CHECK",
  "MISC_CHECK",
  "UDP_CHECK",
  "PING_CHECK",
  "FILE_CHECK",
  "BFD_CHECK",
]);

/**
 * Applies a timing/connection keyword shared by virtual_server, real_server and checkers to `out`.
 * Returns false when the keyword is not one of them.
 */
export function readCommonOption(
  r: StmtReader,
  s: Stmt,
  out: CommonOverrides,
  level: "vs" | "rs" | "checker",
): boolean {
  switch (r.kw(s)) {
    case "connect_timeout": {
      const v = r.timerMs(s, 1);
      if (v !== undefined) out.connectTimeoutMs = v;
      return true;
    }
    case "retry":
    case "nb_get_retry": {
      // keepalived: at least 1 on virtual and real servers, 0 allowed on a checker.
      const v = r.uint(s, level === "checker" ? 0 : 1, 2 ** 32 - 1);
      if (v !== undefined) out.retry = v;
      return true;
    }
    case "delay_before_retry": {
      const v = r.timerMs(s);
      if (v !== undefined) out.delayBeforeRetryMs = v;
      return true;
    }
    case "warmup": {
      const v = r.timerMs(s);
      if (v !== undefined) out.warmupMs = v;
      return true;
    }
    case "delay_loop": {
      const v = r.timerMs(s, 1);
      if (v !== undefined) out.delayLoopMs = v;
      return true;
    }
    case "alpha": {
      if (level === "vs") {
        r.bare(s);
        out.alpha = true;
        return true;
      }
      const v = r.flag(s);
      if (v !== undefined) out.alpha = v;
      return true;
    }
  }
  if (level !== "checker") return false;
  switch (r.kw(s)) {
    case "connect_ip":
    case "bindto": {
      const v = r.ip(s);
      if (v !== undefined) {
        if (r.kw(s) === "connect_ip") out.connectIp = v;
        else out.bindTo = v;
      }
      r.noExtra(s, 1);
      return true;
    }
    case "connect_port":
    case "bind_port": {
      const t = r.value(s, "a port (1..65535)");
      if (!t) return true;
      const v = parseUint(t.text, 1, MAX_PORT);
      if (v === undefined) r.diags.error(t.pos, `Invalid ${r.kw(s)} "${t.text}" (expected a port 1..65535)`);
      else if (r.kw(s) === "connect_port") out.connectPort = v;
      else out.bindPort = v;
      return true;
    }
    case "log_all_failures":
      r.flag(s);
      return true;
    case "bind_if":
    case "fwmark":
      r.unsupported(s, "a checker");
      return true;
  }
  return false;
}

function readStatusCodes(r: StmtReader, s: Stmt): StatusRange[] | undefined {
  if (!r.arg(s, 1, "a status code or range")) return undefined;
  const out: StatusRange[] = [];
  for (const t of s.words.slice(1)) {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(t.text);
    const from = m ? Number(m[1]) : Number.NaN;
    const to = m?.[2] !== undefined ? Number(m[2]) : from;
    if (!m || from < 100 || to > 599 || to < from) {
      r.diags.error(t.pos, `Invalid status_code "${t.text}" (expected a code 100..599 or a range like 200-299)`);
      return undefined;
    }
    out.push({ from, to });
  }
  return out;
}

function readUrl(r: StmtReader, s: Stmt): UrlSpec | undefined {
  const stmts = r.block(s);
  if (!stmts) return undefined;
  let path: string | undefined;
  const url: Partial<UrlSpec> = {};
  for (const u of stmts) {
    switch (r.kw(u)) {
      case "path":
        path = r.str(u, "a path");
        break;
      case "digest": {
        const t = r.value(u, "an MD5 digest");
        if (!t) break;
        if (!/^[0-9a-fA-F]{32}$/.test(t.text))
          r.diags.error(t.pos, `Invalid digest "${t.text}" (expected 32 hexadecimal digits of an MD5 sum)`);
        else url.digest = t.text.toLowerCase();
        break;
      }
      case "status_code": {
        const v = readStatusCodes(r, u);
        if (v) url.statusCodes = v;
        break;
      }
      case "virtualhost": {
        const v = r.str(u, "a host name");
        if (v !== undefined) url.virtualhost = v;
        break;
      }
      case "regex": {
        const t = r.value(u, "a regular expression");
        if (!t) break;
        try {
          new RegExp(t.text);
          url.bodyRegex = t.text;
        } catch {
          r.diags.error(t.pos, `Invalid regex "${t.text}" (not a regular expression tvs can run)`);
        }
        break;
      }
      case "regex_no_match":
      case "regex_options":
      case "regex_stack":
      case "regex_min_offset":
      case "regex_max_offset":
        r.unsupported(u, "url");
        break;
      case "tls_compliant":
        break;
      default:
        r.unknown(u, "url");
    }
    r.noBlock(u);
  }
  if (path === undefined) {
    r.diags.error(r.pos(s), `url block has no path`);
    return undefined;
  }
  return { path, statusCodes: url.statusCodes ?? DEFAULT_STATUS_CODES.map((c) => ({ ...c })), ...url };
}

/** "Ab12f 3" → "ab120f03": keepalived's free-form hex, pairs from the left of each word. */
function readHex(r: StmtReader, s: Stmt, from: number, allowWildcard: boolean): string | undefined {
  let out = "";
  for (const t of s.words.slice(from)) {
    const ok = allowWildcard ? /^[0-9a-fA-FxX]+$/ : /^[0-9a-fA-F]+$/;
    if (!ok.test(t.text)) {
      r.diags.error(t.pos, `Invalid hexadecimal data "${t.text}" for ${r.kw(s)}`);
      return undefined;
    }
    for (let i = 0; i < t.text.length; i += 2) {
      const pair = t.text.slice(i, i + 2);
      out += (pair.length === 1 ? `0${pair}` : pair).toLowerCase();
    }
  }
  return out;
}

/**
 * Reads one checker block. `vs` and `rs` are the options set at the virtual and real server levels,
 * `omega` the virtual server's omega. Returns undefined when the block is unusable (errors reported).
 */
export function readChecker(
  r: StmtReader,
  s: Stmt,
  vs: CommonOverrides,
  rs: CommonOverrides,
  fileRefs: PendingFileRef[],
  /** The real server's virtualhost, else the virtual server's (HTTP_GET/SSL_GET default Host). */
  inheritedVirtualhost?: string,
): CheckerSpec | undefined {
  const kw = r.kw(s);
  if (kw === "BFD_CHECK") {
    r.unsupported(s, "real_server");
    return undefined;
  }
  const type = kw as CheckerType;
  r.noExtra(s, 0);
  const stmts = r.block(s) ?? [];
  const own: CommonOverrides = {};
  const where = kw;
  // Per-type state.
  const urls: UrlSpec[] = [];
  let urlBlocks = 0;
  let virtualhost: string | undefined;
  let httpProtocol: HttpProtocol = "1.0";
  let sni: string | undefined;
  let enableSni = false;
  let heloName = DEFAULT_SMTP_HELO;
  let queryType: DnsQueryType = "SOA";
  let dnsName = "";
  let miscPath: string | undefined;
  let miscTimeoutMs: number | undefined;
  let miscDynamic = false;
  let user: string | undefined;
  let group: string | undefined;
  let payloadHex: string | undefined;
  let requireReply = false;
  let replyHex: string | undefined;
  let minReply = 0;
  let maxReply = DEFAULT_UDP_MAX_REPLY;
  let trackFile: { name: string; pos: SourcePos } | undefined;
  let fileWeight = 1;
  let reverse = false;

  for (const c of stmts) {
    const k = r.kw(c);
    if (type !== "FILE_CHECK" && readCommonOption(r, c, own, "checker")) {
      r.noBlock(c);
      continue;
    }
    let known = true;
    if (type === "HTTP_GET" || type === "SSL_GET") {
      switch (k) {
        case "url": {
          urlBlocks++;
          const u = readUrl(r, c);
          if (u) urls.push(u);
          continue;
        }
        case "virtualhost":
          virtualhost = r.str(c, "a host name") ?? virtualhost;
          break;
        case "http_protocol": {
          const t = r.value(c, "1.0, 1.0C or 1.1");
          if (!t) break;
          const p = t.text.toUpperCase();
          if (p === "1.0" || p === "1.0C" || p === "1.1") httpProtocol = p;
          else r.diags.error(t.pos, `Invalid http_protocol "${t.text}" (expected 1.0, 1.0C or 1.1)`);
          break;
        }
        case "enable_sni":
          enableSni = r.flag(c) ?? enableSni;
          break;
        case "sni_name":
          sni = r.str(c, "a server name") ?? sni;
          break;
        case "fast_recovery":
          r.flag(c);
          break;
        case "tls_compliant":
          break;
        default:
          known = false;
      }
    } else if (type === "SMTP_CHECK") {
      if (k === "helo_name") heloName = r.str(c, "a host name") ?? heloName;
      else if (k === "host") r.unsupported(c, where);
      else known = false;
    } else if (type === "DNS_CHECK") {
      if (k === "type") {
        const t = r.value(c, "a query type");
        if (t) {
          const q = t.text.toUpperCase() as DnsQueryType;
          if ((DNS_QUERY_TYPES as readonly string[]).includes(q)) queryType = q;
          else r.diags.error(t.pos, `Invalid DNS_CHECK type "${t.text}" (expected ${DNS_QUERY_TYPES.join(", ")})`);
        }
      } else if (k === "name") dnsName = r.str(c, "a domain name") ?? dnsName;
      else known = false;
    } else if (type === "MISC_CHECK") {
      if (k === "misc_path") miscPath = r.rest(c, 1, "a command");
      else if (k === "misc_timeout") miscTimeoutMs = r.timerMs(c, 1) ?? miscTimeoutMs;
      else if (k === "misc_dynamic") miscDynamic = r.flag(c) ?? miscDynamic;
      else if (k === "user") {
        user = r.arg(c, 1, "a user name")?.text;
        group = c.words[2]?.text.replace(/^:/, "");
        r.noExtra(c, 2);
      } else known = false;
    } else if (type === "UDP_CHECK") {
      if (k === "payload") {
        if (r.arg(c, 1, "hexadecimal data")) payloadHex = readHex(r, c, 1, false) ?? payloadHex;
      } else if (k === "require_reply") {
        requireReply = true;
        if (c.words.length > 1) {
          const h = readHex(r, c, 1, true);
          if (h?.includes("x")) r.diags.error(r.pos(c), `require_reply wildcards ("x") are not supported by tvs`);
          else if (h !== undefined) replyHex = h;
        }
      } else if (k === "min_reply_length") minReply = r.uint(c, 0, 65535) ?? minReply;
      else if (k === "max_reply_length") maxReply = r.uint(c, 0, 65535) ?? maxReply;
      else known = false;
    } else if (type === "FILE_CHECK") {
      if (k === "track_file") {
        const t = r.value(c, "a track_file name");
        if (t) trackFile = { name: t.text, pos: t.pos };
      } else if (k === "weight") {
        const t = r.arg(c, 1, "a weight");
        if (t) {
          const v = /^[-+]?\d+$/.test(t.text) ? Number(t.text) : Number.NaN;
          if (!Number.isSafeInteger(v) || Math.abs(v) > 2147483647)
            r.diags.error(t.pos, `Invalid weight "${t.text}" for FILE_CHECK (expected -2147483647..2147483647)`);
          else fileWeight = v;
        }
        const rev = c.words[2];
        if (rev) {
          if (rev.text === "reverse") reverse = true;
          else r.diags.error(rev.pos, `Invalid word "${rev.text}" after FILE_CHECK weight (expected reverse)`);
        }
        r.noExtra(c, 2);
      } else if (k === "dynamic") r.bare(c);
      else known = false;
    } else known = false;
    if (!known) r.unknown(c, where);
    r.noBlock(c);
  }

  const common = checkerCommon(type, { ...vs, ...rs, ...own });
  const pos = r.pos(s);
  switch (type) {
    case "TCP_CHECK":
    case "PING_CHECK":
      return { type, ...common };
    case "HTTP_GET":
    case "SSL_GET": {
      if (urls.length === 0) {
        // A url block with its own error has been reported already.
        if (urlBlocks === 0) r.diags.error(pos, `${type} has no url block`);
        return undefined;
      }
      const spec: CheckerSpec = { type, ...common, urls, httpProtocol, verifyCert: false };
      virtualhost ??= inheritedVirtualhost;
      if (virtualhost !== undefined) spec.virtualhost = virtualhost;
      if (type === "SSL_GET") {
        const name = sni ?? (enableSni ? virtualhost : undefined);
        if (name !== undefined) spec.sni = name;
      } else if (sni !== undefined || enableSni) r.diags.warning(pos, "SNI options only apply to SSL_GET - ignored");
      return spec;
    }
    case "SMTP_CHECK":
      return { type, ...common, heloName };
    case "DNS_CHECK":
      return { type, ...common, queryType, name: dnsName };
    case "MISC_CHECK": {
      if (miscPath === undefined) {
        r.diags.error(pos, "MISC_CHECK has no misc_path");
        return undefined;
      }
      const spec: CheckerSpec = {
        type,
        ...common,
        path: miscPath,
        timeoutMs: miscTimeoutMs ?? common.delayLoopMs,
        dynamic: miscDynamic,
      };
      if (user !== undefined) spec.user = user;
      if (group !== undefined && group !== "") spec.group = group;
      return spec;
    }
    case "UDP_CHECK": {
      if (minReply > maxReply) r.diags.error(pos, `min_reply_length ${minReply} exceeds max_reply_length ${maxReply}`);
      const spec: CheckerSpec = {
        type,
        ...common,
        requireReply,
        minReplyLength: minReply,
        maxReplyLength: maxReply,
      };
      if (payloadHex !== undefined) spec.payloadHex = payloadHex;
      if (replyHex !== undefined) spec.replyHex = replyHex;
      return spec;
    }
    case "FILE_CHECK": {
      if (!trackFile) {
        r.diags.error(pos, "FILE_CHECK has no track_file");
        return undefined;
      }
      const spec: CheckerSpec = { type, ...common, file: "", weight: fileWeight, reverse };
      fileRefs.push({ spec, name: trackFile.name, pos: trackFile.pos });
      return spec;
    }
  }
}

/** A port word ("80"); undefined and an error when malformed. Port 0 means "not given". */
export function readPortWord(r: StmtReader, text: string, pos: SourcePos): number | undefined {
  const v = parsePort(text);
  if (v === undefined) r.diags.error(pos, `Invalid port "${text}" (expected 0..65535)`);
  return v;
}
