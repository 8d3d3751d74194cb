// VRRP advertisement codec: VRRPv2 (RFC 3768, IPv4 only, authentication none or PASS) and VRRPv3
// (RFC 5798, IPv4 and IPv6). Encoding builds the VRRP message that goes after the IP header (the
// kernel writes the IP header; raw IPv4 sockets hand the header back on receive, see splitIpv4).
//
// Checksums: v2 sums the VRRP message alone. v3 sums an IP pseudo-header too. For IPv6 that is
// what every implementation does. For IPv4, RFC 5798 says "pseudo-header" and keepalived up to
// 2.2.x (what Debian ships) includes it, while RFC 9568 clarifies that IPv4 uses the message alone
// (keepalived's later `v3_checksum_as_v2`). We send the pseudo-header form (keepalived 2.2's) by
// default and accept either form on receive, remembering which one the peer used.
//
// Decoding never throws: every malformed input maps to one of keepalived's error counters
// (packet_len_err, vers_err, invalid_type_rcvd, chk_err, invalid_authtype), so a hostile advert
// is counted and dropped. Per-instance checks (VRID, TTL, authentication, interval and address
// list) are in checkAdvert, which follows keepalived's vrrp_check_packet.

import { formatIpv6Groups, parseIpv4, parseIpv6Groups } from "../core/addr.ts";

export const IPPROTO_VRRP = 112;
export const VRRP_GROUP4 = "224.0.0.18";
export const VRRP_GROUP6 = "ff02::12";
export const VRRP_TTL = 255;
export const VRRP_TYPE_ADVERT = 1;
export const AUTH_NONE = 0;
export const AUTH_PASS = 1;
export const AUTH_AH = 2;

export type VrrpVersion = 2 | 3;
export type Family = 4 | 6;
export type ChecksumForm = "pseudo-header" | "message";

export interface VrrpAdvert {
  version: VrrpVersion;
  type: number;
  vrid: number;
  priority: number;
  /** The addresses carried (IPv4 dotted or IPv6 text, canonical). */
  addrs: string[];
  /** Advertisement interval in ms (v2: whole seconds × 1000; v3: centiseconds × 10). */
  intervalMs: number;
  /** v2 only: authentication type (0 none, 1 PASS, 2 AH). */
  authType: number;
  /** v2 only: the 8 authentication bytes (PASS: the password, NUL padded). */
  authData: Uint8Array;
  checksum: number;
  /** Which checksum form matched (v3 over IPv4 may use either). */
  checksumForm: ChecksumForm;
}

export interface EncodeOptions {
  version: VrrpVersion;
  family: Family;
  vrid: number;
  priority: number;
  intervalMs: number;
  addrs: readonly string[];
  /** v2: PASS with its password (at most 8 bytes). */
  auth?: { type: "PASS"; pass: string } | undefined;
  /** v3: source and destination for the pseudo-header (required for IPv6 and for IPv4 pseudo-header form). */
  src?: string | undefined;
  dst?: string | undefined;
  /** v3 over IPv4: which checksum to send (default "pseudo-header", as keepalived 2.2). */
  v3Ipv4Checksum?: ChecksumForm | undefined;
}

/** Keepalived's receive error counters a malformed or mismatched advert is counted in. */
export type VrrpRxError =
  | "packet_len_err"
  | "vers_err"
  | "invalid_type_rcvd"
  | "chk_err"
  | "ip_ttl_err"
  | "vrid_err"
  | "invalid_authtype"
  | "authtype_mismatch"
  | "auth_failure"
  | "advert_interval_err"
  | "addr_list_err";

export type DecodeResult =
  | { ok: true; advert: VrrpAdvert }
  | { ok: false; error: VrrpRxError; detail: string; vrid?: number };

// ---------------------------------------------------------------------------------------------
// Addresses

export function ipv4Bytes(addr: string): Uint8Array | undefined {
  const v = parseIpv4(addr);
  if (v === undefined) return undefined;
  return new Uint8Array([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff]);
}

export function ipv6Bytes(addr: string): Uint8Array | undefined {
  const pct = addr.indexOf("%");
  const g = parseIpv6Groups(pct === -1 ? addr : addr.slice(0, pct));
  if (!g) return undefined;
  const out = new Uint8Array(16);
  g.forEach((x, i) => {
    out[i * 2] = x >> 8;
    out[i * 2 + 1] = x & 0xff;
  });
  return out;
}

export function formatIpv4(b: Uint8Array, off = 0): string {
  return `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
}

/** RFC 5952 text of 16 bytes. */
export function formatIpv6(b: Uint8Array, off = 0): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(((b[off + i * 2] as number) << 8) | (b[off + i * 2 + 1] as number));
  return formatIpv6Groups(g);
}

function addrBytes(family: Family, addr: string): Uint8Array {
  const b = family === 4 ? ipv4Bytes(addr) : ipv6Bytes(addr);
  if (!b) throw new Error(`Invalid IPv${family} address "${addr}"`);
  return b;
}

// ---------------------------------------------------------------------------------------------
// Checksum

/** Ones-complement sum of 16-bit big-endian words (not folded, not inverted). */
function sum16(data: Uint8Array, start: number, end: number, acc = 0): number {
  let s = acc;
  let i = start;
  for (; i + 1 < end; i += 2) s += ((data[i] as number) << 8) | (data[i + 1] as number);
  if (i < end) s += (data[i] as number) << 8;
  return s;
}

function fold(s: number): number {
  let x = s;
  while (x > 0xffff) x = (x & 0xffff) + Math.floor(x / 0x10000);
  return ~x & 0xffff;
}

/** The pseudo-header's contribution: source, destination, protocol 112 and the VRRP length. */
function pseudoSum(family: Family, src: string, dst: string, length: number): number {
  const s = addrBytes(family, src);
  const d = addrBytes(family, dst);
  let acc = sum16(s, 0, s.length);
  acc = sum16(d, 0, d.length, acc);
  return acc + IPPROTO_VRRP + (length & 0xffff) + (family === 6 ? Math.floor(length / 0x10000) : 0);
}

/** The VRRP checksum of `msg` (its checksum field taken as zero). */
export function vrrpChecksum(
  msg: Uint8Array,
  pseudo?: { family: Family; src: string; dst: string } | undefined,
): number {
  let acc = sum16(msg, 0, 6) + sum16(msg, 8, msg.length);
  if (pseudo) acc += pseudoSum(pseudo.family, pseudo.src, pseudo.dst, msg.length);
  return fold(acc);
}

// ---------------------------------------------------------------------------------------------
// Encode

/** Builds one advertisement (the VRRP message only). Throws on options no config should produce. */
export function encodeAdvert(o: EncodeOptions): Uint8Array {
  if (o.version === 2 && o.family === 6) throw new Error("VRRPv2 carries IPv4 only");
  if (o.addrs.length > 255) throw new Error("A VRRP advert carries at most 255 addresses");
  const alen = o.family === 4 ? 4 : 16;
  const len = 8 + o.addrs.length * alen + (o.version === 2 ? 8 : 0);
  const b = new Uint8Array(len);
  b[0] = (o.version << 4) | VRRP_TYPE_ADVERT;
  b[1] = o.vrid & 0xff;
  b[2] = o.priority & 0xff;
  b[3] = o.addrs.length;
  if (o.version === 2) {
    b[4] = o.auth ? AUTH_PASS : AUTH_NONE;
    b[5] = Math.max(1, Math.min(255, Math.round(o.intervalMs / 1000)));
  } else {
    const cs = Math.max(1, Math.min(4095, Math.round(o.intervalMs / 10)));
    b[4] = (cs >> 8) & 0x0f;
    b[5] = cs & 0xff;
  }
  o.addrs.forEach((a, i) => {
    b.set(addrBytes(o.family, a), 8 + i * alen);
  });
  if (o.version === 2 && o.auth) {
    const pass = new TextEncoder().encode(o.auth.pass).subarray(0, 8);
    b.set(pass, 8 + o.addrs.length * alen);
  }
  let pseudo: { family: Family; src: string; dst: string } | undefined;
  if (o.version === 3 && (o.family === 6 || (o.v3Ipv4Checksum ?? "pseudo-header") === "pseudo-header")) {
    if (o.src === undefined || o.dst === undefined)
      throw new Error("A VRRPv3 checksum needs the source and destination addresses");
    pseudo = { family: o.family, src: o.src, dst: o.dst };
  }
  const c = vrrpChecksum(b, pseudo);
  b[6] = c >> 8;
  b[7] = c & 0xff;
  return b;
}

// ---------------------------------------------------------------------------------------------
// Decode

export interface DecodeContext {
  family: Family;
  /** IP source and destination (for the v3 pseudo-header). */
  src: string;
  dst: string;
  /**
   * The checksum was verified already (an IPv6 raw socket with IPV6_CHECKSUM drops bad ones and
   * gives no destination address to recompute with).
   */
  checksumVerified?: boolean;
}

/** Parses one VRRP message (after the IP header). Never throws. */
export function decodeAdvert(msg: Uint8Array, ctx: DecodeContext): DecodeResult {
  if (msg.length < 8) return { ok: false, error: "packet_len_err", detail: `${msg.length} bytes is below the header` };
  const version = (msg[0] as number) >> 4;
  const type = (msg[0] as number) & 0x0f;
  const vrid = msg[1] as number;
  if (version !== 2 && version !== 3)
    return { ok: false, error: "vers_err", detail: `version ${version} is not 2 or 3`, vrid };
  if (version === 2 && ctx.family === 6) return { ok: false, error: "vers_err", detail: "VRRPv2 over IPv6", vrid };
  if (type !== VRRP_TYPE_ADVERT)
    return { ok: false, error: "invalid_type_rcvd", detail: `type ${type} is not an advertisement`, vrid };
  const count = msg[3] as number;
  const alen = ctx.family === 4 ? 4 : 16;
  const want = 8 + count * alen + (version === 2 ? 8 : 0);
  // keepalived accepts trailing bytes for v2 (some senders pad) but never too few.
  if (msg.length < want)
    return { ok: false, error: "packet_len_err", detail: `${msg.length} bytes for ${count} addresses`, vrid };
  const body = msg.subarray(0, want);
  const got = ((msg[6] as number) << 8) | (msg[7] as number);
  let form: ChecksumForm = "message";
  if (!ctx.checksumVerified) {
    if (version === 2) {
      if (vrrpChecksum(body) !== got) return { ok: false, error: "chk_err", detail: "bad checksum", vrid };
    } else {
      let pseudoOk = false;
      try {
        pseudoOk = vrrpChecksum(body, { family: ctx.family, src: ctx.src, dst: ctx.dst }) === got;
      } catch {
        pseudoOk = false;
      }
      if (pseudoOk) form = "pseudo-header";
      else if (!(ctx.family === 4 && vrrpChecksum(body) === got))
        return { ok: false, error: "chk_err", detail: "bad checksum", vrid };
    }
  } else if (version === 3) form = "pseudo-header";
  const addrs: string[] = [];
  for (let i = 0; i < count; i++)
    addrs.push(ctx.family === 4 ? formatIpv4(msg, 8 + i * 4) : formatIpv6(msg, 8 + i * 16));
  let authType = AUTH_NONE;
  let authData = new Uint8Array(0);
  let intervalMs: number;
  if (version === 2) {
    authType = msg[4] as number;
    intervalMs = (msg[5] as number) * 1000;
    authData = msg.slice(8 + count * 4, 8 + count * 4 + 8);
  } else {
    intervalMs = ((((msg[4] as number) & 0x0f) << 8) | (msg[5] as number)) * 10;
  }
  return {
    ok: true,
    advert: {
      version,
      type,
      vrid,
      priority: msg[2] as number,
      addrs,
      intervalMs,
      authType,
      authData,
      checksum: got,
      checksumForm: form,
    },
  };
}

/** An IPv4 datagram as a raw IPv4 socket delivers it (header included). */
export interface Ipv4Datagram {
  ttl: number;
  protocol: number;
  src: string;
  dst: string;
  payload: Uint8Array;
}

/** Splits a received IPv4 datagram; undefined when the header is malformed or truncated. */
export function splitIpv4(buf: Uint8Array): Ipv4Datagram | undefined {
  if (buf.length < 20 || (buf[0] as number) >> 4 !== 4) return undefined;
  const ihl = ((buf[0] as number) & 0x0f) * 4;
  const total = ((buf[2] as number) << 8) | (buf[3] as number);
  if (ihl < 20 || buf.length < ihl) return undefined;
  // The kernel may report the total length in host order on some paths; trust the buffer's length.
  const end = total >= ihl && total <= buf.length ? total : buf.length;
  return {
    ttl: buf[8] as number,
    protocol: buf[9] as number,
    src: formatIpv4(buf, 12),
    dst: formatIpv4(buf, 16),
    payload: buf.subarray(ihl, end),
  };
}

// ---------------------------------------------------------------------------------------------
// Per-instance checks (keepalived's vrrp_check_packet)

export interface InstanceView {
  version: VrrpVersion;
  family: Family;
  vrid: number;
  /** Configured advert interval in ms. */
  intervalMs: number;
  /** The addresses this instance advertises (virtual_ipaddress, not _excluded), canonical. */
  addrs: readonly string[];
  auth?: { type: "PASS"; pass: string } | undefined;
  /** Check the TTL / hop limit (multicast adverts must arrive with 255). */
  checkTtl: boolean;
}

export interface CheckResult {
  /** Act on the advert (false: counted in `error` and dropped). */
  accept: boolean;
  /** The counter to bump, also when accepted (v3 interval mismatch is counted and accepted). */
  error?: VrrpRxError;
  detail?: string;
}

function sameAddrs(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((x) => set.has(x));
}

/**
 * keepalived's per-instance checks, in its order: TTL on multicast, version, authentication
 * (v2), advert interval (v2 drops a mismatch, which makes two masters; v3 counts it and accepts,
 * adopting the master's interval), then the address list (keepalived ≤ 2.3.2, 2.2.7 included,
 * drops an advert whose addresses differ from its own and counts addr_list_err).
 */
export function checkAdvert(ad: VrrpAdvert, ttl: number, inst: InstanceView): CheckResult {
  if (inst.checkTtl && ttl !== VRRP_TTL)
    return { accept: false, error: "ip_ttl_err", detail: `TTL/hop limit ${ttl}, expected 255` };
  if (ad.version !== inst.version)
    return { accept: false, error: "vers_err", detail: `version ${ad.version}, configured ${inst.version}` };
  if (ad.version === 2) {
    if (ad.authType > AUTH_AH)
      return { accept: false, error: "invalid_authtype", detail: `authentication type ${ad.authType}` };
    const want = inst.auth ? AUTH_PASS : AUTH_NONE;
    if (ad.authType !== want)
      return {
        accept: false,
        error: "authtype_mismatch",
        detail: `authentication type ${ad.authType}, configured ${want}`,
      };
    if (inst.auth) {
      const pass = new Uint8Array(8);
      pass.set(new TextEncoder().encode(inst.auth.pass).subarray(0, 8));
      if (!pass.every((v, i) => ad.authData[i] === v))
        return { accept: false, error: "auth_failure", detail: "authentication password mismatch" };
    }
  }
  if (ad.priority !== 0) {
    if (ad.version === 2 && ad.intervalMs !== Math.max(1000, Math.round(inst.intervalMs / 1000) * 1000))
      return {
        accept: false,
        error: "advert_interval_err",
        detail: `advert interval ${ad.intervalMs / 1000}s, configured ${inst.intervalMs / 1000}s`,
      };
    if (!sameAddrs(ad.addrs, inst.addrs))
      return {
        accept: false,
        error: "addr_list_err",
        detail: `addresses [${ad.addrs.join(" ")}] differ from [${inst.addrs.join(" ")}]`,
      };
    if (ad.version === 3 && ad.intervalMs !== inst.intervalMs)
      return {
        accept: true,
        error: "advert_interval_err",
        detail: `advert interval ${ad.intervalMs / 1000}s, configured ${inst.intervalMs / 1000}s`,
      };
  }
  return { accept: true };
}
