/**
 * Counters and histograms for the request path, registered in a prom-client Registry like its own
 * metrics and exposed the same way (text and JSON, same names, labels and bucket layout).
 *
 * Why not prom-client's Counter/Histogram here: every inc/observe validates the label object and
 * hashes it (sorting label names), which showed up in the HTTP proxy's profile at several percent of
 * a no-op request. Here a caller binds a label set once (`series(labels)`, one Map lookup by a key it
 * builds) and then only adds numbers.
 */
import type { Registry } from 'prom-client';

export type Labels = Record<string, string>;

interface MetricValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** What a prom-client Registry reads from a metric (Registry.metrics(), getMetricsAsJSON(), resetMetrics()). */
abstract class SeriesMetric<S extends { labels: Labels }> {
  readonly aggregator = 'sum';
  protected readonly all = new Map<string, S>();

  constructor(
    readonly name: string,
    readonly help: string,
    registers: Registry[],
  ) {
    for (const r of registers) r.registerMetric(this as never);
  }

  abstract readonly type: 'counter' | 'histogram';

  /** The series for `labels`, looked up by `key` (any string unique to the label values). */
  series(key: string, labels: Labels): S {
    let s = this.all.get(key);
    if (!s) {
      s = this.create(labels);
      this.all.set(key, s);
    }
    return s;
  }

  /** Zeroes every series (they stay bound: callers keep the objects series() returned). */
  reset(): void {
    for (const s of this.all.values()) this.zero(s);
  }

  get(): { name: string; help: string; type: string; values: MetricValue[]; aggregator: string } {
    const values: MetricValue[] = [];
    for (const s of this.all.values()) this.values(s, values);
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator };
  }

  protected abstract create(labels: Labels): S;
  protected abstract zero(s: S): void;
  protected abstract values(s: S, into: MetricValue[]): void;
}

export interface CounterSeries {
  readonly labels: Labels;
  value: number;
}

export class SeriesCounter extends SeriesMetric<CounterSeries> {
  readonly type = 'counter';

  protected create(labels: Labels): CounterSeries {
    return { labels, value: 0 };
  }

  protected zero(s: CounterSeries): void {
    s.value = 0;
  }

  protected values(s: CounterSeries, into: MetricValue[]): void {
    into.push({ labels: { ...s.labels }, value: s.value });
  }
}

export interface HistogramSeries {
  readonly labels: Labels;
  /** Observations per bucket (not cumulative); the last slot is +Inf. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

export class SeriesHistogram extends SeriesMetric<HistogramSeries> {
  readonly type = 'histogram';

  constructor(
    name: string,
    help: string,
    private readonly buckets: readonly number[],
    registers: Registry[],
  ) {
    super(name, help, registers);
  }

  observe(s: HistogramSeries, value: number): void {
    const b = this.buckets;
    let i = 0;
    while (i < b.length && value > b[i]!) i++;
    s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  protected create(labels: Labels): HistogramSeries {
    return { labels, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
  }

  protected zero(s: HistogramSeries): void {
    s.counts.fill(0);
    s.sum = 0;
    s.count = 0;
  }

  /** prom-client's layout: cumulative `_bucket` series with `le` first, then +Inf, `_sum` and `_count`. */
  protected values(s: HistogramSeries, into: MetricValue[]): void {
    const bucket = `${this.name}_bucket`;
    let acc = 0;
    this.buckets.forEach((le, i) => {
      acc += s.counts[i]!;
      into.push({ labels: { le, ...s.labels }, value: acc, metricName: bucket });
    });
    into.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: bucket });
    into.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
    into.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
  }
}
