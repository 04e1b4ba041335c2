/**
 * The benchmark's outputs: vLLM-style text blocks per run, a one-row-per-rate summary when sweeping,
 * and the JSON document --save-result writes.
 */
import type { BenchMetrics, Distribution } from './stats.js';

export interface RunReport {
  /** Offered requests per second (Infinity: all at once); JSON writes it as "inf". */
  requestRate: number;
  burstiness: number;
  maxConcurrency?: number;
  numPrompts: number;
  metrics: BenchMetrics;
  /** First distinct errors of failed requests, for the reader to act on. */
  errors: string[];
}

export interface BenchReport {
  date: string;
  endpoint: string;
  model: string;
  dataset: Record<string, unknown>;
  runs: RunReport[];
}

const WIDTH = 50;

function line(label: string, value: string | number, digits = 2): string {
  const text = typeof value === 'number' ? (Number.isNaN(value) ? 'n/a' : value.toFixed(digits)) : value;
  return `${label.padEnd(WIDTH - 10)}${text.padStart(10)}`;
}

function header(title: string, fill: string): string {
  const side = Math.max(1, Math.floor((WIDTH - title.length - 2) / 2));
  return `${fill.repeat(side)} ${title} ${fill.repeat(WIDTH - side - title.length - 2)}`;
}

function latencyBlock(title: string, short: string, d: Distribution): string[] {
  return [
    header(title, '-'),
    line(`Mean ${short} (ms):`, d.mean),
    line(`Std ${short} (ms):`, d.std),
    ...Object.entries(d.percentiles).map(([p, v]) => line(`${p === '50' ? 'Median' : `P${p}`} ${short} (ms):`, v)),
  ];
}

export function rateLabel(rate: number): string {
  return Number.isFinite(rate) ? String(rate) : 'inf';
}

export function renderRun(r: RunReport): string {
  const m = r.metrics;
  const out = [
    header(`Serving Benchmark Result (rate ${rateLabel(r.requestRate)})`, '='),
    line('Successful requests:', String(m.completed)),
    line('Failed requests:', String(m.failed)),
    ...(r.maxConcurrency !== undefined ? [line('Maximum request concurrency:', String(r.maxConcurrency))] : []),
    line('Benchmark duration (s):', m.durationS),
    line('Total input tokens:', String(m.totalInputTokens)),
    line('Total generated tokens:', String(m.totalOutputTokens)),
    line('Request throughput (req/s):', m.requestThroughput),
    ...(m.goodput !== undefined ? [line('Request goodput (req/s):', m.goodput)] : []),
    line('Output token throughput (tok/s):', m.outputThroughput),
    line('Total token throughput (tok/s):', m.totalTokenThroughput),
    ...latencyBlock('Time to First Token', 'TTFT', m.ttftMs),
    ...latencyBlock('Time per Output Token (excl. 1st token)', 'TPOT', m.tpotMs),
    ...latencyBlock('Inter-token Latency', 'ITL', m.itlMs),
    ...latencyBlock('End-to-end Latency', 'E2EL', m.e2elMs),
    '='.repeat(WIDTH),
  ];
  if (r.errors.length) out.push('Errors (first distinct):', ...r.errors.map((e) => `  ${e}`));
  return `${out.join('\n')}\n`;
}

/** One row per run: the figures that change along a rate sweep. */
export function renderSweep(runs: readonly RunReport[]): string {
  const cols = [
    'RATE',
    'OK',
    'FAIL',
    'REQ/S',
    'OUT TOK/S',
    'TTFT p50',
    'TTFT p99',
    'TPOT p50',
    'TPOT p99',
    'E2EL p50',
    'E2EL p99',
    'GOODPUT',
  ];
  const f = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : v.toFixed(1));
  const rows = runs.map(({ requestRate, metrics: m }) => [
    rateLabel(requestRate),
    String(m.completed),
    String(m.failed),
    f(m.requestThroughput),
    f(m.outputThroughput),
    f(m.ttftMs.percentiles['50']),
    f(m.ttftMs.percentiles['99']),
    f(m.tpotMs.percentiles['50']),
    f(m.tpotMs.percentiles['99']),
    f(m.e2elMs.percentiles['50']),
    f(m.e2elMs.percentiles['99']),
    f(m.goodput),
  ]);
  const all = [cols, ...rows];
  const widths = cols.map((_, c) => Math.max(...all.map((r) => r[c]!.length)));
  return `${all.map((r) => r.map((cell, c) => cell.padStart(widths[c]!)).join('  ')).join('\n')}\n(latencies in ms)\n`;
}

/** JSON.stringify with Infinity as "inf" and NaN as null, so the file stays valid JSON. */
export function toJson(report: BenchReport): string {
  return `${JSON.stringify(report, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? (Number.isNaN(v) ? null : 'inf') : v), 2)}\n`;
}
