// The rate estimator against values computed by hand from ip_vs_est.c's formulas:
// rate = Δ << 9 (conns, packets) or Δ << 4 (bytes) per 2 s; avg += (rate - avg) >> 2 (signed);
// read-out (avg + 0x1FF) >> 10 and (avg + 0xF) >> 5.

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isCoreError } from "../errors.ts";
import { Counters } from "./counters.ts";
import { RateEstimator } from "./estimator.ts";

function feed(c: Counters, conns: number, inPkts: number, outPkts: number, inBytes: number, outBytes: number) {
  c.conns += conns;
  c.inPkts += inPkts;
  c.outPkts += outPkts;
  c.inBytes += inBytes;
  c.outBytes += outBytes;
}

describe("RateEstimator", () => {
  it("follows the kernel's EWMA step by step", () => {
    const est = new RateEstimator();
    const c = new Counters();
    est.add(c);
    est.tick(0);
    // Step 1: 10 conns, 100/50 packets, 2000/64000 bytes in 2 s.
    feed(c, 10, 100, 50, 2000, 64000);
    est.tick(2000);
    // cps: 10<<9 = 5120 → avg 1280 → (1280+511)>>10 = 1
    // inPps: 100<<9 = 51200 → 12800 → (12800+511)>>10 = 12 (13311 / 1024)
    // outPps: 50<<9 = 25600 → 6400 → 6
    // inBps: 2000<<4 = 32000 → 8000 → (8000+15)>>5 = 250
    // outBps: 64000<<4 = 1024000 → 256000 → 8000
    assert.deepEqual(est.raw(c), { cps: 1280, inPps: 12800, outPps: 6400, inBps: 8000, outBps: 256000 });
    assert.deepEqual(est.rates(c), { cps: 1, inPps: 12, outPps: 6, inBps: 250, outBps: 8000 });
    // Step 2: the same again. cps avg 1280 + (5120-1280)>>2 = 2240 → 2.
    feed(c, 10, 100, 50, 2000, 64000);
    est.tick(4000);
    assert.equal(est.raw(c)?.cps, 2240);
    assert.equal(est.rates(c).cps, 2);
    // Step 3: 2240 + 720 = 2960 → 3.
    feed(c, 10, 100, 50, 2000, 64000);
    est.tick(6000);
    assert.equal(est.raw(c)?.cps, 2960);
    assert.equal(est.rates(c).cps, 3);
    // Traffic stops: 2960 + floor(-2960/4) = 2220.
    est.tick(8000);
    assert.equal(est.raw(c)?.cps, 2220);
  });

  it("converges to the true per-second rate", () => {
    const est = new RateEstimator();
    const c = new Counters();
    est.add(c);
    est.tick(0);
    for (let t = 2000; t <= 200_000; t += 2000) {
      feed(c, 10, 2000, 1000, 3_000_000, 200_000);
      est.tick(t);
    }
    assert.deepEqual(est.rates(c), { cps: 5, inPps: 1000, outPps: 500, inBps: 1_500_000, outBps: 100_000 });
  });

  it("shifts signed: a small average decays to 0, not -1", () => {
    const est = new RateEstimator();
    const c = new Counters();
    est.add(c);
    est.tick(0);
    feed(c, 0, 0, 0, 1, 0);
    est.tick(2000);
    // inBps: 1<<4 = 16 → avg 4; then 4 + floor(-4/4) = 3, 3 + floor(-3/4) = 2, 1, 0, 0.
    const seen: number[] = [];
    for (let t = 4000; t <= 12000; t += 2000) {
      est.tick(t);
      seen.push(est.raw(c)?.inBps as number);
    }
    assert.deepEqual(seen, [3, 2, 1, 0, 0]);
  });

  it("runs one step per period however often tick is called", () => {
    const est = new RateEstimator();
    const c = new Counters();
    est.add(c);
    est.tick(0);
    feed(c, 4, 0, 0, 0, 0);
    est.tick(500);
    est.tick(1400);
    assert.equal(est.raw(c)?.cps, 0);
    est.tick(2000);
    assert.equal(est.raw(c)?.cps, 512);
    est.tick(2001);
    assert.equal(est.raw(c)?.cps, 512);
  });

  it("a jittery 2 s timer still gets one step per call", () => {
    const est = new RateEstimator();
    const c = new Counters();
    est.add(c);
    est.tick(0);
    // Calls 2 s apart on average, each up to 10 ms early or late.
    const calls = [2005, 3998, 6010, 7995, 10_000];
    for (const t of calls) {
      feed(c, 4, 0, 0, 0, 0);
      est.tick(t);
    }
    // Five steps of rate 4 << 9 = 2048: 512, 896, 1184, 1400, 1562.
    assert.equal(est.raw(c)?.cps, 1562);
  });

  it("reset (ipvsadm -Z) starts over; zeroed counters never give negative rates", () => {
    const est = new RateEstimator();
    const c = new Counters();
    est.add(c);
    est.tick(0);
    feed(c, 100, 100, 100, 100, 100);
    est.tick(2000);
    c.zero();
    est.reset(c);
    assert.deepEqual(est.rates(c), { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 });
    feed(c, 4, 0, 0, 0, 0);
    est.tick(4000);
    assert.equal(est.raw(c)?.cps, 512);
    // Zeroed without reset: the step restarts instead of going negative.
    c.zero();
    est.tick(6000);
    for (const v of Object.values(est.rates(c))) assert.ok(v >= 0);
  });

  it("estimates several counters independently; removed ones read zero", () => {
    const est = new RateEstimator();
    const a = new Counters();
    const b = new Counters();
    est.add(a);
    est.add(b);
    est.tick(0);
    feed(a, 8, 0, 0, 0, 0);
    est.tick(2000);
    assert.equal(est.raw(a)?.cps, 1024);
    assert.equal(est.raw(b)?.cps, 0);
    est.remove(a);
    assert.equal(est.size, 1);
    assert.deepEqual(est.rates(a), { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 });
  });

  it("rejects bad arguments", () => {
    const est = new RateEstimator();
    assert.throws(
      () => est.add({} as Counters),
      (e) => isCoreError(e) && e.op === "stats",
    );
    assert.throws(
      () => est.tick(Number.NaN),
      (e) => isCoreError(e) && e.code === "EINVAL",
    );
  });
});
