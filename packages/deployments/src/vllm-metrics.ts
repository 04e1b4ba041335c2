/**
 * The engine's metrics under vLLM's names (its v1 Prometheus logger, vllm/v1/metrics/loggers.py and
 * vllm/v1/spec_decode/metrics.py), with vLLM's meanings, labels (model_name, engine) and bucket
 * boundaries, so that dashboards and autoscalers written for vLLM read a Flotilla replica unchanged.
 * Names vLLM has deprecated but still exposes in recent releases (gpu_cache_usage_perc,
 * time_per_output_token_seconds) are kept beside their replacements. Registered into LLMMetrics' registry
 * (llm-metrics.ts), beside the flotilla_llm_ series.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { EngineEvent, LLMEngineStats } from '@flotilla/engine';

/** Every series exposed (as named on /metrics), so that a test holds the list. Spec-decode ones only when the engine speculates. */
export const VLLM_METRIC_NAMES = {
  gauges: [
    'vllm:num_requests_running',
    'vllm:num_requests_waiting',
    'vllm:kv_cache_usage_perc',
    'vllm:gpu_cache_usage_perc',
  ],
  counters: [
    'vllm:prompt_tokens_total',
    'vllm:generation_tokens_total',
    'vllm:num_preemptions_total',
    'vllm:prefix_cache_queries_total',
    'vllm:prefix_cache_hits_total',
    'vllm:request_success_total',
  ],
  histograms: [
    'vllm:time_to_first_token_seconds',
    'vllm:inter_token_latency_seconds',
    'vllm:time_per_output_token_seconds',
    'vllm:request_time_per_output_token_seconds',
    'vllm:e2e_request_latency_seconds',
    'vllm:request_queue_time_seconds',
    'vllm:request_inference_time_seconds',
    'vllm:request_prefill_time_seconds',
    'vllm:request_decode_time_seconds',
    'vllm:request_prompt_tokens',
    'vllm:request_generation_tokens',
  ],
  specDecode: [
    'vllm:spec_decode_num_drafts_total',
    'vllm:spec_decode_num_draft_tokens_total',
    'vllm:spec_decode_num_accepted_tokens_total',
    'vllm:spec_decode_num_accepted_tokens_per_pos_total',
  ],
  /** With LoRA slots (vllm-lora-metric.ts). */
  lora: ['vllm:lora_requests_info'],
} as const;

/** vLLM's buckets (seconds), as in its v1 Prometheus logger. */
export const VLLM_TTFT_BUCKETS = [
  0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80, 160, 640, 2560,
];
export const VLLM_ITL_BUCKETS = [
  0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, 20, 40, 80,
];
export const VLLM_REQUEST_LATENCY_BUCKETS = [
  0.3, 0.5, 0.8, 1, 1.5, 2, 2.5, 5, 10, 15, 20, 30, 40, 50, 60, 120, 240, 480, 960, 1920, 7680,
];

/** vLLM's token-count buckets: 1, 2, 5, 10, 20, 50, ... up to `max`. */
export function buckets125(max: number): number[] {
  const out: number[] = [];
  for (let scale = 1; scale <= max; scale *= 10) for (const m of [1, 2, 5]) if (m * scale <= max) out.push(m * scale);
  return out;
}

type StatCounter = 'promptTokens' | 'generationTokens' | 'preemptions' | 'prefixQueryTokens' | 'prefixHitTokens';

/** Spec-decode counters read from the engine's stats at scrape time (present only while it speculates). */
type SpecCounter = 'drafts' | 'draftTokens' | 'acceptedTokens';

export class VllmMetrics {
  private readonly labels: { model_name: string; engine: string };
  private readonly ttft: Histogram<string>;
  private readonly itl: Histogram<string>;
  private readonly tpot: Histogram<string>;
  private readonly requestTpot: Histogram<string>;
  private readonly e2e: Histogram<string>;
  private readonly queue: Histogram<string>;
  private readonly inference: Histogram<string>;
  private readonly prefill: Histogram<string>;
  private readonly decode: Histogram<string>;
  private readonly promptTokens: Histogram<string>;
  private readonly generationTokens: Histogram<string>;
  private readonly success: Counter<string>;

  /**
   * `stats`: the engine's stats, or undefined before it is attached. `maxModelLen` bounds the token-count
   * buckets; `numSpeculativeTokens`, when the engine speculates, the positions always shown (vLLM shows 0..k-1).
   */
  constructor(
    registry: Registry,
    modelName: string,
    stats: () => LLMEngineStats | undefined,
    opts: { maxModelLen: number; numSpeculativeTokens?: number },
  ) {
    const labels = { model_name: modelName, engine: '0' };
    this.labels = labels;
    const registers = [registry];
    const labelNames = ['model_name', 'engine'];
    const gauge = (name: string, help: string, read: (s: LLMEngineStats) => number) =>
      new Gauge({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const s = stats();
          if (s) this.set(labels, read(s));
        },
      });
    gauge('vllm:num_requests_running', 'Number of requests in model execution batches.', (s) => s.running);
    gauge('vllm:num_requests_waiting', 'Number of requests waiting to be processed.', (s) => s.waiting);
    gauge('vllm:kv_cache_usage_perc', 'KV-cache usage. 1 means 100 percent usage.', (s) => s.kvUsage);
    gauge(
      'vllm:gpu_cache_usage_perc',
      'KV-cache usage. 1 means 100 percent usage. DEPRECATED in vLLM: use vllm:kv_cache_usage_perc instead.',
      (s) => s.kvUsage,
    );
    const counter = (name: string, help: string, read: (s: LLMEngineStats) => number | undefined) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const s = stats();
          const v = s && read(s);
          if (v === undefined) return;
          this.reset();
          this.inc(labels, v);
        },
      });
    const stat = (key: StatCounter) => (s: LLMEngineStats) => s[key];
    counter('vllm:prompt_tokens_total', 'Number of prefill tokens processed.', stat('promptTokens'));
    counter('vllm:generation_tokens_total', 'Number of generation tokens processed.', stat('generationTokens'));
    counter('vllm:num_preemptions_total', 'Cumulative number of preemption from the engine.', stat('preemptions'));
    counter(
      'vllm:prefix_cache_queries_total',
      'Prefix cache queries, in terms of number of queried tokens.',
      stat('prefixQueryTokens'),
    );
    counter(
      'vllm:prefix_cache_hits_total',
      'Prefix cache hits, in terms of number of cached tokens.',
      stat('prefixHitTokens'),
    );
    this.success = new Counter({
      name: 'vllm:request_success_total',
      help: 'Count of successfully processed requests.',
      labelNames: [...labelNames, 'finished_reason'],
      registers,
    });
    const histogram = (name: string, help: string, buckets: number[]) =>
      new Histogram({ name, help, labelNames, buckets, registers });
    this.ttft = histogram(
      'vllm:time_to_first_token_seconds',
      'Histogram of time to first token in seconds.',
      VLLM_TTFT_BUCKETS,
    );
    this.itl = histogram(
      'vllm:inter_token_latency_seconds',
      'Histogram of inter-token latency in seconds.',
      VLLM_ITL_BUCKETS,
    );
    this.tpot = histogram(
      'vllm:time_per_output_token_seconds',
      'Histogram of time per output token in seconds. DEPRECATED in vLLM: use vllm:inter_token_latency_seconds instead.',
      VLLM_ITL_BUCKETS,
    );
    this.requestTpot = histogram(
      'vllm:request_time_per_output_token_seconds',
      'Histogram of time_per_output_token_seconds per request.',
      VLLM_ITL_BUCKETS,
    );
    this.e2e = histogram(
      'vllm:e2e_request_latency_seconds',
      'Histogram of e2e request latency in seconds.',
      VLLM_REQUEST_LATENCY_BUCKETS,
    );
    this.queue = histogram(
      'vllm:request_queue_time_seconds',
      'Histogram of time spent in WAITING phase for request.',
      VLLM_REQUEST_LATENCY_BUCKETS,
    );
    this.inference = histogram(
      'vllm:request_inference_time_seconds',
      'Histogram of time spent in RUNNING phase for request.',
      VLLM_REQUEST_LATENCY_BUCKETS,
    );
    this.prefill = histogram(
      'vllm:request_prefill_time_seconds',
      'Histogram of time spent in PREFILL phase for request.',
      VLLM_REQUEST_LATENCY_BUCKETS,
    );
    this.decode = histogram(
      'vllm:request_decode_time_seconds',
      'Histogram of time spent in DECODE phase for request.',
      VLLM_REQUEST_LATENCY_BUCKETS,
    );
    const tokenBuckets = buckets125(opts.maxModelLen);
    this.promptTokens = histogram('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', tokenBuckets);
    this.generationTokens = histogram(
      'vllm:request_generation_tokens',
      'Number of generation tokens processed.',
      tokenBuckets,
    );
    if (opts.numSpeculativeTokens !== undefined)
      this.specDecode(registers, labelNames, stats, opts.numSpeculativeTokens);
  }

  /** vLLM's spec-decode counters; per-position ones for positions 0..k-1 at least (more when a request asked a larger k). */
  private specDecode(
    registers: Registry[],
    labelNames: string[],
    stats: () => LLMEngineStats | undefined,
    k: number,
  ): void {
    const labels = this.labels;
    const counter = (name: string, help: string, key: SpecCounter) =>
      new Counter({
        name,
        help,
        labelNames,
        registers,
        collect() {
          const s = stats()?.speculative;
          if (!s) return;
          this.reset();
          this.inc(labels, s[key]);
        },
      });
    counter('vllm:spec_decode_num_drafts_total', 'Number of spec decoding drafts.', 'drafts');
    counter('vllm:spec_decode_num_draft_tokens_total', 'Number of draft tokens.', 'draftTokens');
    counter('vllm:spec_decode_num_accepted_tokens_total', 'Number of accepted tokens.', 'acceptedTokens');
    new Counter({
      name: 'vllm:spec_decode_num_accepted_tokens_per_pos_total',
      help: 'Accepted tokens per draft position.',
      labelNames: [...labelNames, 'position'],
      registers,
      collect() {
        const s = stats()?.speculative;
        if (!s) return;
        this.reset();
        const n = Math.max(k, s.acceptedByPosition.length);
        for (let i = 0; i < n; i++) this.inc({ ...labels, position: String(i) }, s.acceptedByPosition[i] ?? 0);
      },
    });
  }

  /** One finished sample (the engine's 'request-finished'): vLLM counts each of n samples as a request. */
  observe(e: Extract<EngineEvent, { type: 'request-finished' }>): void {
    const labels = this.labels;
    if (!Number.isNaN(e.ttftMs)) this.ttft.observe(labels, e.ttftMs / 1000);
    // The engine reports the mean gap per sample; observed once per gap so that counts match vLLM's
    // per-token series (through the labelled children, so that the labels are hashed once per request).
    if (!Number.isNaN(e.tpotMs) && e.completionTokens > 1) {
      const itl = this.itl.labels(labels);
      const tpot = this.tpot.labels(labels);
      const gap = e.tpotMs / 1000;
      for (let i = 1; i < e.completionTokens; i++) {
        itl.observe(gap);
        tpot.observe(gap);
      }
      this.requestTpot.observe(labels, gap);
    }
    this.e2e.observe(labels, e.e2eMs / 1000);
    if (!Number.isNaN(e.queueMs)) {
      this.queue.observe(labels, e.queueMs / 1000);
      this.inference.observe(labels, Math.max(0, e.e2eMs - e.queueMs) / 1000);
      if (!Number.isNaN(e.ttftMs)) this.prefill.observe(labels, Math.max(0, e.ttftMs - e.queueMs) / 1000);
    }
    if (!Number.isNaN(e.ttftMs)) this.decode.observe(labels, Math.max(0, e.e2eMs - e.ttftMs) / 1000);
    this.promptTokens.observe(labels, e.promptTokens);
    this.generationTokens.observe(labels, e.completionTokens);
    this.success.inc({ ...labels, finished_reason: e.finishReason });
  }
}
