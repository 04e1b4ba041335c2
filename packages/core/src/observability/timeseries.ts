/**
 * The dashboard's time series, derived from plain data: each sample reads the instance's ServeStatus
 * (replicas, queues, targets) and a snapshot of the Prometheus registry as JSON (the same numbers
 * /metrics serves), and turns counter and histogram deltas since the previous snapshot into rates and
 * latency percentiles per deployment. Pure functions; the timer lives in dashboard-sampler.ts.
 */
import type { DeploymentStatusInfo, ServeStatus } from '../contract/status.js';

/** prom-client's getMetricsAsJSON() entries, reduced to what is read here. */
export interface MetricJson {
  name: string;
  type: string;
  values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
}

export interface LlmPoint {
  tokensPerS: number | null;
  ttftP50Ms: number | null;
  ttftP99Ms: number | null;
  /** KV blocks in use, 0..1. */
  kvUsage: number | null;
  /** Prefix-cache hit tokens / queried tokens over the interval, 0..1. */
  prefixHitRate: number | null;
}

export interface DeploymentPoint {
  status: string;
  requestsPerS: number;
  errorsPerS: number;
  /** Latency percentiles over the interval (null: no request finished). */
  p50Ms: number | null;
  p99Ms: number | null;
  ongoing: number;
  queued: number;
  targetReplicas: number;
  running: number;
  starting: number;
  unhealthy: number;
  llm?: LlmPoint;
  /** For a deployment with cost prices (DeploymentStatusInfo.cost). */
  cost?: CostPoint;
}

/** A deployment's cost so far: dollars, and dollars per 1,000 tokens its replicas reported (null before any). */
export interface CostPoint {
  usd: number;
  per1kTokensUsd: number | null;
}

/** Cost per 1K tokens since the deployment started: every dollar it cost (replica-hours included) over its tokens. Pure. */
export function costPoint(cost: NonNullable<DeploymentStatusInfo['cost']>): CostPoint {
  const tokens = cost.promptTokens + cost.completionTokens;
  return { usd: cost.usd, per1kTokensUsd: tokens > 0 ? (cost.usd / tokens) * 1000 : null };
}

export interface Sample {
  /** Epoch ms. */
  t: number;
  /** Keyed 'app/deployment'. */
  deployments: Record<string, DeploymentPoint>;
}

/** Cumulative histogram per key: upper bounds ascending (the last +Inf), counts cumulative. */
export interface Histo {
  le: number[];
  counts: number[];
  sum: number;
  count: number;
}

/** What a sample keeps of the registry, to subtract from at the next one. */
export interface Counters {
  histograms: Map<string, Histo>;
  totals: Map<string, number>;
  gauges: Map<string, number>;
}

const LATENCY = ['flotilla_deployment_request_latency_seconds', 'flotilla_request_latency_seconds'];
const ERRORS = ['flotilla_deployment_request_errors_total', 'flotilla_request_errors_total'];
const LLM = {
  tokens: 'flotilla_llm_generation_tokens_total',
  ttft: 'flotilla_llm_time_to_first_token_seconds',
  kv: 'flotilla_llm_kv_cache_usage_perc',
  hits: 'flotilla_llm_prefix_cache_hits_total',
  queries: 'flotilla_llm_prefix_cache_queries_total',
};

/** 'app/deployment' of a series, or for replica-own metrics without those labels 'model:NAME'. */
function keyOf(labels: Record<string, string | number>): string | undefined {
  if (labels.app !== undefined && labels.deployment !== undefined) return `${labels.app}/${labels.deployment}`;
  return labels.model_name !== undefined ? `model:${labels.model_name}` : undefined;
}

/** Sums every series of the registry by (metric, key): methods and callers of one deployment add up. */
export function readCounters(metrics: readonly MetricJson[]): Counters {
  const out: Counters = { histograms: new Map(), totals: new Map(), gauges: new Map() };
  for (const m of metrics) {
    for (const v of m.values) {
      const key = keyOf(v.labels);
      if (key === undefined) continue;
      const id = `${m.name}|${key}`;
      if (m.type === 'histogram') addHistogramValue(out.histograms, id, m.name, v);
      else if (m.type === 'counter') out.totals.set(id, (out.totals.get(id) ?? 0) + v.value);
      else if (m.type === 'gauge') out.gauges.set(id, (out.gauges.get(id) ?? 0) + v.value);
    }
  }
  return out;
}

function addHistogramValue(into: Map<string, Histo>, id: string, name: string, v: MetricJson['values'][number]): void {
  const h = into.get(id) ?? { le: [], counts: [], sum: 0, count: 0 };
  into.set(id, h);
  if (v.metricName === `${name}_sum`) h.sum += v.value;
  else if (v.metricName === `${name}_count`) h.count += v.value;
  else if (v.metricName === `${name}_bucket`) {
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
    const at = h.le.indexOf(le);
    if (at >= 0) h.counts[at]! += v.value;
    else {
      // Series of one metric share buckets; insertion keeps them sorted even if they arrive out of order.
      let i = h.le.findIndex((x) => x > le);
      if (i < 0) i = h.le.length;
      h.le.splice(i, 0, le);
      h.counts.splice(i, 0, v.value);
    }
  }
}

/** cur − prev, bucket by bucket (a counter reset, e.g. a restarted registry, counts from zero). */
export function histogramDelta(cur: Histo, prev: Histo | undefined): Histo {
  if (!prev || prev.count > cur.count || prev.le.length !== cur.le.length) return cur;
  return {
    le: cur.le,
    counts: cur.counts.map((c, i) => c - prev.counts[i]!),
    sum: cur.sum - prev.sum,
    count: cur.count - prev.count,
  };
}

/** Prometheus's histogram_quantile: linear within the bucket holding the rank; null for no observations. */
export function histogramQuantile(q: number, h: Histo): number | null {
  const total = h.counts[h.counts.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < h.le.length; i++) {
    if (h.counts[i]! < rank) continue;
    const upper = h.le[i]!;
    // The +Inf bucket has no width: answer the largest finite bound, as Prometheus does.
    if (!Number.isFinite(upper)) return h.le[i - 1] ?? null;
    const lower = i === 0 ? 0 : h.le[i - 1]!;
    const below = i === 0 ? 0 : h.counts[i - 1]!;
    const inBucket = h.counts[i]! - below;
    return inBucket > 0 ? lower + (upper - lower) * ((rank - below) / inBucket) : upper;
  }
  return null;
}

interface Window {
  cur: Counters;
  prev: Counters | undefined;
  seconds: number;
}

function rate(w: Window, names: string[], key: string): number {
  if (!w.prev || w.seconds <= 0) return 0;
  for (const name of names) {
    const id = `${name}|${key}`;
    const cur = w.cur.totals.get(id) ?? w.cur.histograms.get(id)?.count;
    if (cur === undefined) continue;
    const prev = w.prev.totals.get(id) ?? w.prev.histograms.get(id)?.count ?? 0;
    return Math.max(0, cur - prev) / w.seconds;
  }
  return 0;
}

function quantilesMs(w: Window, names: string[], key: string): [number | null, number | null] {
  for (const name of names) {
    const id = `${name}|${key}`;
    const cur = w.cur.histograms.get(id);
    if (!cur) continue;
    const d = histogramDelta(cur, w.prev?.histograms.get(id));
    const ms = (v: number | null) => (v === null ? null : v * 1000);
    return [ms(histogramQuantile(0.5, d)), ms(histogramQuantile(0.99, d))];
  }
  return [null, null];
}

function llmPoint(w: Window, key: string): LlmPoint | undefined {
  const has = [LLM.tokens, LLM.ttft, LLM.kv].some(
    (n) => w.cur.totals.has(`${n}|${key}`) || w.cur.histograms.has(`${n}|${key}`) || w.cur.gauges.has(`${n}|${key}`),
  );
  if (!has) return undefined;
  const [ttftP50Ms, ttftP99Ms] = quantilesMs(w, [LLM.ttft], key);
  const hits = rate(w, [LLM.hits], key);
  const queries = rate(w, [LLM.queries], key);
  return {
    tokensPerS: w.prev ? rate(w, [LLM.tokens], key) : null,
    ttftP50Ms,
    ttftP99Ms,
    kvUsage: w.cur.gauges.get(`${LLM.kv}|${key}`) ?? null,
    prefixHitRate: queries > 0 ? hits / queries : null,
  };
}

function deploymentPoint(d: DeploymentStatusInfo, w: Window, key: string): DeploymentPoint {
  const count = (s: string) => d.replicas.filter((r) => r.state === s).length;
  const [p50Ms, p99Ms] = quantilesMs(w, LATENCY, key);
  const point: DeploymentPoint = {
    status: d.status,
    requestsPerS: rate(w, LATENCY, key),
    errorsPerS: rate(w, ERRORS, key),
    p50Ms,
    p99Ms,
    ongoing: d.ongoing,
    queued: d.queued,
    targetReplicas: d.targetReplicas,
    running: count('RUNNING'),
    starting: count('STARTING'),
    unhealthy: count('UNHEALTHY'),
  };
  const llm = llmPoint(w, key);
  if (llm) point.llm = llm;
  if (d.cost) point.cost = costPoint(d.cost);
  return point;
}

/** One sample from the status and the registry now, against the counters of the previous sample. */
export function takeSample(
  t: number,
  status: ServeStatus,
  cur: Counters,
  prev: { t: number; counters: Counters } | undefined,
): Sample {
  const w: Window = { cur, prev: prev?.counters, seconds: prev ? (t - prev.t) / 1000 : 0 };
  const deployments: Record<string, DeploymentPoint> = {};
  for (const app of status.applications) {
    for (const d of app.deployments)
      deployments[`${app.name}/${d.name}`] = deploymentPoint(d, w, `${app.name}/${d.name}`);
  }
  // LLM metrics a replica reports under its model name only (not yet labelled by deployment) still get plotted.
  for (const id of [...cur.totals.keys(), ...cur.gauges.keys()]) {
    const key = id.slice(id.indexOf('|') + 1);
    if (!key.startsWith('model:') || deployments[key]) continue;
    const llm = llmPoint(w, key);
    if (llm)
      deployments[key] = {
        status: 'LLM',
        requestsPerS: 0,
        errorsPerS: 0,
        p50Ms: null,
        p99Ms: null,
        ongoing: 0,
        queued: 0,
        targetReplicas: 0,
        running: 0,
        starting: 0,
        unhealthy: 0,
        llm,
      };
  }
  return { t, deployments };
}

/** A fixed-size ring of the latest items, oldest first when read. */
export class Ring<T> {
  private readonly items: T[] = [];
  private start = 0;

  constructor(readonly capacity: number) {}

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item);
    else {
      this.items[this.start] = item;
      this.start = (this.start + 1) % this.capacity;
    }
  }

  toArray(): T[] {
    return [...this.items.slice(this.start), ...this.items.slice(0, this.start)];
  }
}
