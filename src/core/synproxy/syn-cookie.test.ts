import assert from "node:assert/strict";
import { test } from "node:test";
import { COOKIE_MSS, type CookieOptions, cookieMssIndex, SynCookies } from "./syn-cookie.ts";

/** A deterministic random source (xorshift32), so failures reproduce. */
function rng(seed = 0x9e3779b9): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const T4 = [0x0a000002, 0x0a0000fe, (40000 << 16) | 80];
const T6 = [0x20010db8, 0, 0, 2, 0x20010db8, 0, 0, 0xfe, (40000 << 16) | 443];
const OPTS: CookieOptions = { mss: 1460, wscale: 7, sack: true, ts: true };
const PERIOD = 64_000;

test("a cookie verifies for the same tuple and ISN and returns the SYN's options", () => {
  const sc = new SynCookies(rng());
  const now = 10 * PERIOD + 5;
  for (const [tuple, opts] of [
    [T4, OPTS],
    [T6, { mss: 1220, wscale: -1, sack: false, ts: false }],
    [T4, { mss: 9000, wscale: 14, sack: false, ts: true }],
  ] as const) {
    const isn = 0xdeadbeef;
    const cookie = sc.make(tuple, tuple.length, isn, opts, now);
    const got = sc.check(tuple, tuple.length, isn, cookie, now + 1000);
    assert.deepEqual(got, { ...opts, mss: COOKIE_MSS[cookieMssIndex(opts.mss)] });
  }
});

test("a cookie fails for another tuple, another ISN, or a changed bit", () => {
  const sc = new SynCookies(rng());
  const now = 3 * PERIOD;
  const isn = 12345;
  const cookie = sc.make(T4, 3, isn, OPTS, now);
  assert.equal(sc.check([T4[0]! + 1, T4[1]!, T4[2]!], 3, isn, cookie, now), undefined, "source address");
  assert.equal(sc.check([T4[0]!, T4[1]!, T4[2]! + 1], 3, isn, cookie, now), undefined, "port");
  assert.equal(sc.check(T4, 3, isn + 1, cookie, now), undefined, "client ISN");
  for (let bit = 0; bit < 32; bit++)
    assert.equal(sc.check(T4, 3, isn, (cookie ^ (1 << bit)) >>> 0, now), undefined, `bit ${bit}`);
});

test("cookies expire after the previous period, and every period has a new key", () => {
  const sc = new SynCookies(rng());
  const t0 = 100 * PERIOD + 10;
  const cookie = sc.make(T4, 3, 7, OPTS, t0);
  assert.ok(sc.check(T4, 3, 7, cookie, t0 + PERIOD), "one period later: accepted");
  assert.equal(sc.check(T4, 3, 7, cookie, t0 + 2 * PERIOD), undefined, "two periods later: refused");
  assert.equal(sc.check(T4, 3, 7, cookie, t0 + 4 * PERIOD), undefined, "same slot four periods later: refused");
  assert.equal(sc.check(T4, 3, 7, cookie, t0 - PERIOD), undefined, "from the future: refused");
  // Same SYN in the next period: a different cookie (new key), both valid now.
  const next = sc.make(T4, 3, 7, OPTS, t0 + PERIOD);
  assert.notEqual(next, cookie);
  assert.ok(sc.check(T4, 3, 7, next, t0 + PERIOD));
});

test("a fresh instance (another secret) refuses the cookie", () => {
  const a = new SynCookies(rng(1));
  const b = new SynCookies(rng(2));
  const now = 5 * PERIOD;
  const cookie = a.make(T4, 3, 99, OPTS, now);
  b.make(T4, 3, 99, OPTS, now); // b has a key for this period too
  assert.equal(b.check(T4, 3, 99, cookie, now), undefined);
});

test("random ACKs almost never pass (the 21-bit MAC)", () => {
  const sc = new SynCookies(rng());
  const now = 9 * PERIOD;
  sc.make(T4, 3, 1, OPTS, now);
  const r = rng(77);
  let passed = 0;
  for (let i = 0; i < 200_000; i++) if (sc.check(T4, 3, 1, r(), now)) passed++;
  // Expected 200000 * 2/4 (accepted slots) * 2^-21 ≈ 0.05.
  assert.ok(passed <= 2, `${passed} random cookies passed`);
});

test("mayHaveIssued is false until a cookie was made and after it can no longer be accepted", () => {
  const sc = new SynCookies(rng());
  const now = 20 * PERIOD;
  assert.equal(sc.mayHaveIssued(now), false);
  sc.make(T4, 3, 1, OPTS, now);
  assert.equal(sc.mayHaveIssued(now + PERIOD), true);
  assert.equal(sc.mayHaveIssued(now + 2 * PERIOD), false);
});

test("the MSS is rounded down to a table entry; below the table it is the minimum", () => {
  assert.equal(COOKIE_MSS[cookieMssIndex(1460)], 1460);
  assert.equal(COOKIE_MSS[cookieMssIndex(1459)], 1452);
  assert.equal(COOKIE_MSS[cookieMssIndex(65495)], 8960);
  assert.equal(COOKIE_MSS[cookieMssIndex(100)], 536);
});

test("a tuple of the wrong size is refused", () => {
  const sc = new SynCookies(rng());
  assert.throws(() => sc.make([1, 2], 2, 0, OPTS, 0), /3 \(IPv4\) or 9 \(IPv6\)/);
});
