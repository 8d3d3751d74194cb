// The IPVS connection-sync wire format (the kernel's net/netfilter/ipvs/ip_vs_sync.c), pure:
// bytes in, records out, and a message writer that fills a datagram the way the kernel's sync
// buffer does. No sockets, no timers, no core tables: master.ts decides what to send and
// backup.ts what to do with what arrives.
//
// A v1 message is an 8-byte header (reserved 0, syncid, size be16, record count, version 1,
// spare 0) followed by connection records, each 4-byte aligned from the message start. A record is
// a fixed part (36 bytes for IPv4, 72 for IPv6: type, protocol, version<<12|size, flags be32,
// state be16, cport, vport, dport, fwmark be32, timeout be32 in seconds, then caddr, vaddr, daddr)
// followed by options (type byte, length byte, data): SEQ_DATA (1, 24 bytes: in and out
// sequence adjustments), PE_DATA (2, up to 255 bytes), PE_NAME (3, up to 16 bytes). An option
// type with bit 0x40 set is optional: a receiver that does not know it skips it; an unknown type
// without it makes the receiver skip the whole record.
//
// A v0 message (what kernels before 2.6.37 send, and newer ones with sync_version=0) is a 4-byte
// header (count, syncid, size) followed by 24-byte IPv4 records with 16-bit flags and no timeout
// or fwmark; records with a sequence flag carry 24 more bytes. Any message whose header is not a
// clean v1 header is read as v0, as the kernel does. We read v0; we send only v1.
//
// tvs extension (FULLNAT). The kernel has no FULLNAT, so its records cannot say which local
// address and port the director used towards the real server. tvs carries them in an option of
// type TVS_OPT_LOCAL (0x74: the optional bit 0x40 with code 0x34, which the kernel does not
// define): 6 bytes (IPv4 address, port) or 18 bytes (IPv6 address, port), network order. A kernel
// backup skips the option and reads the rest of the record as usual; the forwarding bits of a
// FULLNAT record say MASQ, the nearest kernel method (a backup binds the method of its own
// destination anyway).
//
// What the receiver checks, and how it fails, follows the kernel: a message shorter than 4 bytes
// or whose size field differs from its length is dropped whole, as is one for another syncid (when
// ours is not 0); a record that overruns the message, has an unknown record version or type, or a
// malformed option ends the message (records before it stand); a record with an unknown mandatory
// option is skipped alone. Protocol and state are checked by backup.ts, which knows the state
// tables.

import { formatIpv4, formatIpv6Groups, parseIpv4, parseIpv6Groups } from "../core/addr.ts";

export const SYNC_MCAST_GROUP = "224.0.0.81";
export const SYNC_MCAST_PORT = 8848;
export const SYNC_PROTO_VER = 1;

export const MESSAGE_V1_HEADER_SIZE = 8;
export const MESSAGE_V0_HEADER_SIZE = 4;
export const CONN_V4_SIZE = 36;
export const CONN_V6_SIZE = 72;
export const CONN_V0_SIZE = 24;
/** struct ip_vs_sync_conn_options: two struct ip_vs_seq of three 32-bit words. */
export const SEQ_OPTIONS_SIZE = 24;
/** IP_VS_PEDATA_MAXLEN and IP_VS_PENAME_MAXLEN. */
export const PE_DATA_MAXLEN = 255;
export const PE_NAME_MAXLEN = 16;
/** The count field is one byte: no message carries more records. */
export const MAX_CONNS_PER_MESSAGE = 255;

/** IP_VS_CONN_F_* as they travel (uapi/linux/ip_vs.h and include/net/ip_vs.h). */
export const F_FWD_MASK = 0x0007;
export const F_MASQ = 0x0000;
export const F_LOCALNODE = 0x0001;
export const F_TUNNEL = 0x0002;
export const F_DROUTE = 0x0003;
export const F_BYPASS = 0x0004;
export const F_SYNC = 0x0020;
export const F_HASHED = 0x0040;
export const F_NOOUTPUT = 0x0080;
export const F_INACTIVE = 0x0100;
export const F_OUT_SEQ = 0x0200;
export const F_IN_SEQ = 0x0400;
export const F_SEQ_MASK = 0x0600;
export const F_NO_CPORT = 0x0800;
export const F_TEMPLATE = 0x1000;
export const F_ONE_PACKET = 0x2000;
/** Flags a backup takes from a new record (IP_VS_CONN_F_BACKUP_MASK). */
export const F_BACKUP_MASK = F_FWD_MASK | F_NOOUTPUT | F_INACTIVE | F_SEQ_MASK | F_NO_CPORT | F_TEMPLATE;
/** Flags a backup updates on an existing entry (IP_VS_CONN_F_BACKUP_UPD_MASK). */
export const F_BACKUP_UPD_MASK = F_INACTIVE | F_SEQ_MASK;

export const OPT_SEQ_DATA = 1;
export const OPT_PE_DATA = 2;
export const OPT_PE_NAME = 3;
/** Bit of an option type that makes it optional (IPVS_OPT_F_PARAM). */
export const OPT_F_OPTIONAL = 0x40;
/** tvs: FULLNAT local address and port (see the header). */
export const TVS_OPT_LOCAL = OPT_F_OPTIONAL | 0x34;

const STYPE_F_INET6 = 1;
const SVER_SHIFT = 12;
const SVER_MASK = 0x0fff;

/** struct ip_vs_seq. */
export interface SeqData {
  initSeq: number;
  delta: number;
  previousDelta: number;
}

/** One connection record as it travels (either version). */
export interface SyncConn {
  family: 4 | 6;
  /** IP protocol number (6 TCP, 17 UDP, 132 SCTP; 0 for a fwmark service's template). */
  protocol: number;
  /** IP_VS_CONN_F_* as sent (v0: 16 bits). */
  flags: number;
  state: number;
  cport: number;
  vport: number;
  dport: number;
  /** Firewall mark (v1 only; 0 in v0). */
  fwmark: number;
  /** Seconds (v1 only; 0 in v0: the receiver uses the state's timeout). */
  timeoutS: number;
  /** Canonical text (core/addr.ts). */
  caddr: string;
  vaddr: string;
  daddr: string;
  seq?: { in: SeqData; out: SeqData };
  peData?: Uint8Array;
  peName?: string;
  /** tvs: FULLNAT local endpoint. */
  local?: { addr: string; port: number };
}

/** Why a whole message, or the rest of it, was dropped. */
export type MessageDrop =
  | "oversized"
  | "short-header"
  | "bad-size"
  | "syncid"
  | "truncated"
  | "record-overrun"
  | "record-version"
  | "record-type"
  | "record-short"
  | "option-header"
  | "option-length"
  | "option-seq"
  | "option-pe-data"
  | "option-pe-name";

/** Why one record was skipped while the rest of the message was read. */
export type RecordSkip = "mandatory-option";

export type DecodeResult =
  | { ok: false; drop: MessageDrop; syncId?: number }
  | {
      ok: true;
      version: 0 | 1;
      syncId: number;
      /** Records read, in message order (those before a `rest` drop included). */
      conns: SyncConn[];
      /** Records skipped alone. */
      skipped: RecordSkip[];
      /** Set when a bad record ended the message early. */
      rest?: MessageDrop;
    };

// ---------------------------------------------------------------- sizes

/**
 * sync_maxlen as start_sync_thread computes it: the payload of one UDP datagram. A master uses an
 * MTU of 1500 whatever its interface says; a backup takes its interface's MTU (at least 1500),
 * since it must accept whatever a peer sends. An explicit --sync-maxlen is clamped to at least 1
 * (master) or 1024 (backup) and at most 65535 minus the IP and UDP headers.
 */
export function syncMaxLen(state: "master" | "backup", devMtu: number, requested: number, ipv6 = false): number {
  const hlen = ipv6 ? 40 + 8 : 20 + 8;
  if (requested > 0) return Math.min(Math.max(requested, state === "backup" ? 1024 : 1), 65535 - hlen);
  const mtu = state === "backup" ? Math.min(Math.max(devMtu, 1500), 65535) : 1500;
  return mtu - hlen;
}

function localOptionLength(c: SyncConn): number {
  if (c.local === undefined) return 0;
  return 2 + (c.local.addr.includes(":") ? 18 : 6);
}

/** Bytes one v1 record takes (without the padding that aligns the next one). */
export function syncConnSize(c: SyncConn): number {
  let len = c.family === 6 ? CONN_V6_SIZE : CONN_V4_SIZE;
  if (c.seq !== undefined) len += SEQ_OPTIONS_SIZE + 2;
  if (c.peData !== undefined && c.peData.length > 0) {
    len += c.peData.length + 2;
    if (c.peName) len += Math.min(c.peName.length, PE_NAME_MAXLEN) + 2;
  }
  return len + localOptionLength(c);
}

// ---------------------------------------------------------------- writing

function putAddr(view: DataView, off: number, family: 4 | 6, text: string): void {
  if (family === 4) {
    const v = parseIpv4(text);
    if (v === undefined) throw new RangeError(`Invalid IPv4 address "${text}" in a sync record`);
    view.setUint32(off, v);
    return;
  }
  const g = parseIpv6Groups(text);
  if (g === undefined) throw new RangeError(`Invalid IPv6 address "${text}" in a sync record`);
  for (let i = 0; i < 8; i++) view.setUint16(off + 2 * i, g[i] as number);
}

function putSeq(view: DataView, off: number, s: SeqData): void {
  view.setUint32(off, s.initSeq >>> 0);
  view.setUint32(off + 4, s.delta >>> 0);
  view.setUint32(off + 8, s.previousDelta >>> 0);
}

/**
 * One outgoing v1 message being filled (the kernel's struct ip_vs_sync_buff): records are added
 * until the next one would pass maxLen (or the count would pass 255); then the caller sends
 * bytes() and starts a new one. A record larger than maxLen on its own still goes, alone, as the
 * kernel sizes such a buffer to fit it.
 */
export class SyncMessageWriter {
  readonly syncId: number;
  readonly maxLen: number;
  readonly #buf: Uint8Array;
  readonly #view: DataView;
  #head = MESSAGE_V1_HEADER_SIZE;
  #count = 0;

  constructor(syncId: number, maxLen: number) {
    if (!Number.isInteger(syncId) || syncId < 0 || syncId > 255) throw new RangeError(`Invalid syncid "${syncId}"`);
    if (!Number.isInteger(maxLen) || maxLen < 1 || maxLen > 65535) throw new RangeError(`Invalid maxlen "${maxLen}"`);
    this.syncId = syncId;
    this.maxLen = maxLen;
    // Room for maxLen, or for one oversized record after the header.
    this.#buf = new Uint8Array(Math.max(maxLen, MESSAGE_V1_HEADER_SIZE + 512));
    this.#view = new DataView(this.#buf.buffer);
  }

  /** Records in the message. */
  get count(): number {
    return this.#count;
  }

  /** Bytes the message takes now. */
  get size(): number {
    return this.#head;
  }

  /** Whether `c` fits after what is already there. */
  fits(c: SyncConn): boolean {
    if (this.#count === 0) return true;
    if (this.#count >= MAX_CONNS_PER_MESSAGE) return false;
    const pad = (4 - (this.#head & 3)) & 3;
    return this.#head + pad + syncConnSize(c) <= this.maxLen;
  }

  /** Append `c`; false (and nothing written) when it does not fit. Throws on an unencodable record. */
  add(c: SyncConn): boolean {
    if (!this.fits(c)) return false;
    const len = syncConnSize(c);
    if (len > SVER_MASK) throw new RangeError(`Sync record of ${len} bytes is too large`);
    const pad = this.#count === 0 ? 0 : (4 - (this.#head & 3)) & 3;
    const start = this.#head + pad;
    if (start + len > this.#buf.length) throw new RangeError(`Sync record of ${len} bytes is too large`);
    const b = this.#buf;
    const v = this.#view;
    b.fill(0, this.#head, start);
    b[start] = c.family === 6 ? STYPE_F_INET6 : 0;
    b[start + 1] = c.protocol & 0xff;
    v.setUint16(start + 2, len & SVER_MASK);
    v.setUint32(start + 4, (c.flags & ~F_HASHED) >>> 0);
    v.setUint16(start + 8, c.state & 0xffff);
    v.setUint16(start + 10, c.cport & 0xffff);
    v.setUint16(start + 12, c.vport & 0xffff);
    v.setUint16(start + 14, c.dport & 0xffff);
    v.setUint32(start + 16, c.fwmark >>> 0);
    v.setUint32(start + 20, c.timeoutS >>> 0);
    const alen = c.family === 6 ? 16 : 4;
    putAddr(v, start + 24, c.family, c.caddr);
    putAddr(v, start + 24 + alen, c.family, c.vaddr);
    putAddr(v, start + 24 + 2 * alen, c.family, c.daddr);
    let p = start + 24 + 3 * alen;
    if (c.seq !== undefined) {
      b[p++] = OPT_SEQ_DATA;
      b[p++] = SEQ_OPTIONS_SIZE;
      putSeq(v, p, c.seq.in);
      putSeq(v, p + 12, c.seq.out);
      p += SEQ_OPTIONS_SIZE;
    }
    if (c.peData !== undefined && c.peData.length > 0) {
      if (c.peData.length > PE_DATA_MAXLEN) throw new RangeError("Persistence engine data too long");
      b[p++] = OPT_PE_DATA;
      b[p++] = c.peData.length;
      b.set(c.peData, p);
      p += c.peData.length;
      if (c.peName) {
        const name = new TextEncoder().encode(c.peName).subarray(0, PE_NAME_MAXLEN);
        b[p++] = OPT_PE_NAME;
        b[p++] = name.length;
        b.set(name, p);
        p += name.length;
      }
    }
    if (c.local !== undefined) {
      const six = c.local.addr.includes(":");
      b[p++] = TVS_OPT_LOCAL;
      b[p++] = six ? 18 : 6;
      putAddr(v, p, six ? 6 : 4, c.local.addr);
      p += six ? 16 : 4;
      v.setUint16(p, c.local.port & 0xffff);
      p += 2;
    }
    this.#head = p;
    this.#count++;
    return true;
  }

  /** The message as it stands (a copy), header filled in. */
  bytes(): Uint8Array {
    const b = this.#buf;
    b[0] = 0;
    b[1] = this.syncId;
    this.#view.setUint16(2, this.#head);
    b[4] = this.#count;
    b[5] = SYNC_PROTO_VER;
    b[6] = 0;
    b[7] = 0;
    return b.slice(0, this.#head);
  }

  /** Start an empty message. */
  reset(): void {
    this.#head = MESSAGE_V1_HEADER_SIZE;
    this.#count = 0;
  }
}

/** Encode records into as many v1 messages as they need (tests, bulk resync). */
export function encodeSyncMessages(syncId: number, maxLen: number, conns: readonly SyncConn[]): Uint8Array[] {
  const w = new SyncMessageWriter(syncId, maxLen);
  const out: Uint8Array[] = [];
  for (const c of conns) {
    if (!w.add(c)) {
      out.push(w.bytes());
      w.reset();
      w.add(c);
    }
  }
  if (w.count > 0) out.push(w.bytes());
  return out;
}

// ---------------------------------------------------------------- reading

function getAddr(view: DataView, off: number, family: 4 | 6): string {
  if (family === 4) return formatIpv4(view.getUint32(off));
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(view.getUint16(off + 2 * i));
  return formatIpv6Groups(g);
}

function getSeq(view: DataView, off: number): SeqData {
  return { initSeq: view.getUint32(off), delta: view.getUint32(off + 4), previousDelta: view.getUint32(off + 8) };
}

/**
 * Read one datagram as a backup does (ip_vs_process_message). `ownSyncId` 0 accepts every syncid.
 * Never throws: every malformation is a drop reason.
 */
export function decodeSyncMessage(buf: Uint8Array, ownSyncId: number): DecodeResult {
  const len = buf.length;
  if (len < MESSAGE_V0_HEADER_SIZE) return { ok: false, drop: "short-header" };
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (view.getUint16(2) !== len) return { ok: false, drop: "bad-size" };
  const syncId = buf[1] as number;
  if (ownSyncId !== 0 && syncId !== ownSyncId) return { ok: false, drop: "syncid", syncId };
  if (len >= MESSAGE_V1_HEADER_SIZE && buf[5] === SYNC_PROTO_VER && buf[0] === 0 && view.getUint16(6) === 0)
    return decodeV1(buf, view, syncId);
  return decodeV0(buf, view, syncId);
}

function decodeV1(buf: Uint8Array, view: DataView, syncId: number): DecodeResult {
  const len = buf.length;
  const conns: SyncConn[] = [];
  const skipped: RecordSkip[] = [];
  const n = buf[4] as number;
  let next = MESSAGE_V1_HEADER_SIZE;
  for (let i = 0; i < n; i++) {
    const p = next;
    if (p + CONN_V4_SIZE > len) return { ok: true, version: 1, syncId, conns, skipped, rest: "truncated" };
    const verSize = view.getUint16(p + 2);
    const size = verSize & SVER_MASK;
    const end = p + size;
    if (end > len) return { ok: true, version: 1, syncId, conns, skipped, rest: "record-overrun" };
    if (verSize >>> SVER_SHIFT !== 0) return { ok: true, version: 1, syncId, conns, skipped, rest: "record-version" };
    const r = decodeRecordV1(buf, view, p, end);
    if (typeof r === "string") {
      if (r === "mandatory-option") skipped.push(r);
      else return { ok: true, version: 1, syncId, conns, skipped, rest: r };
    } else conns.push(r);
    next = p + ((size + 3) & ~3);
  }
  return { ok: true, version: 1, syncId, conns, skipped };
}

function decodeRecordV1(
  buf: Uint8Array,
  view: DataView,
  start: number,
  end: number,
): SyncConn | MessageDrop | RecordSkip {
  const type = buf[start] as number;
  let family: 4 | 6;
  if (type & STYPE_F_INET6) family = 6;
  else if (type === 0) family = 4;
  else return "record-type";
  const fixed = family === 6 ? CONN_V6_SIZE : CONN_V4_SIZE;
  if (start + fixed > end) return "record-short";
  const alen = family === 6 ? 16 : 4;
  const c: SyncConn = {
    family,
    protocol: buf[start + 1] as number,
    flags: view.getUint32(start + 4),
    state: view.getUint16(start + 8),
    cport: view.getUint16(start + 10),
    vport: view.getUint16(start + 12),
    dport: view.getUint16(start + 14),
    fwmark: view.getUint32(start + 16),
    timeoutS: view.getUint32(start + 20),
    caddr: getAddr(view, start + 24, family),
    vaddr: getAddr(view, start + 24 + alen, family),
    daddr: getAddr(view, start + 24 + 2 * alen, family),
  };
  let p = start + fixed;
  let skip = false;
  while (p < end) {
    if (p + 2 > end) return "option-header";
    const ptype = buf[p] as number;
    const plen = buf[p + 1] as number;
    p += 2;
    if (plen === 0 || p + plen > end) return "option-length";
    switch (ptype & ~OPT_F_OPTIONAL) {
      case OPT_SEQ_DATA:
        if (plen !== SEQ_OPTIONS_SIZE || c.seq !== undefined) return "option-seq";
        c.seq = { in: getSeq(view, p), out: getSeq(view, p + 12) };
        break;
      case OPT_PE_DATA:
        if (plen > PE_DATA_MAXLEN || c.peData !== undefined) return "option-pe-data";
        c.peData = buf.slice(p, p + plen);
        break;
      case OPT_PE_NAME:
        if (plen > PE_NAME_MAXLEN || c.peName !== undefined) return "option-pe-name";
        c.peName = new TextDecoder("latin1").decode(buf.subarray(p, p + plen));
        break;
      default:
        if (ptype === TVS_OPT_LOCAL && (plen === 6 || plen === 18) && c.local === undefined) {
          const six = plen === 18;
          c.local = { addr: getAddr(view, p, six ? 6 : 4), port: view.getUint16(p + (six ? 16 : 4)) };
        } else if (!(ptype & OPT_F_OPTIONAL)) skip = true;
    }
    // The kernel stops reading a record at an unknown mandatory option and skips it.
    if (skip) return "mandatory-option";
    p += plen;
  }
  return c;
}

function decodeV0(buf: Uint8Array, view: DataView, syncId: number): DecodeResult {
  const len = buf.length;
  const conns: SyncConn[] = [];
  const n = buf[0] as number;
  let p = MESSAGE_V0_HEADER_SIZE;
  for (let i = 0; i < n; i++) {
    if (p + CONN_V0_SIZE > len) return { ok: true, version: 0, syncId, conns, skipped: [], rest: "truncated" };
    const flags = ((view.getUint16(p + 20) | F_SYNC) & ~F_HASHED) >>> 0;
    const c: SyncConn = {
      family: 4,
      protocol: buf[p + 1] as number,
      flags,
      state: view.getUint16(p + 22),
      cport: view.getUint16(p + 2),
      vport: view.getUint16(p + 4),
      dport: view.getUint16(p + 6),
      fwmark: 0,
      timeoutS: 0,
      caddr: formatIpv4(view.getUint32(p + 8)),
      vaddr: formatIpv4(view.getUint32(p + 12)),
      daddr: formatIpv4(view.getUint32(p + 16)),
    };
    if (flags & F_SEQ_MASK) {
      if (p + CONN_V0_SIZE + SEQ_OPTIONS_SIZE > len)
        return { ok: true, version: 0, syncId, conns, skipped: [], rest: "truncated" };
      // v0 senders copy the sequence structs in their own byte order; tvs does no sequence
      // adjustment, so they are read (as little-endian, the usual sender) only to be kept.
      const le = new DataView(buf.buffer, buf.byteOffset + p + CONN_V0_SIZE, SEQ_OPTIONS_SIZE);
      const seq = (o: number): SeqData => ({
        initSeq: le.getUint32(o, true),
        delta: le.getUint32(o + 4, true),
        previousDelta: le.getUint32(o + 8, true),
      });
      c.seq = { in: seq(0), out: seq(12) };
      p += CONN_V0_SIZE + SEQ_OPTIONS_SIZE;
    } else p += CONN_V0_SIZE;
    conns.push(c);
  }
  return { ok: true, version: 0, syncId, conns, skipped: [] };
}
