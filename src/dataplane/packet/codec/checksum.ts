// The Internet checksum (RFC 1071) and its incremental update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m +
// m')). Sums are kept as unfolded numbers below 2^53 and folded to 16 bits at the end; callers pass
// byte ranges of a Buffer, so nothing is allocated per packet.
//
// A checksum field left by the sender for offload (CHECKSUM_PARTIAL; virtio_net_hdr NEEDS_CSUM)
// holds the *uncomplemented* folded pseudo-header sum instead of a final checksum. Changing an
// address covered by the pseudo-header then means adding the difference without the complements,
// and changing a port (covered only by the later full sum) means leaving the field alone. The
// helpers below take a `partial` flag for that case, as the kernel's inet_proto_csum_replace4 does.

/** One's-complement sum of buf[off, off+len) added to `init` (not folded). */
export function sumBytes(buf: Uint8Array, off: number, len: number, init = 0): number {
  let s = init;
  const end = off + len;
  let i = off;
  for (; i + 1 < end; i += 2) s += (buf[i]! << 8) | buf[i + 1]!;
  if (i < end) s += buf[i]! << 8;
  return s;
}

/** Fold a sum to 16 bits (end-around carry). */
export function fold(sum: number): number {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum to store: complement of the folded sum. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Checksum over a byte range (e.g. an IPv4 header with its checksum field zeroed). */
export function checksum(buf: Uint8Array, off: number, len: number, init = 0): number {
  return finish(sumBytes(buf, off, len, init));
}

/**
 * RFC 1624 update of a stored checksum `csum` when a 16-bit word changes from `from` to `to`.
 * With `partial`, the field holds an uncomplemented sum (offload) and is adjusted without complements.
 */
export function update16(csum: number, from: number, to: number, partial = false): number {
  if (partial) return fold(csum + (~from & 0xffff) + to);
  return ~fold((~csum & 0xffff) + (~from & 0xffff) + to) & 0xffff;
}

/** As update16 for a 32-bit word (an IPv4 address). */
export function update32(csum: number, from: number, to: number, partial = false): number {
  const f = from >>> 0;
  const t = to >>> 0;
  const diff = (~(f >>> 16) & 0xffff) + (~f & 0xffff) + (t >>> 16) + (t & 0xffff);
  if (partial) return fold(csum + diff);
  return ~fold((~csum & 0xffff) + diff) & 0xffff;
}

/** Update for a replaced byte range of even length (an IPv6 address) read before and after. */
export function updateBytes(csum: number, fromSum: number, toSum: number, partial = false): number {
  const diff = (~fold(fromSum) & 0xffff) + fold(toSum);
  if (partial) return fold(csum + diff);
  return ~fold((~csum & 0xffff) + diff) & 0xffff;
}

/** Pseudo-header sum for IPv4 (addresses at saddrOff, daddrOff = saddrOff + 4), protocol and L4 length. */
export function pseudo4(buf: Uint8Array, saddrOff: number, protocol: number, l4len: number): number {
  return sumBytes(buf, saddrOff, 8, protocol + l4len);
}

/** Pseudo-header sum for IPv6 (addresses at saddrOff, 32 bytes), next header and L4 length. */
export function pseudo6(buf: Uint8Array, saddrOff: number, nextHeader: number, l4len: number): number {
  return sumBytes(buf, saddrOff, 32, nextHeader + Math.floor(l4len / 0x10000) + (l4len & 0xffff));
}
