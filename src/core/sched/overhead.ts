// Load arithmetic shared by the least-connection family (lc, wlc, sed, nq, lblc, lblcr, twos):
// the kernel's ip_vs_dest_conn_overhead and its 64-bit cross-multiplied comparison.
//
// The kernel keeps connection counts in 32-bit ints and computes overhead as
// (activeconns << 8) + inactconns in int arithmetic, so we do the same (| 0 wraps exactly as the
// kernel's two's complement does once activeconns passes 2^23). Comparisons "h1/w1 > h2/w2" are
// done as (s64)h1 * w2 > (s64)h2 * w1. Products of two 32-bit values reach 2^62, beyond a double's
// 53-bit integer range, so the comparison uses doubles only while both products are exact and
// falls back to BigInt otherwise; with realistic weights (<= 65535 from ipvsadm) and overheads the
// fast path always applies.

import type { Dest } from "../dest.ts";

/** Products below this magnitude (2^53) are exact in a double. */
export const EXACT_PRODUCT = 9007199254740992;
const EXACT = EXACT_PRODUCT;

/** The kernel's ip_vs_dest_conn_overhead(): (activeconns << 8) + inactconns, as a C int. */
export function connOverhead(d: Dest): number {
  return ((d.activeConns << 8) + d.inactConns) | 0;
}

/** (s64)a * b > (s64)c * d, exactly, for 32-bit integer inputs. */
export function mulGreater(a: number, b: number, c: number, d: number): boolean {
  const x = a * b;
  const y = c * d;
  if (x < EXACT && x > -EXACT && y < EXACT && y > -EXACT) return x > y;
  return BigInt(a) * BigInt(b) > BigInt(c) * BigInt(d);
}

/** (s64)a * b < (s64)c * d, exactly, for 32-bit integer inputs. */
export function mulLess(a: number, b: number, c: number, d: number): boolean {
  return mulGreater(c, d, a, b);
}
