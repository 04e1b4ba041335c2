import { Histogram, Counter, Gauge, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ServeStatus } from '../../packages/core/src/contract/status.js';
import { parsePrometheusText } from '../../packages/core/src/observability/prom-text.js';
import {
  histogramDelta,
  histogramQuantile,
  readCounters,
  Ring,
  takeSample,
  type MetricJson,
} from '../../packages/core/src/observability/timeseries.js';

const status = (ongoing = 0): ServeStatus => ({
  startedAtMs: 0,
  applications: [
    {
      name: 'app',
      routePrefix: '/',
      status: 'RUNNING',
      deployments: [
        {
          name: 'Dep',
          status: 'HEALTHY',
          targetReplicas: 2,
          queued: 1,
          ongoing,
          replicas: [
            { id: 'r1', state: 'RUNNING', placement: 'thread', node: 'local', ongoing, startedAtMs: 0 },
            { id: 'r2', state: 'STARTING', placement: 'thread', node: 'local', ongoing: 0, startedAtMs: 0 },
          ],
        },
      ],
    },
  ],
});

function registry() {
  const reg = new Registry();
  const latency = new Histogram({
    name: 'flotilla_deployment_request_latency_seconds',
    help: 'h',
    labelNames: ['app', 'deployment', 'method', 'caller'],
    buckets: [0.01, 0.1, 1],
    registers: [reg],
  });
  const errors = new Counter({
    name: 'flotilla_deployment_request_errors_total',
    help: 'e',
    labelNames: ['app', 'deployment', 'method', 'caller', 'code'],
    registers: [reg],
  });
  const json = async () => (await reg.getMetricsAsJSON()) as unknown as MetricJson[];
  return { reg, latency, errors, json };
}

describe('histogram math', () => {
  const h = { le: [0.01, 0.1, 1, Infinity], counts: [10, 60, 100, 100], sum: 0, count: 100 };

  it('interpolates quantiles within the bucket, like histogram_quantile', () => {
    expect(histogramQuantile(0.05, h)).toBeCloseTo(0.005);
    expect(histogramQuantile(0.5, h)).toBeCloseTo(0.01 + 0.09 * (40 / 50));
    expect(histogramQuantile(0.99, h)).toBeCloseTo(0.1 + 0.9 * (39 / 40));
    expect(histogramQuantile(0.5, { le: [1, Infinity], counts: [0, 0], sum: 0, count: 0 })).toBeNull();
    expect(histogramQuantile(0.99, { le: [1, Infinity], counts: [0, 5], sum: 0, count: 5 })).toBe(1);
  });

  it('subtracts the previous snapshot bucket by bucket, and treats a reset as a fresh start', () => {
    const prev = { le: h.le, counts: [5, 30, 50, 50], sum: 0, count: 50 };
    expect(histogramDelta(h, prev).counts).toEqual([5, 30, 50, 50]);
    expect(histogramDelta(prev, h)).toBe(prev);
  });
});

describe('takeSample', () => {
  it('sums methods and callers per deployment and turns deltas into rates and percentiles', async () => {
    const { latency, errors, json } = registry();
    latency.observe({ app: 'app', deployment: 'Dep', method: 'a', caller: 'ingress' }, 0.005);
    const first = readCounters(await json());
    const s0 = takeSample(1000, status(), first, undefined);
    expect(s0.deployments['app/Dep']).toMatchObject({
      requestsPerS: 0,
      p50Ms: 5,
      ongoing: 0,
      queued: 1,
      targetReplicas: 2,
      running: 1,
      starting: 1,
    });

    for (let i = 0; i < 10; i++)
      latency.observe({ app: 'app', deployment: 'Dep', method: 'a', caller: 'ingress' }, 0.05);
    for (let i = 0; i < 10; i++)
      latency.observe({ app: 'app', deployment: 'Dep', method: 'b', caller: 'replica' }, 0.5);
    errors.inc({ app: 'app', deployment: 'Dep', method: 'b', caller: 'replica', code: 'USER_ERROR' }, 4);
    const s1 = takeSample(3000, status(3), readCounters(await json()), { t: 1000, counters: first });
    const p = s1.deployments['app/Dep']!;
    expect(p.requestsPerS).toBe(10);
    expect(p.errorsPerS).toBe(2);
    // Half the interval's calls are in (0.01, 0.1], half in (0.1, 1]: the median sits at the boundary.
    expect(p.p50Ms).toBeCloseTo(100);
    expect(p.p99Ms!).toBeGreaterThan(900);
    expect(p.ongoing).toBe(3);
    expect(p.llm).toBeUndefined();
  });

  it('reads LLM figures, also from replica metrics labelled only by model', async () => {
    const reg = new Registry();
    const labelNames = ['model_name'];
    const tokens = new Counter({
      name: 'flotilla_llm_generation_tokens_total',
      help: 't',
      labelNames,
      registers: [reg],
    });
    const kv = new Gauge({ name: 'flotilla_llm_kv_cache_usage_perc', help: 'k', labelNames, registers: [reg] });
    const hits = new Counter({ name: 'flotilla_llm_prefix_cache_hits_total', help: 'h', labelNames, registers: [reg] });
    const queries = new Counter({
      name: 'flotilla_llm_prefix_cache_queries_total',
      help: 'q',
      labelNames,
      registers: [reg],
    });
    const ttft = new Histogram({
      name: 'flotilla_llm_time_to_first_token_seconds',
      help: 'f',
      labelNames,
      buckets: [0.01, 0.1],
      registers: [reg],
    });
    const json = async () => (await reg.getMetricsAsJSON()) as unknown as MetricJson[];
    const m = { model_name: 'tiny' };
    tokens.inc(m, 100);
    const first = readCounters(await json());
    tokens.inc(m, 50);
    kv.set(m, 0.25);
    hits.inc(m, 30);
    queries.inc(m, 120);
    ttft.observe(m, 0.05);
    const s = takeSample(2000, status(), readCounters(await json()), { t: 1000, counters: first });
    expect(s.deployments['model:tiny']!.llm).toEqual({
      tokensPerS: 50,
      kvUsage: 0.25,
      prefixHitRate: 0.25,
      ttftP50Ms: expect.closeTo(55, 5),
      ttftP99Ms: expect.closeTo(99.1, 5),
    });
  });
});

describe('Ring', () => {
  it('keeps the latest items, oldest first', () => {
    const r = new Ring<number>(3);
    for (let i = 1; i <= 5; i++) r.push(i);
    expect(r.toArray()).toEqual([3, 4, 5]);
    const small = new Ring<number>(3);
    small.push(1);
    expect(small.toArray()).toEqual([1]);
  });
});

describe('parsePrometheusText', () => {
  it('reads /metrics text into the same counters as the registry JSON', async () => {
    const { reg, latency, errors, json } = registry();
    latency.observe({ app: 'app', deployment: 'Dep', method: 'a', caller: 'ingress' }, 0.05);
    latency.observe({ app: 'app', deployment: 'Dep', method: 'a "q"', caller: 'replica' }, 2);
    errors.inc({ app: 'app', deployment: 'Dep', method: 'a', caller: 'ingress', code: 'X' });
    const fromText = readCounters(parsePrometheusText(await reg.metrics()));
    expect(fromText).toEqual(readCounters(await json()));
    expect(fromText.histograms.get('flotilla_deployment_request_latency_seconds|app/Dep')!.counts).toEqual([
      0, 1, 1, 2,
    ]);
  });
});
