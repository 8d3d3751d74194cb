// TCP header fields used by the director (RFC 9293): ports, flags, checksum and the MSS option.

export const TCP_HLEN = 20;
export const TCP_FIN = 0x01;
export const TCP_SYN = 0x02;
export const TCP_RST = 0x04;
export const TCP_PSH = 0x08;
export const TCP_ACK = 0x10;
export const TCP_CSUM = 16; // checksum offset within the header

export function tcpHeaderLen(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 12]! >>> 4) * 4;
}

export function tcpFlags(buf: Uint8Array, l4: number): number {
  return buf[l4 + 13]!;
}

/**
 * Length of the TCP option at `o` in an option list ending at `end`: 1 for a NOP, the option's
 * own length byte otherwise; 0 at EOL, at the end of the list, or where the list is malformed (a
 * length under 2 or one that runs past the header), which ends every walk. A walk:
 * `for (let o = l4 + TCP_HLEN, n; (n = tcpOptionLen(buf, o, end)) > 0; o += n)`.
 */
export function tcpOptionLen(buf: Uint8Array, o: number, end: number): number {
  if (o >= end) return 0;
  const kind = buf[o]!;
  if (kind === 0) return 0;
  if (kind === 1) return 1;
  if (o + 1 >= end) return 0;
  const len = buf[o + 1]!;
  return len < 2 || o + len > end ? 0 : len;
}

/**
 * Clamp the MSS option of a SYN to `maxMss` (used by the tunnel method, whose IPIP header takes
 * 20 bytes of the path MTU). Returns true when the option was lowered; the caller fixes the
 * checksum with the returned old/new values through `onChange`.
 */
export function clampMss(
  buf: Uint8Array,
  l4: number,
  hlen: number,
  maxMss: number,
  onChange: (off: number, from: number, to: number) => void,
): boolean {
  const end = l4 + hlen;
  for (let o = l4 + TCP_HLEN, n: number; (n = tcpOptionLen(buf, o, end)) > 0; o += n) {
    if (buf[o] === 2 && n === 4) {
      const mss = (buf[o + 2]! << 8) | buf[o + 3]!;
      if (mss > maxMss) {
        buf[o + 2] = maxMss >>> 8;
        buf[o + 3] = maxMss & 0xff;
        onChange(o + 2, mss, maxMss);
        return true;
      }
      return false;
    }
  }
  return false;
}
