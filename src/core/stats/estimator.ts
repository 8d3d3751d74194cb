// Rate estimation as the kernel's ip_vs_est.c does it: every 2 seconds each registered set of
// counters is sampled, the increase since the last sample is turned into a scaled per-second
// rate, and a moving average is updated with weight 1/4:
//
//   rate = Δconns << 9, Δpackets << 9   (per-2-s delta → per-second rate × 2^10)
//   rate = Δbytes << 4                   (per-2-s delta → per-second rate × 2^5)
//   avg += (rate - avg) >> 2             (signed, arithmetic shift)
//
// Read-out rounds to the nearest unit: cps/pps = (avg + 0x1FF) >> 10, bps = (avg + 0xF) >> 5.
// Byte counts exceed 32 bits, so the arithmetic is done on doubles with floor division, which
// equals the kernel's 64-bit shifts for every value a counter can reach (below 2^53).

import { CoreError } from "../errors.ts";
import { Counters } from "./counters.ts";

/** Estimator read-out (ipvsadm --rate): connections, packets and bytes per second. */
export interface Rates {
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

/** The sampling period, ms. */
export const ESTIMATOR_PERIOD_MS = 2000;

interface EstimatorState {
  lastConns: number;
  lastInPkts: number;
  lastOutPkts: number;
  lastInBytes: number;
  lastOutBytes: number;
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

function ewma(avg: number, rate: number): number {
  return avg + Math.floor((rate - avg) / 4);
}

export class RateEstimator {
  readonly #states = new Map<Counters, EstimatorState>();
  #next = Number.NaN;

  /** Start estimating these counters (ip_vs_start_estimator): the average starts at 0. */
  add(c: Counters): void {
    if (!(c instanceof Counters)) throw new CoreError("EINVAL", "stats", `Invalid counters "${String(c)}"`);
    if (this.#states.has(c)) return;
    this.#states.set(c, {
      lastConns: c.conns,
      lastInPkts: c.inPkts,
      lastOutPkts: c.outPkts,
      lastInBytes: c.inBytes,
      lastOutBytes: c.outBytes,
      cps: 0,
      inPps: 0,
      outPps: 0,
      inBps: 0,
      outBps: 0,
    });
  }

  /** Stop estimating these counters. */
  remove(c: Counters): void {
    this.#states.delete(c);
  }

  /** Counters being estimated. */
  get size(): number {
    return this.#states.size;
  }

  /**
   * Reset after the counters were zeroed (ipvsadm -Z; the kernel's ip_vs_zero_estimator): the
   * last samples become the current values and the averages 0.
   */
  reset(c: Counters): void {
    const s = this.#states.get(c);
    if (s === undefined) return;
    s.lastConns = c.conns;
    s.lastInPkts = c.inPkts;
    s.lastOutPkts = c.outPkts;
    s.lastInBytes = c.inBytes;
    s.lastOutBytes = c.outBytes;
    s.cps = 0;
    s.inPps = 0;
    s.outPps = 0;
    s.inBps = 0;
    s.outBps = 0;
  }

  /**
   * Advance to `now` (ms). One estimation step runs when a period has passed since the previous
   * step, give or take a quarter period of timer jitter (the first call only starts the clock);
   * call it every 2 s. A late call runs one step, not several, like a kernel timer that fired
   * late.
   */
  tick(now: number): void {
    if (typeof now !== "number" || !Number.isFinite(now))
      throw new CoreError("EINVAL", "stats", `Invalid time "${String(now)}"`);
    if (Number.isNaN(this.#next)) {
      this.#next = now + ESTIMATOR_PERIOD_MS;
      return;
    }
    // A timer set to 2 s fires a little late or early from one call to the next; accept a call
    // up to a quarter period early so that a jittery 2 s timer still gets one step per call.
    if (now < this.#next - ESTIMATOR_PERIOD_MS / 4) return;
    this.#next = now - this.#next >= ESTIMATOR_PERIOD_MS ? now + ESTIMATOR_PERIOD_MS : this.#next + ESTIMATOR_PERIOD_MS;
    this.step();
  }

  /** One 2-second estimation step over every registered set of counters. */
  step(): void {
    for (const [c, s] of this.#states) {
      // A counter that went backwards was zeroed without reset(): restart from the new values
      // rather than feed a negative delta into the average.
      if (c.conns < s.lastConns || c.inPkts < s.lastInPkts || c.outPkts < s.lastOutPkts) this.reset(c);
      if (c.inBytes < s.lastInBytes || c.outBytes < s.lastOutBytes) this.reset(c);
      s.cps = ewma(s.cps, (c.conns - s.lastConns) * 512);
      s.inPps = ewma(s.inPps, (c.inPkts - s.lastInPkts) * 512);
      s.outPps = ewma(s.outPps, (c.outPkts - s.lastOutPkts) * 512);
      s.inBps = ewma(s.inBps, (c.inBytes - s.lastInBytes) * 16);
      s.outBps = ewma(s.outBps, (c.outBytes - s.lastOutBytes) * 16);
      s.lastConns = c.conns;
      s.lastInPkts = c.inPkts;
      s.lastOutPkts = c.outPkts;
      s.lastInBytes = c.inBytes;
      s.lastOutBytes = c.outBytes;
    }
  }

  /** Per-second rates of these counters (zeros when they are not being estimated). */
  rates(c: Counters): Rates {
    const s = this.#states.get(c);
    if (s === undefined) return { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };
    return {
      cps: Math.floor((s.cps + 0x1ff) / 1024),
      inPps: Math.floor((s.inPps + 0x1ff) / 1024),
      outPps: Math.floor((s.outPps + 0x1ff) / 1024),
      inBps: Math.floor((s.inBps + 0xf) / 32),
      outBps: Math.floor((s.outBps + 0xf) / 32),
    };
  }

  /** The raw scaled averages (for tests against the kernel's formulas). */
  raw(c: Counters): Rates | undefined {
    const s = this.#states.get(c);
    return s && { cps: s.cps, inPps: s.inPps, outPps: s.outPps, inBps: s.inBps, outBps: s.outBps };
  }
}
