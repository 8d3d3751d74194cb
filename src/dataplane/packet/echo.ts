// Echo requests to a VIP are answered by the director itself, in place (the VIP is ours, as on a
// kernel director that holds it): addresses swapped, a fresh TTL / hop limit, checksums redone.

import { finish, pseudo6, sumBytes } from "./codec/checksum.ts";
import { setMacs } from "./codec/eth.ts";
import { IPPROTO_ICMPV6 } from "./codec/ipv4.ts";
import type { Verdict } from "./counters.ts";
import type { Egress } from "./egress.ts";
import type { Pkt } from "./pkt.ts";

/** Answer an ICMP echo request to a VIP in place; "drop" (the caller counts it malformed) on a bad checksum. */
export function echoReply4(p: Pkt, mac: Uint8Array, egress: Egress): Verdict {
  const buf = p.buf;
  const l3 = p.l3;
  const l4 = p.l4;
  const icmpLen = p.end - l4;
  if (finish(sumBytes(buf, l4, icmpLen)) !== 0) return "drop";
  const s = buf.readUInt32BE(l3 + 12);
  buf.writeUInt32BE(buf.readUInt32BE(l3 + 16), l3 + 12);
  buf.writeUInt32BE(s, l3 + 16);
  buf[l3 + 8] = 64;
  buf[l3 + 10] = 0;
  buf[l3 + 11] = 0;
  const hc = finish(sumBytes(buf, l3, (buf[l3]! & 15) * 4));
  buf[l3 + 10] = hc >>> 8;
  buf[l3 + 11] = hc & 0xff;
  buf[l4] = 0;
  buf[l4 + 2] = 0;
  buf[l4 + 3] = 0;
  const c = finish(sumBytes(buf, l4, icmpLen));
  buf[l4 + 2] = c >>> 8;
  buf[l4 + 3] = c & 0xff;
  const src = Uint8Array.from(buf.subarray(p.eth + 6, p.eth + 12));
  setMacs(buf, p.eth, src, mac);
  egress.emit(p);
  return "reply";
}

/** Answer an ICMPv6 echo request to a VIP in place. */
export function echoReply6(p: Pkt, mac: Uint8Array, egress: Egress): Verdict {
  const buf = p.buf;
  const l3 = p.l3;
  const l4 = p.l4;
  const icmpLen = p.end - l4;
  const tmp = Uint8Array.from(buf.subarray(l3 + 8, l3 + 24));
  buf.copyWithin(l3 + 8, l3 + 24, l3 + 40);
  buf.set(tmp, l3 + 24);
  buf[l3 + 7] = 64;
  buf[l4] = 129;
  buf[l4 + 2] = 0;
  buf[l4 + 3] = 0;
  const c = finish(sumBytes(buf, l4, icmpLen, pseudo6(buf, l3 + 8, IPPROTO_ICMPV6, icmpLen)));
  buf[l4 + 2] = c >>> 8;
  buf[l4 + 3] = c & 0xff;
  const src = Uint8Array.from(buf.subarray(p.eth + 6, p.eth + 12));
  setMacs(buf, p.eth, src, mac);
  egress.emit(p);
  return "reply";
}
