// IP addresses as core sees them: canonical text (dotted quad; RFC 5952 compressed lowercase IPv6)
// plus helpers to get 32-bit words, fold for the kernel's hashes, mask for persistence, and compare
// for listings. Hand-written so core stays free of I/O and Node imports.

export type Family = 4 | 6;

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parse dotted-quad IPv4 into an unsigned 32-bit number, or undefined. */
export function parseIpv4(text: string): number | undefined {
  const m = V4_RE.exec(text);
  if (!m) return undefined;
  let v = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i] as string;
    if (part.length > 1 && part[0] === "0") return undefined;
    const n = Number(part);
    if (n > 255) return undefined;
    v = v * 256 + n;
  }
  return v >>> 0;
}

export function formatIpv4(v: number): string {
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}

/** Parse IPv6 (with optional embedded IPv4 tail) into 8 16-bit groups, or undefined. */
export function parseIpv6Groups(text: string): number[] | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  let head = text;
  let tail4: number | undefined;
  const lastColon = text.lastIndexOf(":");
  if (text.indexOf(".", lastColon) !== -1) {
    tail4 = parseIpv4(text.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    head = `${text.slice(0, lastColon + 1)}0:0`;
    if (text.slice(0, lastColon + 1).endsWith("::")) head = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = head.indexOf("::");
  if (dbl !== -1 && head.indexOf("::", dbl + 1) !== -1) return undefined;
  const parseSide = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    for (const g of s.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  let groups: number[];
  if (dbl === -1) {
    const all = parseSide(head);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  } else {
    const left = parseSide(head.slice(0, dbl));
    const right = parseSide(head.slice(dbl + 2));
    if (!left || !right || left.length + right.length > 7) return undefined;
    groups = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  if (tail4 !== undefined) {
    groups[6] = tail4 >>> 16;
    groups[7] = tail4 & 0xffff;
  }
  return groups;
}

/**
 * IPv6 text as glibc's inet_ntop writes it (what ipvsadm prints): lowercase, the longest run
 * (>= 2, the first of equal runs) of zero groups compressed, and an IPv4-compatible (::a.b.c.d)
 * or IPv4-mapped (::ffff:a.b.c.d) address with its last 32 bits in dotted form.
 */
export function formatIpv6Groups(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] === 0) {
      let j = i;
      while (j < 8 && groups[j] === 0) j++;
      if (j - i > bestLen && j - i >= 2) {
        bestStart = i;
        bestLen = j - i;
      }
      i = j;
    } else i++;
  }
  if (bestStart === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 0xffff))) {
    const v4 = formatIpv4((((groups[6] as number) << 16) | (groups[7] as number)) >>> 0);
    return bestLen === 5 ? `::ffff:${v4}` : `::${v4}`;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Canonical text for an IPv4 or IPv6 address, or undefined when malformed. */
export function canonicalIp(text: string): string | undefined {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return formatIpv4(v4);
  const g = parseIpv6Groups(text);
  return g ? formatIpv6Groups(g) : undefined;
}

/** The highest TCP/UDP port number. */
export const MAX_PORT = 65535;

/** Family of a canonical (or any parseable) address; IPv6 text always contains ':'. */
export function ipFamily(text: string): Family {
  return text.includes(":") ? 6 : 4;
}

/** Address as 32-bit big-endian words: one for IPv4, four for IPv6. */
export function ipWords(text: string): number[] {
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return [v4];
  const g = parseIpv6Groups(text);
  if (!g) throw new RangeError(`Invalid IP address "${text}"`);
  const out: number[] = [];
  for (let i = 0; i < 8; i += 2) out.push((((g[i] as number) << 16) | (g[i + 1] as number)) >>> 0);
  return out;
}

export function wordsToIp(words: readonly number[]): string {
  if (words.length === 1) return formatIpv4(words[0] as number);
  const g: number[] = [];
  for (const w of words) g.push(w >>> 16, w & 0xffff);
  return formatIpv6Groups(g);
}

/**
 * The kernel's address fold for hashing (ip_vs_sh/dh/mh): IPv4 is the address itself, IPv6 is the
 * XOR of its four 32-bit words. Returned as an unsigned 32-bit value in host order of the network
 * bytes (the kernel hashes the big-endian word read as a number on little-endian hosts; see the
 * schedulers for the byte order they apply).
 */
export function foldIp(text: string): number {
  const w = ipWords(text);
  let v = 0;
  for (const x of w) v ^= x;
  return v >>> 0;
}

/** Apply a prefix length (0..32 or 0..128) to an address. */
export function maskIp(text: string, prefixLen: number): string {
  const words = ipWords(text);
  let remaining = prefixLen;
  const out = words.map((w) => {
    const bits = Math.max(0, Math.min(32, remaining));
    remaining -= 32;
    if (bits === 0) return 0;
    if (bits === 32) return w >>> 0;
    return (w & (0xffffffff << (32 - bits))) >>> 0;
  });
  return wordsToIp(out);
}

/** Prefix length of a contiguous IPv4 netmask ("255.255.255.0" → 24), or undefined. */
export function netmaskToPrefix(mask: string): number | undefined {
  const v = parseIpv4(mask);
  if (v === undefined) return undefined;
  let n = 0;
  while (n < 32 && v & (0x80000000 >>> n)) n++;
  const rebuilt = n === 0 ? 0 : (0xffffffff << (32 - n)) >>> 0;
  return rebuilt === v ? n : undefined;
}

export function prefixToNetmask(prefix: number): string {
  return formatIpv4(prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0);
}

/** Numeric comparison of two addresses (IPv4 sorts before IPv6), for listings. */
export function compareIp(a: string, b: string): number {
  const wa = ipWords(a);
  const wb = ipWords(b);
  if (wa.length !== wb.length) return wa.length - wb.length;
  for (let i = 0; i < wa.length; i++) {
    const d = (wa[i] as number) - (wb[i] as number);
    if (d !== 0) return d;
  }
  return 0;
}

/** "addr:port", with brackets for IPv6, as ipvsadm prints endpoints. */
export function formatEndpoint(addr: string, port: number): string {
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}
