// DNS_CHECK: send one query (random id, RD set, one question of the configured type and name,
// class IN) over UDP and wait for the answer. A reply with another id, or one that is not a
// response (QR=0), is ignored and the wait goes on, as in keepalived's check_dns; the check passes
// on a response with RCODE 0 and fails on any other RCODE, an ICMP error or the time limit.
// ldirectord's dns negotiate additionally wants an A/AAAA answer whose address matches `receive`.

import { randomInt } from "node:crypto";
import { canonicalIp } from "../../core/addr.ts";
import { type Checker, type CheckResult, elapsedMs } from "../checker.ts";
import type { DnsCheckSpec, DnsQueryType } from "../checker-spec.ts";
import { type ReplyVerdict, udpExchange } from "./datagram.ts";

export const DNS_TYPE_CODES: Record<DnsQueryType, number> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  RRSIG: 46,
  DNSKEY: 48,
};

const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/** Encode a name as DNS labels; "" and "." are the root. Throws on a label over 63 bytes. */
export function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of name.split(".")) {
    if (label === "") continue;
    const b = Buffer.from(label, "latin1");
    if (b.length > 63) throw new RangeError(`DNS label "${label}" is longer than 63 bytes`);
    parts.push(Buffer.from([b.length]), b);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

/** A query message: header (id, RD=1, QDCOUNT=1) and one question (name, type, class IN). */
export function encodeQuery(id: number, name: string, type: DnsQueryType): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(0x0100, 2);
  header.writeUInt16BE(1, 4);
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(DNS_TYPE_CODES[type], 0);
  tail.writeUInt16BE(1, 2);
  return Buffer.concat([header, encodeName(name), tail]);
}

/** Offset just past a (possibly compressed) name at `off`, or -1 when malformed. */
function skipName(msg: Buffer, off: number): number {
  let p = off;
  for (let guard = 0; guard < 128; guard++) {
    if (p >= msg.length) return -1;
    const len = msg[p] as number;
    if (len === 0) return p + 1;
    if ((len & 0xc0) === 0xc0) return p + 2 <= msg.length ? p + 2 : -1;
    p += 1 + len;
  }
  return -1;
}

/** Addresses in the answer section's A and AAAA records (canonical text). */
export function answerAddresses(msg: Buffer): string[] {
  const qd = msg.readUInt16BE(4);
  const an = msg.readUInt16BE(6);
  let p = 12;
  for (let i = 0; i < qd; i++) {
    p = skipName(msg, p);
    if (p < 0 || p + 4 > msg.length) return [];
    p += 4;
  }
  const out: string[] = [];
  for (let i = 0; i < an; i++) {
    p = skipName(msg, p);
    if (p < 0 || p + 10 > msg.length) break;
    const type = msg.readUInt16BE(p);
    const rdlen = msg.readUInt16BE(p + 8);
    const rd = p + 10;
    if (rd + rdlen > msg.length) break;
    if (type === 1 && rdlen === 4) out.push(`${msg[rd]}.${msg[rd + 1]}.${msg[rd + 2]}.${msg[rd + 3]}`);
    if (type === 28 && rdlen === 16) {
      const groups: string[] = [];
      for (let g = 0; g < 8; g++) groups.push(msg.readUInt16BE(rd + g * 2).toString(16));
      out.push(canonicalIp(groups.join(":")) ?? groups.join(":"));
    }
    p = rd + rdlen;
  }
  return out;
}

export function createDnsChecker(spec: DnsCheckSpec): Checker {
  const expect = spec.answerRegex !== undefined ? new RegExp(spec.answerRegex) : undefined;
  return {
    type: "DNS_CHECK",
    async check(target, signal): Promise<CheckResult> {
      const start = performance.now();
      const id = randomInt(0, 0x10000);
      let query: Buffer;
      try {
        query = encodeQuery(id, spec.name, spec.queryType);
      } catch (e) {
        return { ok: false, reason: e instanceof Error ? e.message : String(e), latencyMs: 0 };
      }
      const r = await udpExchange(target, query, signal, (msg): ReplyVerdict => {
        if (msg.length < 12 || msg.readUInt16BE(0) !== id) return { done: false };
        const flags = msg.readUInt16BE(2);
        if ((flags & 0x8000) === 0) return { done: false };
        const rcode = flags & 0x000f;
        if (rcode !== 0) return { done: true, ok: false, reason: `DNS rcode ${rcode} (${RCODE_NAMES[rcode] ?? "?"})` };
        if (expect !== undefined) {
          const addrs = answerAddresses(msg);
          if (!addrs.some((a) => expect.test(a)))
            return {
              done: true,
              ok: false,
              reason: `No DNS answer address [${addrs.join(", ")}] matches /${expect.source}/`,
            };
        }
        return { done: true, ok: true, reason: `DNS ${spec.queryType} answer` };
      });
      return { ok: r.ok, reason: r.reason, latencyMs: elapsedMs(start) };
    },
  };
}
