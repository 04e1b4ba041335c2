/**
 * The benchmark's figures, as vLLM's serving benchmark defines them, computed from plain per-request
 * results: TTFT (send → first token), TPOT ((latency − TTFT) / (output tokens − 1), for requests with
 * more than one token), ITL (every gap between streamed chunks), E2EL (send → last byte), throughputs
 * over the run's wall time, and goodput (requests meeting every SLO, per second).
 */
import { isGood, type Slo } from './goodput.js';
import { tpotOf, type RequestResult } from './request-result.js';

export type { RequestResult } from './request-result.js';

export interface Distribution {
  mean: number;
  std: number;
  /** Keyed by percentile, e.g. { '50': …, '90': …, '99': … }. */
  percentiles: Record<string, number>;
}

export interface BenchMetrics {
  completed: number;
  failed: number;
  durationS: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  requestThroughput: number;
  outputThroughput: number;
  totalTokenThroughput: number;
  /** Good requests per second; undefined when no SLO was given. */
  goodput?: number;
  ttftMs: Distribution;
  tpotMs: Distribution;
  itlMs: Distribution;
  e2elMs: Distribution;
}

export const DEFAULT_PERCENTILES = [50, 90, 99];

/** numpy's default (linear) percentile of ascending `sorted`; NaN for an empty list. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = ((sorted.length - 1) * p) / 100;
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

export function distribution(
  values: readonly number[],
  percentiles: readonly number[] = DEFAULT_PERCENTILES,
): Distribution {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const mean = n ? sorted.reduce((s, v) => s + v, 0) / n : NaN;
  const std = n ? Math.sqrt(sorted.reduce((s, v) => s + (v - mean) ** 2, 0) / n) : NaN;
  return { mean, std, percentiles: Object.fromEntries(percentiles.map((p) => [String(p), percentile(sorted, p)])) };
}

export function computeMetrics(
  results: readonly RequestResult[],
  durationMs: number,
  opts: { slo?: Slo; percentiles?: readonly number[] } = {},
): BenchMetrics {
  const ok = results.filter((r) => r.ok);
  const durationS = durationMs / 1000;
  const totalInputTokens = ok.reduce((s, r) => s + r.promptLen, 0);
  const totalOutputTokens = ok.reduce((s, r) => s + r.outputLen, 0);
  const pct = opts.percentiles ?? DEFAULT_PERCENTILES;
  const tpots = ok.map(tpotOf).filter((v): v is number => v !== undefined);
  const per = (n: number) => (durationS > 0 ? n / durationS : 0);
  return {
    completed: ok.length,
    failed: results.length - ok.length,
    durationS,
    totalInputTokens,
    totalOutputTokens,
    requestThroughput: per(ok.length),
    outputThroughput: per(totalOutputTokens),
    totalTokenThroughput: per(totalInputTokens + totalOutputTokens),
    goodput: opts.slo ? per(ok.filter((r) => isGood(r, opts.slo!)).length) : undefined,
    ttftMs: distribution(
      ok.map((r) => r.ttftMs).filter((v) => !Number.isNaN(v)),
      pct,
    ),
    tpotMs: distribution(tpots, pct),
    itlMs: distribution(
      ok.flatMap((r) => r.itlMs),
      pct,
    ),
    e2elMs: distribution(
      ok.map((r) => r.latencyMs),
      pct,
    ),
  };
}
