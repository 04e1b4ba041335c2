import { describe, expect, it } from 'vitest';
import { arrivalSchedule, parseRates } from '../../packages/deployments/src/bench/arrivals.js';
import { createRng } from '../../packages/deployments/src/bench/rng.js';

const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const gaps = (t: number[]) => t.slice(1).map((v, i) => v - t[i]!);
const cv = (xs: number[]) => {
  const m = mean(xs);
  return Math.sqrt(mean(xs.map((x) => (x - m) ** 2))) / m;
};

describe('arrivalSchedule', () => {
  it('starts at 0, never goes back, and is reproducible from the seed', () => {
    const a = arrivalSchedule({ count: 500, rate: 10 }, createRng(7));
    expect(a[0]).toBe(0);
    for (let i = 1; i < a.length; i++) expect(a[i]).toBeGreaterThanOrEqual(a[i - 1]!);
    expect(arrivalSchedule({ count: 500, rate: 10 }, createRng(7))).toEqual(a);
    expect(arrivalSchedule({ count: 500, rate: 10 }, createRng(8))).not.toEqual(a);
  });

  it('keeps the mean gap at 1/rate for Poisson and for gamma arrivals', () => {
    for (const burstiness of [0.5, 1, 4]) {
      const g = gaps(arrivalSchedule({ count: 20_000, rate: 5, burstiness }, createRng(1)));
      expect(mean(g)).toBeGreaterThan(200 * 0.95);
      expect(mean(g)).toBeLessThan(200 * 1.05);
    }
  });

  it('burstiness sets the spread: CV ≈ 1/sqrt(k) (1 for Poisson)', () => {
    const spread = (k: number) => cv(gaps(arrivalSchedule({ count: 20_000, rate: 5, burstiness: k }, createRng(2))));
    expect(spread(1)).toBeCloseTo(1, 1);
    expect(spread(4)).toBeCloseTo(0.5, 1);
    expect(spread(0.25)).toBeGreaterThan(1.7);
  });

  it('sends everything at once for an infinite rate, and refuses nonsense', () => {
    expect(arrivalSchedule({ count: 4, rate: Infinity }, createRng())).toEqual([0, 0, 0, 0]);
    expect(() => arrivalSchedule({ count: 4, rate: 0 }, createRng())).toThrow(/rate/);
    expect(() => arrivalSchedule({ count: 4, rate: 1, burstiness: 0 }, createRng())).toThrow(/burstiness/);
  });
});

describe('parseRates', () => {
  it('reads a sweep with inf', () => {
    expect(parseRates('1, 2,4,inf')).toEqual([1, 2, 4, Infinity]);
    expect(() => parseRates('1,x')).toThrow(/'x'/);
    expect(() => parseRates('0')).toThrow();
  });
});
