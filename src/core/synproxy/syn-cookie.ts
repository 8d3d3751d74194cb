// SYN cookies for the SYN proxy: the director answers a client's SYN with a SYN-ACK whose initial
// sequence number encodes everything it must remember about the SYN, and keeps no state at all.
// Only a client that really received the SYN-ACK can echo that number + 1 in its ACK, so spoofed
// sources never cost a table entry.
//
// The cookie (tvs's own layout, in the tradition of Bernstein's SYN cookies):
//
//   32 bits = whiten XOR ( slot:2 | mss index:3 | wscale:4 | sack:1 | ts:1 | mac:21 )
//
//   slot     the time counter (now / period, 64 s by default) modulo 4;
//   mss      index into COOKIE_MSS of the largest entry not above the client's MSS;
//   wscale   the client's window scale 0..14, 15 when its SYN had none;
//   sack, ts whether its SYN offered SACK and timestamps;
//   mac      21 bits of HalfSipHash-2-4 (halfsiphash.ts) keyed with the *slot's* key over the
//            4-tuple, the client's ISN, the full counter and the 9 option bits;
//   whiten   HalfSipHash under a key that lives as long as the process, over the 4-tuple and the
//            client's ISN, so no bit of the ISN is predictable from outside.
//
// Secret rotation: every counter value gets a fresh random key, made when the first cookie of that
// period is made, and a cookie is accepted only while its period is the current or the previous
// one (between 64 and 128 s old at most) and its key is still the one that period had. A key that
// leaked or was brute-forced is therefore worth one or two periods. A random ACK passes with
// probability 2^-21 (the slot must also name an accepted period); the kernel's cookies are of the
// same strength. The client's ISN is inside the MAC, so a reconnect from the same port with a new
// ISN gets a different cookie.
//
// Pure: time is the caller's `now` (ms) and randomness the injected `random32`.

import { halfSipHashWords } from "./halfsiphash.ts";

/** The MSS values a cookie can carry (3 bits); a client's MSS is rounded down to one of them. */
export const COOKIE_MSS: readonly number[] = [536, 1220, 1360, 1400, 1440, 1452, 1460, 8960];

/** What a cookie remembers of the client's SYN. */
export interface CookieOptions {
  /** MSS to offer the real server on the client's behalf (a COOKIE_MSS value). */
  mss: number;
  /** The client's window scale 0..14, or -1 when its SYN had none. */
  wscale: number;
  sack: boolean;
  ts: boolean;
}

export const DEFAULT_COOKIE_PERIOD_MS = 64_000;
/** Accepted age in periods: the current one and the one before. */
const MAX_AGE = 1;
const MAC_BITS = 21;
const MAC_MASK = (1 << MAC_BITS) - 1;
/** Most words hashed: 8 (two IPv6 addresses) + ports + ISN + counter + options. */
const WORDS_MAX = 12;

/** Index into COOKIE_MSS for a client's MSS (0 when it is below every entry or absent). */
export function cookieMssIndex(mss: number): number {
  let i = COOKIE_MSS.length - 1;
  while (i > 0 && COOKIE_MSS[i]! > mss) i--;
  return i;
}

function optionBits(o: CookieOptions): number {
  const ws = o.wscale >= 0 && o.wscale <= 14 ? o.wscale : 15;
  return (cookieMssIndex(o.mss) << 6) | (ws << 2) | (o.sack ? 2 : 0) | (o.ts ? 1 : 0);
}

export class SynCookies {
  readonly periodMs: number;
  readonly #random32: () => number;
  /** Key per slot: the counter it belongs to and its two words. */
  readonly #keyCounter = new Float64Array(4).fill(-1);
  readonly #keys = new Int32Array(8);
  readonly #whiten0: number;
  readonly #whiten1: number;
  readonly #w = new Int32Array(WORDS_MAX);
  #lastMade = Number.NEGATIVE_INFINITY;
  /** Cookies made and ACKs accepted / refused (for counters). */
  made = 0;

  constructor(random32: () => number, periodMs = DEFAULT_COOKIE_PERIOD_MS) {
    if (!Number.isInteger(periodMs) || periodMs < 1) throw new RangeError(`Cookie period "${periodMs}" must be ≥ 1 ms`);
    this.periodMs = periodMs;
    this.#random32 = random32;
    this.#whiten0 = random32() | 0;
    this.#whiten1 = random32() | 0;
  }

  /** Whether a cookie made recently enough to be accepted now exists (else no ACK needs checking). */
  mayHaveIssued(now: number): boolean {
    return this.#counter(now) - this.#lastMade <= MAX_AGE;
  }

  /**
   * The cookie (our ISN) for a SYN from the 4-tuple `tuple` (source address words, destination
   * address words, then (sport << 16) | dport; `n` words) with initial sequence `clientIsn`.
   */
  make(tuple: ArrayLike<number>, n: number, clientIsn: number, opts: CookieOptions, now: number): number {
    const c = this.#counter(now);
    const slot = c & 3;
    if (this.#keyCounter[slot] !== c) {
      this.#keyCounter[slot] = c;
      this.#keys[slot * 2] = this.#random32() | 0;
      this.#keys[slot * 2 + 1] = this.#random32() | 0;
    }
    this.#lastMade = c;
    this.made++;
    const bits = optionBits(opts);
    const mac = this.#mac(tuple, n, clientIsn, c, bits, slot) & MAC_MASK;
    const plain = ((slot << 30) | (bits << MAC_BITS) | mac) >>> 0;
    return (plain ^ this.#whiten(tuple, n, clientIsn)) >>> 0;
  }

  /** Check the cookie an ACK returns (its ack number - 1); the SYN's options, or undefined when it is not ours or too old. */
  check(
    tuple: ArrayLike<number>,
    n: number,
    clientIsn: number,
    cookie: number,
    now: number,
  ): CookieOptions | undefined {
    const plain = (cookie ^ this.#whiten(tuple, n, clientIsn)) >>> 0;
    const slot = plain >>> 30;
    const cur = this.#counter(now);
    const c = cur - ((cur - slot) & 3);
    if (cur - c > MAX_AGE || this.#keyCounter[slot] !== c) return undefined;
    const bits = (plain >>> MAC_BITS) & 0x1ff;
    if ((this.#mac(tuple, n, clientIsn, c, bits, slot) & MAC_MASK) !== (plain & MAC_MASK)) return undefined;
    const ws = (bits >>> 2) & 15;
    return { mss: COOKIE_MSS[bits >>> 6]!, wscale: ws === 15 ? -1 : ws, sack: (bits & 2) !== 0, ts: (bits & 1) !== 0 };
  }

  #counter(now: number): number {
    return Math.floor(now / this.periodMs);
  }

  #load(tuple: ArrayLike<number>, n: number, clientIsn: number): number {
    if (n < 3 || n > WORDS_MAX - 3) throw new RangeError(`A cookie's tuple is 3 (IPv4) or 9 (IPv6) words, not ${n}`);
    const w = this.#w;
    for (let i = 0; i < n; i++) w[i] = tuple[i]!;
    w[n] = clientIsn;
    return n + 1;
  }

  #whiten(tuple: ArrayLike<number>, n: number, clientIsn: number): number {
    const len = this.#load(tuple, n, clientIsn);
    return halfSipHashWords(this.#whiten0, this.#whiten1, this.#w, len);
  }

  #mac(tuple: ArrayLike<number>, n: number, clientIsn: number, counter: number, bits: number, slot: number): number {
    const len = this.#load(tuple, n, clientIsn);
    const w = this.#w;
    w[len] = counter;
    w[len + 1] = bits;
    return halfSipHashWords(this.#keys[slot * 2]!, this.#keys[slot * 2 + 1]!, w, len + 2);
  }
}
