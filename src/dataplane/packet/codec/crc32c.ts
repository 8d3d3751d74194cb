// CRC32c (Castagnoli), the checksum of SCTP (RFC 9260 appendix A, formerly RFC 4960 / 3309) and
// iSCSI (RFC 3720 appendix B.4): a full computation, slicing-by-8, and an update in O(log n) for a
// change of a few bytes, which is what NAT needs when it rewrites an SCTP packet's ports.
//
// The CRC. CRC32c divides the message, read as a polynomial over GF(2), by the Castagnoli
// polynomial 0x1EDC6F41. SCTP uses the bit-reflected form (least significant bit first), so the
// register shifts right and the polynomial reads 0x82F63B78; the register starts at all ones and
// the result is complemented. The classic table-driven loop consumes one byte per step:
//   crc = T0[(crc ^ byte) & 0xff] ^ (crc >>> 8)
// where T0[n] is the register after eight shifts of n. That is one table look-up per byte, and
// each step waits for the one before.
//
// Slicing-by-8 (Intel, Kounavis and Berry 2005) consumes eight bytes per step with eight
// independent look-ups. T_k[n] is the effect of byte value n followed by k zero bytes:
//   T_k[n] = (T_{k-1}[n] >>> 8) ^ T0[T_{k-1}[n] & 0xff].
// Because the CRC is linear (XOR distributes over it), the effect of eight bytes is the XOR of the
// effects of each byte followed by the right number of zero bytes. The first four bytes are XORed
// into the register first (the register is 32 bits, it "absorbs" four bytes), and then:
//   crc = T7[r0] ^ T6[r1] ^ T5[r2] ^ T4[r3] ^ T3[b4] ^ T2[b5] ^ T1[b6] ^ T0[b7]
// with r0..r3 the register's bytes (least significant first) and b4..b7 the next four bytes.
// The eight look-ups do not depend on one another, so the CPU overlaps them; the tail (fewer than
// eight bytes) goes through the byte loop. The tables are 8 × 256 words (8 KiB), built once.
//
// The update. SCTP's checksum covers the SCTP packet only (no pseudo-header), so when NAT rewrites
// addresses nothing changes, and when it rewrites a port only two bytes of the message change.
// Recomputing the whole CRC would also "launder" a packet that arrived corrupted (the kernel
// therefore verifies before it recomputes: two passes). Linearity gives a cheaper way that keeps a
// corrupt packet corrupt: for two messages A and B of the same length,
//   crc(A) ^ crc(B) = crc0(A ^ B)
// where crc0 is the CRC with a zero initial register and no final complement (the all-ones start
// and the complement cancel out). A ^ B is zero except for the changed bytes, so crc0 of it is
// the changed bytes run through the byte loop from a zero register, followed by as many zero bytes
// as the message has after them. Running a register through n zero bytes is a linear map on 32
// bits, a 32 × 32 matrix over GF(2), and the map for n bytes is a product of the maps for the
// powers of two in n, precomputed by squaring (the method of zlib's crc32_combine). Each map is
// kept as four 256-entry tables (one per byte of the register, the map being linear), so applying
// one is four look-ups: a port change costs at most 17 × 4 look-ups whatever the packet's length.

/** The bit-reflected Castagnoli polynomial. */
const POLY = 0x82f63b78;

/** The slicing tables T0..T7, one Uint32Array of 8 × 256 entries (T_k at k × 256). */
const T = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let k = 1; k < 8; k++) {
    for (let n = 0; n < 256; n++) {
      const prev = t[(k - 1) * 256 + n]!;
      t[k * 256 + n] = (prev >>> 8) ^ t[prev & 0xff]!;
    }
  }
  return t;
}

/** Run the register `crc` (not complemented) over buf[off, off + len). */
function run(crc: number, buf: Uint8Array, off: number, len: number): number {
  let c = crc >>> 0;
  let i = off;
  const end = off + len;
  for (; i + 8 <= end; i += 8) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    c =
      T[7 * 256 + (c & 0xff)]! ^
      T[6 * 256 + ((c >>> 8) & 0xff)]! ^
      T[5 * 256 + ((c >>> 16) & 0xff)]! ^
      T[4 * 256 + (c >>> 24)]! ^
      T[3 * 256 + buf[i + 4]!]! ^
      T[2 * 256 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return c >>> 0;
}

/** CRC32c of buf[off, off + len) (as RFC 3720 and RFC 9260 define it: start all ones, complement). */
export function crc32c(buf: Uint8Array, off = 0, len = buf.length - off): number {
  return ~run(0xffffffff, buf, off, len) >>> 0;
}

/** The plain byte-at-a-time CRC32c (the reference the sliced one is tested against). */
export function crc32cBytewise(buf: Uint8Array, off = 0, len = buf.length - off): number {
  let c = 0xffffffff;
  for (let i = off; i < off + len; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

// ---------------------------------------------------------------------------- zero-byte maps

/** A linear map on 32-bit registers: column i is the image of the register with only bit i set. */
type Gf2Matrix = Uint32Array;

function apply(m: Gf2Matrix, v: number): number {
  let r = 0;
  let x = v >>> 0;
  for (let i = 0; x !== 0; i++, x >>>= 1) if (x & 1) r ^= m[i]!;
  return r >>> 0;
}

function compose(a: Gf2Matrix, b: Gf2Matrix): Gf2Matrix {
  const m = new Uint32Array(32);
  for (let i = 0; i < 32; i++) m[i] = apply(a, b[i]!);
  return m;
}

/** ZEROS[k]: the map of 2^k zero bytes, k = 0..16 (an SCTP packet is at most 65535 bytes). */
const ZEROS: Gf2Matrix[] = buildZeroMaps();

function buildZeroMaps(): Gf2Matrix[] {
  const one = new Uint32Array(32);
  for (let i = 0; i < 32; i++) {
    const v = (1 << i) >>> 0;
    one[i] = (T[v & 0xff]! ^ (v >>> 8)) >>> 0;
  }
  const maps: Gf2Matrix[] = [one];
  for (let k = 1; k <= 16; k++) maps.push(compose(maps[k - 1]!, maps[k - 1]!));
  return maps;
}

/**
 * The maps again as byte tables, so applying one costs four look-ups instead of up to 32 XORs:
 * ZERO_TABLES[k * 1024 + b * 256 + v] is map k applied to the register with byte b set to v (the
 * map is linear, so the register's image is the XOR of its four bytes' images). 17 × 4 KiB.
 */
const ZERO_TABLES = buildZeroTables();

function buildZeroTables(): Uint32Array {
  const t = new Uint32Array(ZEROS.length * 1024);
  ZEROS.forEach((m, k) => {
    for (let b = 0; b < 4; b++)
      for (let v = 0; v < 256; v++) t[k * 1024 + b * 256 + v] = apply(m, (v << (8 * b)) >>> 0);
  });
  return t;
}

/** The register after running `v` through n zero bytes (n < 2^17). */
function zeros(v: number, n: number): number {
  let r = v >>> 0;
  for (let k = 0; n !== 0 && r !== 0; k++, n >>>= 1) {
    if ((n & 1) === 0) continue;
    const o = k * 1024;
    r =
      (ZERO_TABLES[o + (r & 0xff)]! ^
        ZERO_TABLES[o + 256 + ((r >>> 8) & 0xff)]! ^
        ZERO_TABLES[o + 512 + ((r >>> 16) & 0xff)]! ^
        ZERO_TABLES[o + 768 + (r >>> 24)]!) >>>
      0;
  }
  return r;
}

/**
 * The CRC32c of a message of `len` bytes after bytes [at, at + 4) changed from the big-endian
 * word `from` to `to`, given the CRC before the change (see the essay above). O(log len).
 */
export function crc32cUpdate32(crc: number, len: number, at: number, from: number, to: number): number {
  const d = (from ^ to) >>> 0;
  if (d === 0) return crc >>> 0;
  let c = 0;
  c = T[(c ^ (d >>> 24)) & 0xff]! ^ (c >>> 8);
  c = T[(c ^ (d >>> 16)) & 0xff]! ^ (c >>> 8);
  c = T[(c ^ (d >>> 8)) & 0xff]! ^ (c >>> 8);
  c = T[(c ^ d) & 0xff]! ^ (c >>> 8);
  return (crc ^ zeros(c >>> 0, len - at - 4)) >>> 0;
}
