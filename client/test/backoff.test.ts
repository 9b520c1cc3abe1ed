import { describe, expect, it } from "vitest";
import { backoffCeiling, backoffDelay } from "../src/backoff.js";

describe("backoff with full jitter", () => {
  it("doubles the ceiling from 0.5 s and stops at 20 s", () => {
    const ceilings = Array.from({ length: 9 }, (_, n) => backoffCeiling(n));
    expect(ceilings).toEqual([500, 1000, 2000, 4000, 8000, 16000, 20000, 20000, 20000]);
    expect(backoffCeiling(5000)).toBe(20000);
  });

  it("stays within [0, ceiling) for the extremes of the random source", () => {
    for (let n = 0; n < 12; n++) {
      expect(backoffDelay(n, { random: () => 0 })).toBe(0);
      const top = backoffDelay(n, { random: () => 0.999999 });
      expect(top).toBeLessThan(backoffCeiling(n));
      expect(top).toBeGreaterThanOrEqual(backoffCeiling(n) - 1);
    }
  });

  it("spreads delays uniformly over the whole range (full jitter, not ± a little)", () => {
    // An evenly spread source: the delays must fill every tenth of [0, ceiling).
    const N = 1000;
    let i = 0;
    const random = () => ((i++ * 7919) % N) / N;
    const buckets = new Array(10).fill(0);
    let sum = 0;
    for (let k = 0; k < N; k++) {
      const d = backoffDelay(4, { random });
      sum += d;
      buckets[Math.floor((d / 8000) * 10)]++;
    }
    for (const b of buckets) expect(b).toBe(N / 10);
    expect(sum / N).toBeCloseTo(4000, -2);
  });

  it("takes other bounds", () => {
    expect(backoffCeiling(3, { baseMs: 100, maxMs: 500 })).toBe(500);
    expect(backoffDelay(1, { baseMs: 100, maxMs: 500, random: () => 0.5 })).toBe(100);
  });
});
