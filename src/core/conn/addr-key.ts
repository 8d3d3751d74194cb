// How the connection table keys addresses: an IPv4 address is held and compared as a signed
// 32-bit integer (10.0.0.1 = 0x0a000001), an IPv6 address as its canonical text. hash5 mixes a
// protocol code and two (address, port) pairs into the 32-bit hash both indexes use.

export type AddrKey = number | string;

/**
 * Strict dotted-quad IPv4 (no leading zeros, each part 0..255: exactly the canonical form) to a
 * signed 32-bit integer, or undefined. Hand-rolled: it runs on every text lookup.
 */
export function ipv4Key(s: string): number | undefined {
  const n = s.length;
  if (n < 7 || n > 15) return undefined;
  let acc = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < n; i++) {
    const ch = s.charCodeAt(i);
    if (ch === 46) {
      if (digits === 0 || ++dots > 3) return undefined;
      acc = (acc << 8) | part;
      part = 0;
      digits = 0;
    } else if (ch >= 48 && ch <= 57) {
      if (digits > 0 && part === 0) return undefined;
      part = part * 10 + (ch - 48);
      if (part > 255) return undefined;
      digits++;
    } else return undefined;
  }
  if (dots !== 3 || digits === 0) return undefined;
  return (acc << 8) | part;
}

/** IPv4 text → signed 32-bit integer; anything else stays text (IPv6, or no match at all). */
export function addrKey(text: string): AddrKey {
  return ipv4Key(text) ?? text;
}

function mixAddr(h: number, a: AddrKey): number {
  if (typeof a === "number") return Math.imul(h ^ a, 0x9e3779b1);
  for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a.charCodeAt(i), 0x01000193);
  return Math.imul(h, 0x9e3779b1);
}

/** Hash of (protocol code, address, port, address, port) for both indexes. */
export function hash5(p: number, a1: AddrKey, port1: number, a2: AddrKey, port2: number): number {
  let h = 0x811c9dc5 ^ p;
  h = mixAddr(h, a1);
  h = Math.imul(h ^ port1, 0x85ebca6b);
  h = mixAddr(h ^ (h >>> 15), a2);
  h = Math.imul(h ^ port2, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The kernel's fwmark-as-address for an IPv6 template: the mark in the first 32-bit word. */
export function markAsIpv6(mark: number): string {
  const hi = (mark >>> 16).toString(16);
  const lo = (mark & 0xffff).toString(16);
  return mark >>> 16 === 0 ? (mark === 0 ? "::" : `0:${lo}::`) : `${hi}:${lo}::`;
}
