/**
 * The engine's metrics with vLLM's meanings, in a registry of the replica's own: gauges read from
 * engine.stats() at scrape time, histograms fed by the engine's 'request-finished' events. The replica
 * hands the registry's JSON to the proxy's /metrics through collectMetrics() (see LLMServer). Beside the
 * flotilla_llm_ series, the same figures under vLLM's own names (vllm-metrics.ts) unless turned off.
 */
import { Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { EngineEvent, EngineStats, LLMEngine } from '@flotilla/engine';
import { VllmMetrics } from './vllm-metrics.js';
import { loraRequests, registerLoraRequestsInfo } from './vllm-lora-metric.js';

const PREFIX = 'flotilla_llm_';
/** vLLM's TTFT buckets (seconds). */
const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5];
const REQUEST_BUCKETS = [0.05, 0.1, 0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480];

type StatCounter = keyof Pick<
  EngineStats,
  'promptTokens' | 'generationTokens' | 'preemptions' | 'prefixQueryTokens' | 'prefixHitTokens'
>;

export class LLMMetrics {
  readonly registry = new Registry();
  private readonly ttft: Histogram<string>;
  private readonly itl: Histogram<string>;
  private readonly e2e: Histogram<string>;
  private readonly queue: Histogram<string>;
  private readonly success: Counter<string>;
  private unsubscribe: (() => void) | undefined;
  private engine: LLMEngine | undefined;
  private readonly vllm: VllmMetrics | undefined;

  /**
   * `opts.vllm`: also register vLLM's names (default false); `maxModelLen` bounds their token-count buckets
   * (default 2048); `numSpeculativeTokens`: the engine speculates with this k (adds the spec-decode counters);
   * `maxLoras`: the engine's LoRA slots, when it has any (adds vllm:lora_requests_info, vllm-lora-metric.ts).
   */
  constructor(
    private readonly modelName: string,
    opts: { vllm?: boolean; maxModelLen?: number; numSpeculativeTokens?: number; maxLoras?: number } = {},
  ) {
    const registers = [this.registry];
    const labelNames = ['model_name'];
    const stats = () => this.engine?.stats();
    const gauge = (name: string, help: string, read: (s: EngineStats) => number) =>
      new Gauge({
        name: PREFIX + name,
        help,
        labelNames,
        registers,
        collect() {
          const s = stats();
          if (s) this.set({ model_name: modelName }, read(s));
        },
      });
    gauge('num_requests_running', 'Requests in the running batch (vLLM num_requests_running).', (s) => s.running);
    gauge('num_requests_waiting', 'Requests waiting to be scheduled (vLLM num_requests_waiting).', (s) => s.waiting);
    gauge(
      'kv_cache_usage_perc',
      'Fraction of KV-cache blocks in use, 0..1 (vLLM kv_cache_usage_perc).',
      (s) => s.kvUsage,
    );
    const counter = (name: string, help: string, key: StatCounter) =>
      new Counter({
        name: PREFIX + name,
        help,
        labelNames,
        registers,
        collect() {
          const s = stats();
          if (s) {
            this.reset();
            this.inc({ model_name: modelName }, s[key]);
          }
        },
      });
    counter('prompt_tokens_total', 'Prompt tokens processed (prefill).', 'promptTokens');
    counter('generation_tokens_total', 'Tokens generated.', 'generationTokens');
    counter('num_preemptions_total', 'Sequences preempted (recomputed) for lack of KV blocks.', 'preemptions');
    counter('prefix_cache_queries_total', 'Prompt tokens looked up in the prefix cache.', 'prefixQueryTokens');
    counter('prefix_cache_hits_total', 'Prompt tokens found in the prefix cache.', 'prefixHitTokens');
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name: PREFIX + name, help, labelNames, buckets, registers });
    this.ttft = histogram('time_to_first_token_seconds', 'Arrival to first generated token.', TTFT_BUCKETS);
    this.itl = histogram(
      'inter_token_latency_seconds',
      'Time between consecutive generated tokens of a sample.',
      ITL_BUCKETS,
    );
    this.e2e = histogram('e2e_request_latency_seconds', 'Arrival to finish of a sample.', REQUEST_BUCKETS);
    this.queue = histogram(
      'request_queue_time_seconds',
      'Arrival to first scheduling (time spent waiting).',
      REQUEST_BUCKETS,
    );
    this.success = new Counter({
      name: `${PREFIX}request_success_total`,
      help: 'Finished samples by finish reason.',
      labelNames: ['model_name', 'finished_reason'],
      registers,
    });
    if (opts.vllm)
      this.vllm = new VllmMetrics(this.registry, modelName, () => this.engine?.stats(), {
        maxModelLen: opts.maxModelLen ?? 2048,
        ...(opts.numSpeculativeTokens !== undefined ? { numSpeculativeTokens: opts.numSpeculativeTokens } : {}),
      });
    if (opts.vllm && opts.maxLoras)
      registerLoraRequestsInfo(this.registry, opts.maxLoras, () =>
        this.engine ? loraRequests(this.engine) : undefined,
      );
  }

  /** Starts observing `engine` (once loaded). */
  attach(engine: LLMEngine): void {
    this.engine = engine;
    this.unsubscribe = engine.onEvent((e) => this.observe(e));
  }

  detach(): void {
    this.unsubscribe?.();
    this.engine = undefined;
  }

  /** The registry as plain data (crosses the actor boundary): prom-client's getMetricsAsJSON(). */
  async snapshot(): Promise<MetricObjectWithValues<MetricValue<string>>[]> {
    return this.registry.getMetricsAsJSON();
  }

  /** One engine event; LLMFront feeds 'request-finished' events it times itself from a graph's deltas. */
  observe(e: EngineEvent): void {
    if (e.type !== 'request-finished') return;
    const labels = { model_name: this.modelName };
    if (!Number.isNaN(e.ttftMs)) this.ttft.observe(labels, e.ttftMs / 1000);
    // The engine reports the mean gap per sample; observed once per gap so counts match vLLM's per-token series
    // (through the labelled child, so that the labels are hashed once per request rather than once per token).
    if (!Number.isNaN(e.tpotMs) && e.completionTokens > 1) {
      const itl = this.itl.labels(labels);
      for (let i = 1; i < e.completionTokens; i++) itl.observe(e.tpotMs / 1000);
    }
    this.e2e.observe(labels, e.e2eMs / 1000);
    if (!Number.isNaN(e.queueMs)) this.queue.observe(labels, e.queueMs / 1000);
    this.success.inc({ ...labels, finished_reason: e.finishReason });
    this.vllm?.observe(e);
  }
}

/** Metric families of several registries, same-named ones as one family (their values side by side). */
export function mergeFamilies(registries: Array<Array<{ name: string; values: unknown[] }>>): unknown[] {
  const byName = new Map<string, { name: string; values: unknown[] }>();
  for (const families of registries)
    for (const f of families) {
      const seen = byName.get(f.name);
      if (seen) seen.values = [...seen.values, ...f.values];
      else byName.set(f.name, { ...f, values: [...f.values] });
    }
  return [...byName.values()];
}
