// UDP header fields (RFC 768). A zero checksum over IPv4 means "none" and must stay zero when the
// director rewrites addresses or ports; over IPv6 it is invalid.

export const UDP_HLEN = 8;
export const UDP_CSUM = 6;

export function udpLength(buf: Uint8Array, l4: number): number {
  return (buf[l4 + 4]! << 8) | buf[l4 + 5]!;
}
