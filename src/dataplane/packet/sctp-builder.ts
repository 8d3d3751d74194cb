// Builds SCTP packets to the RFC 9260 (formerly RFC 4960) format for fixtures, unit tests and lab
// tests: the common header (ports, verification tag, CRC32c over the whole packet computed from
// scratch) and the chunks of an association's life: INIT (with the IPv4 address and supported
// address type parameters a Linux endpoint sends), INIT ACK (with a state cookie), COOKIE ECHO,
// COOKIE ACK, DATA, SACK, HEARTBEAT / ACK, SHUTDOWN, SHUTDOWN ACK, SHUTDOWN COMPLETE, ABORT.
// Every chunk is padded to 4 bytes; lengths exclude the padding, as the RFC says.

import { parseIpv4 } from "../../core/addr.ts";
import { crc32c } from "./codec/crc32c.ts";

/** One chunk: type, flags and value, padded to a multiple of 4. */
export function chunk(type: number, flags: number, value: Uint8Array = new Uint8Array(0)): Buffer {
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b[0] = type;
  b[1] = flags;
  b.writeUInt16BE(len, 2);
  b.set(value, 4);
  return b;
}

/** A TLV parameter of INIT / INIT ACK / HEARTBEAT, padded to 4. */
export function param(type: number, value: Uint8Array): Buffer {
  const len = 4 + value.length;
  const b = Buffer.alloc((len + 3) & ~3);
  b.writeUInt16BE(type, 0);
  b.writeUInt16BE(len, 2);
  b.set(value, 4);
  return b;
}

function initBody(tag: number, tsn: number, params: Buffer[]): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt32BE(tag, 0); // initiate tag
  b.writeUInt32BE(106496, 4); // a_rwnd (Linux's default)
  b.writeUInt16BE(10, 8); // outbound streams
  b.writeUInt16BE(65535, 10); // inbound streams
  b.writeUInt32BE(tsn, 12); // initial TSN
  return Buffer.concat([b, ...params]);
}

/** IPv4 address parameter (type 5) and Supported Address Types (12: IPv4 5, IPv6 6). */
function addressParams(addr?: string): Buffer[] {
  const out: Buffer[] = [];
  if (addr !== undefined && !addr.includes(":")) {
    const a = Buffer.alloc(4);
    a.writeUInt32BE(parseIpv4(addr) ?? 0);
    out.push(param(5, a));
  }
  out.push(param(12, Buffer.from([0, 5, 0, 6])));
  return out;
}

export const sctpChunks = {
  init: (tag: number, tsn: number, addr?: string) => chunk(1, 0, initBody(tag, tsn, addressParams(addr))),
  initAck: (tag: number, tsn: number, cookie: Uint8Array) => chunk(2, 0, initBody(tag, tsn, [param(7, cookie)])),
  cookieEcho: (cookie: Uint8Array) => chunk(10, 0, cookie),
  cookieAck: () => chunk(11, 0),
  data: (tsn: number, stream: number, ssn: number, ppid: number, user: Uint8Array) => {
    const h = Buffer.alloc(12);
    h.writeUInt32BE(tsn, 0);
    h.writeUInt16BE(stream, 4);
    h.writeUInt16BE(ssn, 6);
    h.writeUInt32BE(ppid, 8);
    return chunk(0, 0x03 /* B and E: an unfragmented message */, Buffer.concat([h, user]));
  },
  sack: (cumTsn: number) => {
    const b = Buffer.alloc(12);
    b.writeUInt32BE(cumTsn, 0);
    b.writeUInt32BE(106496, 4);
    return chunk(3, 0, b);
  },
  heartbeat: (info: Uint8Array) => chunk(4, 0, param(1, info)),
  heartbeatAck: (info: Uint8Array) => chunk(5, 0, param(1, info)),
  abort: () => chunk(6, 0),
  shutdown: (cumTsn: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(cumTsn, 0);
    return chunk(7, 0, b);
  },
  shutdownAck: () => chunk(8, 0),
  shutdownComplete: () => chunk(14, 0),
};

export interface SctpOpts {
  sport: number;
  dport: number;
  /** Verification tag (0 in an INIT). */
  vtag: number;
  chunks: Uint8Array[];
  /** Leave the checksum field zero (a sender that left it to offload). */
  noChecksum?: boolean;
  /** XOR this into the correct checksum (a packet corrupted in transit). */
  corrupt?: number;
}

/** An SCTP packet: common header, chunks, CRC32c computed over the whole packet from scratch. */
export function sctp(o: SctpOpts): Buffer {
  const b = Buffer.concat([Buffer.alloc(12), ...o.chunks]);
  b.writeUInt16BE(o.sport, 0);
  b.writeUInt16BE(o.dport, 2);
  b.writeUInt32BE(o.vtag, 4);
  if (!o.noChecksum) b.writeUInt32LE((crc32c(b) ^ (o.corrupt ?? 0)) >>> 0, 8);
  return b;
}
