import { describe, expect, it } from 'vitest';
import { isGood, parseGoodput } from '../../packages/deployments/src/bench/goodput.js';
import {
  computeMetrics,
  distribution,
  percentile,
  type RequestResult,
} from '../../packages/deployments/src/bench/stats.js';

const req = (o: Partial<RequestResult>): RequestResult => ({
  ok: true,
  promptLen: 10,
  outputLen: 5,
  ttftMs: 100,
  itlMs: [10, 10, 10, 10],
  latencyMs: 140,
  startMs: 0,
  ...o,
});

describe('percentile', () => {
  it('matches numpy linear interpolation', () => {
    const xs = [1, 2, 3, 4];
    expect(percentile(xs, 0)).toBe(1);
    expect(percentile(xs, 50)).toBe(2.5);
    expect(percentile(xs, 90)).toBeCloseTo(3.7);
    expect(percentile(xs, 100)).toBe(4);
    expect(percentile([7], 99)).toBe(7);
    expect(percentile([], 50)).toBeNaN();
  });

  it('distribution sorts, and its percentiles are ordered', () => {
    const d = distribution([9, 1, 5, 3, 7, 100], [50, 90, 99]);
    expect(d.mean).toBeCloseTo(125 / 6);
    expect(d.percentiles['50']).toBe(6);
    expect(d.percentiles['50']!).toBeLessThanOrEqual(d.percentiles['90']!);
    expect(d.percentiles['90']!).toBeLessThanOrEqual(d.percentiles['99']!);
  });
});

describe('computeMetrics', () => {
  it('adds up counts and tokens, and divides by the duration', () => {
    const results = [
      req({}),
      req({ outputLen: 3, latencyMs: 120, itlMs: [10, 10] }),
      req({ ok: false, error: 'boom', outputLen: 0 }),
    ];
    const m = computeMetrics(results, 2000);
    expect(m.completed + m.failed).toBe(3);
    expect(m.failed).toBe(1);
    expect(m.totalInputTokens).toBe(20);
    expect(m.totalOutputTokens).toBe(8);
    expect(m.requestThroughput).toBe(1);
    expect(m.outputThroughput).toBe(4);
    expect(m.totalTokenThroughput).toBe(14);
    expect(m.goodput).toBeUndefined();
  });

  it('computes TPOT as (latency - ttft) / (tokens - 1) and skips one-token answers', () => {
    const m = computeMetrics([req({}), req({ outputLen: 1, itlMs: [], latencyMs: 100 })], 1000);
    expect(m.tpotMs.mean).toBe(10);
    expect(m.tpotMs.percentiles['50']).toBe(10);
    expect(m.ttftMs.mean).toBe(100);
    expect(m.itlMs.mean).toBe(10);
    expect(m.e2elMs.percentiles['99']).toBeCloseTo(139.6);
  });

  it('goodput counts only requests meeting every SLO', () => {
    const results = [req({}), req({ ttftMs: 300, latencyMs: 340 }), req({ latencyMs: 1000 })];
    const slo = parseGoodput(['ttft:200', 'tpot:50']);
    expect(slo).toEqual({ ttftMs: 200, tpotMs: 50 });
    expect(results.map((r) => isGood(r, slo))).toEqual([true, false, false]);
    expect(computeMetrics(results, 1000, { slo }).goodput).toBe(1);
    expect(computeMetrics(results, 1000, { slo: parseGoodput(['e2el:500']) }).goodput).toBe(2);
  });

  it('refuses malformed SLOs', () => {
    expect(() => parseGoodput(['ttft'])).toThrow(/NAME:MS/);
    expect(() => parseGoodput(['speed:3'])).toThrow();
    expect(() => parseGoodput(['ttft:-1'])).toThrow();
  });
});
