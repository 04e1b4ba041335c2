/**
 * LLMServer's vLLM/TGI compatibility policy on plain data: the speculative options (vLLM's names) → the
 * engine's, the model-name rule, TGI's parameters on /v1/completions, and the vllm: metric series fed by
 * fake engine stats and events.
 */
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { EngineEvent, LLMEngineStats } from '@flotilla/engine';
import { llmOptions } from '../../examples/llm-server.js';
import { engineSpeculation, speculationBanner } from '../../packages/deployments/src/engine-speculation.js';
import { LLMServerConfigError, ModelNotFoundError } from '../../packages/deployments/src/errors.js';
import { resolveLimits } from '../../packages/deployments/src/llm-server-options.js';
import { checkModelName } from '../../packages/deployments/src/model-name.js';
import { parseCompletionRequest } from '../../packages/deployments/src/openai/params.js';
import { VLLM_METRIC_NAMES, VllmMetrics, buckets125 } from '../../packages/deployments/src/vllm-metrics.js';
import { repoRoot } from '../helpers/models.js';

describe('speculative options (vLLM names) → the engine', () => {
  it('is off unless a draft model, k or method is given', () => {
    expect(engineSpeculation({})).toBeUndefined();
    expect(() => engineSpeculation({ promptLookupMax: 3 })).toThrow(LLMServerConfigError);
  });

  it('maps a draft model, n-gram bounds and the batch-size cut-off (more than N running: off)', () => {
    const draft = `${repoRoot}/models/flotilla-stories/draft`;
    expect(engineSpeculation({ speculativeModel: draft, numSpeculativeTokens: 3 })).toEqual({
      k: 3,
      method: 'draft',
      draftModel: draft,
    });
    expect(
      engineSpeculation({
        speculativeMethod: 'ngram',
        promptLookupMax: 5,
        promptLookupMin: 2,
        speculativeDisableByBatchSize: 4,
      }),
    ).toEqual({ k: 4, method: 'ngram', ngram: { maxN: 5, minN: 2 }, disableByBatchSize: 5 });
    expect(engineSpeculation({ numSpeculativeTokens: 2 })).toEqual({ k: 2, method: 'ngram' });
    expect(speculationBanner({ k: 3, method: 'draft', draftModel: 'd', disableByBatchSize: 5 })).toContain(
      'draft model d, 3 tokens per step, off when more than 4 decodes run',
    );
  });

  it('refuses bad combinations at construction, naming the option', () => {
    const bad = (o: Parameters<typeof engineSpeculation>[0], msg: RegExp) =>
      expect(() => engineSpeculation(o)).toThrow(msg);
    bad({ speculativeMethod: 'draft' }, /needs speculativeModel/);
    bad({ speculativeModel: '/no/such/draft' }, /does not exist/);
    bad({ numSpeculativeTokens: 0 }, /numSpeculativeTokens must be an integer in \[1, 16\]/);
    bad({ numSpeculativeTokens: 17 }, /numSpeculativeTokens/);
    bad({ numSpeculativeTokens: Number.NaN }, /numSpeculativeTokens/);
    bad({ speculativeMethod: 'ngram', promptLookupMin: 4, promptLookupMax: 2 }, /must not exceed/);
    bad({ speculativeModel: `${repoRoot}/models/flotilla-stories/draft`, promptLookupMax: 2 }, /apply to .*'ngram'/);
    bad({ speculativeMethod: 'ngram', speculativeDisableByBatchSize: 0 }, /speculativeDisableByBatchSize/);
    bad({ speculativeMethod: 'medusa' as 'ngram' }, /'draft' or 'ngram'/);
  });

  it('takes them as key=value arguments of examples/llm-server.ts', () => {
    expect(
      llmOptions({
        speculative_model: 'd',
        num_speculative_tokens: '3',
        speculative_method: 'draft',
        speculative_disable_by_batch_size: '4',
        strict_model_name: 'true',
        vllm_metrics: 'false',
      }),
    ).toEqual({
      speculativeModel: 'd',
      numSpeculativeTokens: 3,
      speculativeMethod: 'draft',
      speculativeDisableByBatchSize: 4,
      strictModelName: true,
      vllmMetrics: false,
    });
    expect(llmOptions({ speculative_method: 'ngram', prompt_lookup_max: '3', prompt_lookup_min: '2' })).toEqual({
      speculativeMethod: 'ngram',
      promptLookupMax: 3,
      promptLookupMin: 2,
    });
    expect(() => llmOptions({ speculative_method: 'eagle' })).toThrow(/speculative_method must be draft or ngram/);
    expect(() => llmOptions({ strict_model_name: 'yes' })).toThrow(/strict_model_name must be true or false/);
  });
});

describe('model names', () => {
  const model = { name: 'stories', path: 'stories', randomWeights: false, createdS: 0 };
  it('takes any name as the one served model by default (TGI), only the served name when strict (vLLM)', () => {
    for (const name of [undefined, '', 'stories', 'tgi', 'http://127.0.0.1:8000', 'gpt-4o'])
      expect(() => checkModelName(name, model)).not.toThrow();
    const strict = { ...model, strictName: true };
    expect(() => checkModelName('stories', strict)).not.toThrow();
    expect(() => checkModelName(undefined, strict)).not.toThrow();
    const err = (() => {
      try {
        checkModelName('tgi', strict);
      } catch (e) {
        return e;
      }
    })() as ModelNotFoundError;
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect([err.status, err.param]).toEqual([404, 'model']);
  });
});

describe("TGI's parameters on /v1/completions (Hugging Face's InferenceClient)", () => {
  const limits = resolveLimits({}, 512);
  // What textGeneration({ endpointUrl, inputs, parameters }) posts: parameters flattened, max_new_tokens renamed.
  const hf = { model: 'http://127.0.0.1:8000', prompt: 'Once', max_tokens: 8 };

  it('accepts details, decoder_input_details and top_n_tokens (ignored, as TGI does on this route)', () => {
    const r = parseCompletionRequest({ ...hf, details: true, decoder_input_details: false, top_n_tokens: 2 }, limits);
    expect(r.spec.params.maxTokens).toBe(8);
    expect(r.logprobs).toBeUndefined();
    expect(r.echo).toBe(false);
  });

  it('maps return_full_text to echo and do_sample: false to greedy', () => {
    expect(parseCompletionRequest({ ...hf, return_full_text: true }, limits).echo).toBe(true);
    expect(parseCompletionRequest({ ...hf, return_full_text: true, echo: false }, limits).echo).toBe(false);
    expect(parseCompletionRequest({ ...hf, do_sample: false }, limits).spec.params.temperature).toBe(0);
    expect(parseCompletionRequest({ ...hf, do_sample: false, temperature: 0.7 }, limits).spec.params.temperature).toBe(
      0.7,
    );
    expect(parseCompletionRequest({ ...hf, do_sample: true }, limits).spec.params.temperature).toBeUndefined();
  });

  it('refuses what it cannot honour, and wrong types, naming the field', () => {
    const param = (body: Record<string, unknown>) => {
      try {
        parseCompletionRequest({ ...hf, ...body }, limits);
      } catch (e) {
        return (e as { param?: string }).param;
      }
      return undefined;
    };
    expect(param({ watermark: false, typical_p: 1, truncate: null, adapter_id: null })).toBeUndefined();
    expect(param({ watermark: true })).toBe('watermark');
    expect(param({ typical_p: 0.5 })).toBe('typical_p');
    expect(param({ truncate: 10 })).toBe('truncate');
    expect(param({ adapter_id: 'lora' })).toBe('adapter_id');
    expect(param({ details: 'yes' })).toBe('details');
    expect(param({ top_n_tokens: -1 })).toBe('top_n_tokens');
    expect(param({ detials: true })).toBe('detials'); // still no silent typo
  });
});

describe('vllm: metric series', () => {
  const stats = (over: Partial<LLMEngineStats> = {}): LLMEngineStats =>
    ({
      running: 2,
      waiting: 1,
      kvUsage: 0.25,
      promptTokens: 30,
      generationTokens: 12,
      preemptions: 0,
      prefixQueryTokens: 30,
      prefixHitTokens: 8,
      ...over,
    }) as LLMEngineStats;
  const finished = (over: Partial<Extract<EngineEvent, { type: 'request-finished' }>> = {}) =>
    ({
      type: 'request-finished',
      requestId: 'r',
      index: 0,
      finishReason: 'length',
      promptTokens: 15,
      completionTokens: 6,
      cachedPromptTokens: 0,
      queueMs: 5,
      ttftMs: 40,
      e2eMs: 140,
      tpotMs: 20,
      numPreemptions: 0,
      ...over,
    }) as Extract<EngineEvent, { type: 'request-finished' }>;

  it("exposes every name with model_name and vLLM's buckets and meanings", async () => {
    const registry = new Registry();
    const m = new VllmMetrics(registry, 'stories', () => stats(), { maxModelLen: 512 });
    m.observe(finished());
    m.observe(finished({ finishReason: 'stop', completionTokens: 1, tpotMs: Number.NaN }));
    const text = await registry.metrics();
    for (const name of [...VLLM_METRIC_NAMES.gauges, ...VLLM_METRIC_NAMES.counters])
      expect(text).toMatch(new RegExp(`^${name}\\{[^}]*model_name="stories"`, 'm'));
    for (const name of VLLM_METRIC_NAMES.histograms)
      expect(text).toMatch(new RegExp(`^${name}_count\\{[^}]*model_name="stories"`, 'm'));
    expect(text).not.toContain('spec_decode'); // not speculating
    const value = (series: string) => Number(new RegExp(`^${series}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1]);
    expect(value('vllm:kv_cache_usage_perc')).toBe(0.25);
    expect(value('vllm:gpu_cache_usage_perc')).toBe(0.25);
    expect(value('vllm:prompt_tokens_total')).toBe(30);
    expect(value('vllm:generation_tokens_total')).toBe(12);
    expect(text).toMatch(/^vllm:request_success_total\{[^}]*finished_reason="length"[^}]*\} 1$/m);
    expect(text).toMatch(/^vllm:request_success_total\{[^}]*finished_reason="stop"[^}]*\} 1$/m);
    // one inter-token gap per token after the first: 5 from the first sample, none from the second
    expect(value('vllm:inter_token_latency_seconds_count')).toBe(5);
    expect(value('vllm:time_per_output_token_seconds_count')).toBe(5);
    expect(value('vllm:request_time_per_output_token_seconds_count')).toBe(1);
    expect(value('vllm:e2e_request_latency_seconds_sum')).toBeCloseTo(0.28);
    expect(value('vllm:request_prefill_time_seconds_sum')).toBeCloseTo(0.07); // (40 - 5) ms twice
    expect(value('vllm:request_decode_time_seconds_sum')).toBeCloseTo(0.2); // (140 - 40) ms twice
    expect(value('vllm:request_generation_tokens_sum')).toBe(7);
    // vLLM's bucket boundaries
    expect(text).toContain('vllm:time_to_first_token_seconds_bucket{le="2560"');
    expect(text).toContain('vllm:inter_token_latency_seconds_bucket{le="0.01"');
    expect(text).toContain('vllm:e2e_request_latency_seconds_bucket{le="7680"');
    expect(text).toContain('vllm:request_prompt_tokens_bucket{le="500"');
    expect(text).not.toContain('vllm:request_prompt_tokens_bucket{le="1000"');
  });

  it('adds the spec-decode counters when the engine speculates, positions 0..k-1 at least', async () => {
    const registry = new Registry();
    const speculative = {
      drafts: 3,
      draftTokens: 9,
      acceptedTokens: 4,
      acceptedByPosition: [2, 1, 1],
    } as LLMEngineStats['speculative'];
    new VllmMetrics(registry, 'stories', () => stats({ speculative }), { maxModelLen: 512, numSpeculativeTokens: 4 });
    const text = await registry.metrics();
    expect(text).toMatch(/^vllm:spec_decode_num_drafts_total\{[^}]*model_name="stories"[^}]*\} 3$/m);
    expect(text).toMatch(/^vllm:spec_decode_num_draft_tokens_total\{[^}]*\} 9$/m);
    expect(text).toMatch(/^vllm:spec_decode_num_accepted_tokens_total\{[^}]*\} 4$/m);
    const perPos = [
      ...text.matchAll(/^vllm:spec_decode_num_accepted_tokens_per_pos_total\{[^}]*position="(\d+)"[^}]*\} (\d+)$/gm),
    ];
    expect(perPos.map((m) => [m[1], Number(m[2])])).toEqual([
      ['0', 2],
      ['1', 1],
      ['2', 1],
      ['3', 0],
    ]);
  });

  it('builds vLLM 1-2-5 token buckets up to the context', () => {
    expect(buckets125(100)).toEqual([1, 2, 5, 10, 20, 50, 100]);
    expect(buckets125(512)).toEqual([1, 2, 5, 10, 20, 50, 100, 200, 500]);
  });
});
