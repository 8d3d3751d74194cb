// The TCP option walk every option reader shares (tcpOptionLen) and the MSS clamp built on it.

import assert from "node:assert/strict";
import { test } from "node:test";
import { clampMss, TCP_HLEN, tcpOptionLen } from "./tcp.ts";

/** A TCP header of 20 bytes followed by `opts` (padded by the caller to a multiple of 4). */
function header(opts: number[]): Uint8Array {
  const b = new Uint8Array(TCP_HLEN + opts.length);
  b[12] = ((TCP_HLEN + opts.length) / 4) << 4;
  b.set(opts, TCP_HLEN);
  return b;
}

function kinds(b: Uint8Array): number[] {
  const out: number[] = [];
  for (let o = TCP_HLEN, n: number; (n = tcpOptionLen(b, o, b.length)) > 0; o += n) out.push(b[o]!);
  return out;
}

test("the option walk visits NOPs and options in order and stops at EOL", () => {
  // NOP, MSS 1460, NOP, NOP, SACK-permitted, EOL, then bytes after EOL that are never read.
  const b = header([1, 2, 4, 0x05, 0xb4, 1, 1, 4, 2, 0, 8, 10]);
  assert.deepEqual(kinds(b), [1, 2, 1, 1, 4]);
});

test("a malformed option list ends the walk: a length under 2, past the header, or a lone kind byte", () => {
  assert.deepEqual(kinds(header([1, 2, 1, 1])), [1], "length 1");
  assert.deepEqual(kinds(header([8, 10, 0, 0])), [], "length past the header");
  assert.deepEqual(kinds(header([1, 1, 1, 8])), [1, 1, 1], "kind without its length byte");
  assert.equal(tcpOptionLen(header([]), TCP_HLEN, TCP_HLEN), 0, "no options");
});

test("clampMss lowers an MSS above the limit, reports the change, and leaves a lower one alone", () => {
  const big = header([1, 1, 2, 4, 0x05, 0xb4, 0, 0]);
  const changes: number[][] = [];
  assert.equal(
    clampMss(big, 0, 28, 1400, (off, from, to) => changes.push([off, from, to])),
    true,
  );
  assert.deepEqual(changes, [[24, 1460, 1400]]);
  assert.equal((big[24]! << 8) | big[25]!, 1400);
  assert.equal(
    clampMss(big, 0, 28, 1440, () => assert.fail("no change expected")),
    false,
  );
});
