/**
 * The TGI-compatible API of LLMServer through a real `serve run` on stories260K, with plain fetch:
 * /generate, /generate_stream (token events, the last with generated_text and details), /info, /health.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithModels, models } from '../helpers/models.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { eventually } from '../helpers/eventually.js';

let server: ServeRun;

const post = (path: string, body: unknown) =>
  fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

function sseEvents(text: string): unknown[] {
  return text
    .split('\n\n')
    .filter(Boolean)
    .map((e) => {
      expect(e.startsWith('data: ')).toBe(true);
      return JSON.parse(e.slice(6));
    });
}

describeWithModels('LLMServer: TGI API through serve run (stories260K)', () => {
  beforeAll(async () => {
    server = await serveRun(['examples/llm-server.ts:app', `model=${models.stories260K}`]);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('answers /health 200 and /info with the model and its limits', async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const info = await (await fetch(`${server.url}/info`)).json();
    expect(info).toMatchObject({
      model_id: 'stories260K',
      max_total_tokens: 512,
      max_input_tokens: 511,
      router: 'flotilla',
      random_weights: false,
    });
  });

  it('generates greedily by default, with details', async () => {
    const res = await post('/generate', {
      inputs: 'Once upon a time',
      parameters: { max_new_tokens: 10, details: true },
    });
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body.generated_text).toBe(', there was a little girl named Lily');
    expect(body.details.finish_reason).toBe('length');
    expect(body.details.generated_tokens).toBe(10);
    expect(body.details.tokens).toHaveLength(10);
    expect(body.details.tokens[0]).toMatchObject({ text: ',', special: false });
    expect(body.details.tokens[0].logprob).toBeLessThanOrEqual(0);
  });

  it('returns the input tokens with their logprobs in details.prefill with decoder_input_details', async () => {
    const body = await (
      await post('/generate', {
        inputs: 'Once upon a time',
        parameters: { max_new_tokens: 4, details: true, decoder_input_details: true },
      })
    ).json();
    expect(body.generated_text).toBe(', there was a');
    const prefill = body.details.prefill as Array<{ id: number; text: string; logprob: number | null }>;
    expect(prefill).toHaveLength(5);
    expect(prefill[0]!.logprob).toBeNull();
    expect(prefill.slice(1).every((t) => t.logprob !== null && t.logprob < 0)).toBe(true);
    expect(prefill.map((t) => t.text).join('')).toContain('upon a time');
    const plain = await (
      await post('/generate', { inputs: 'Once upon a time', parameters: { max_new_tokens: 4, details: true } })
    ).json();
    expect(plain.details.prefill).toEqual([]);
  });

  it('stops at a stop sequence and says so', async () => {
    const body = await (
      await post('/generate', {
        inputs: 'Once upon a time',
        parameters: { max_new_tokens: 30, stop: [' named'], details: true },
      })
    ).json();
    expect(body.generated_text).toBe(', there was a little girl');
    expect(body.details.finish_reason).toBe('stop_sequence');
  });

  it('returns the full text when asked', async () => {
    const body = await (
      await post('/generate', { inputs: 'Once upon a time', parameters: { max_new_tokens: 3, return_full_text: true } })
    ).json();
    expect(body.generated_text.startsWith('Once upon a time')).toBe(true);
    expect(body.details).toBeUndefined();
  });

  it('streams one event per token; the last carries generated_text and details', async () => {
    const res = await post('/generate_stream', {
      inputs: 'Once upon a time',
      parameters: { max_new_tokens: 10, top_n_tokens: 2 },
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const events = sseEvents(await res.text()) as Array<{
      index: number;
      token: { id: number; text: string; logprob: number; special: boolean };
      generated_text: string | null;
      details: { finish_reason: string; generated_tokens: number; input_length: number } | null;
      top_tokens: unknown[] | null;
    }>;
    expect(events).toHaveLength(10);
    expect(events.map((e) => e.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(events.slice(0, -1).every((e) => e.generated_text === null && e.details === null)).toBe(true);
    const last = events.at(-1)!;
    expect(last.generated_text).toBe(', there was a little girl named Lily');
    expect(events.map((e) => e.token.text).join('')).toBe(last.generated_text);
    expect(last.details).toMatchObject({ finish_reason: 'length', generated_tokens: 10, input_length: 5 });
    expect(events[0]!.top_tokens).toHaveLength(2);
  });

  it('samples reproducibly with a seed', async () => {
    const ask = async () =>
      (
        await (
          await post('/generate', { inputs: 'Tom', parameters: { max_new_tokens: 12, do_sample: true, seed: 7 } })
        ).json()
      ).generated_text;
    expect(await ask()).toBe(await ask());
  });

  it('answers bad input as TGI does: 422 with error_type validation, naming the parameter', async () => {
    const res = await post('/generate', { inputs: 'x', parameters: { temperature: -1 } });
    expect(res.status).toBe(422);
    expect(await res.json()).toEqual({
      error: expect.stringContaining('parameters.temperature'),
      error_type: 'validation',
    });
    const empty = await post('/generate', { parameters: {} });
    expect(empty.status).toBe(422);
    expect(await empty.json()).toEqual({ error: expect.stringContaining('inputs'), error_type: 'validation' });
    const unknown = await post('/generate', { inputs: 'x', parameters: { max_new_tokenz: 3 } });
    expect(unknown.status).toBe(422);
    expect((await unknown.json()).error).toContain('parameters.max_new_tokenz');
    const long = await post('/generate_stream', { inputs: 'x', parameters: { max_new_tokens: 100_000 } });
    expect(long.status).toBe(422);
    expect(await long.json()).toEqual({
      error: expect.stringContaining('parameters.max_new_tokens'),
      error_type: 'validation',
    });
    const notObject = await post('/generate', ['x']);
    expect(notObject.status).toBe(422);
    expect((await notObject.json()).error_type).toBe('validation');
    // The OpenAI routes answer the same kind of error with 400, as OpenAI does.
    const openai = await post('/v1/completions', { prompt: 'x', temperature: -1 });
    expect(openai.status).toBe(400);
    expect((await openai.json()).error.param).toBe('temperature');
    expect((await fetch(`${server.url}/nope`)).status).toBe(404);
  });

  it("exposes the engine's metrics (vLLM meanings) on the proxy's /metrics, labelled by replica", async () => {
    await post('/generate', { inputs: 'Once upon a time', parameters: { max_new_tokens: 8 } });
    const text = await (await fetch(`${server.url}/metrics`)).text();
    for (const name of [
      'num_requests_running',
      'num_requests_waiting',
      'kv_cache_usage_perc',
      'prompt_tokens_total',
      'generation_tokens_total',
      'num_preemptions_total',
      'prefix_cache_queries_total',
      'prefix_cache_hits_total',
      'time_to_first_token_seconds_bucket',
      'inter_token_latency_seconds_bucket',
      'e2e_request_latency_seconds_count',
      'request_queue_time_seconds_sum',
    ]) {
      expect(text).toMatch(
        new RegExp(`^flotilla_llm_${name}\\{[^}]*model_name="stories260K"[^}]*replica="[^"]+"`, 'm'),
      );
    }
    const generated = Number(/^flotilla_llm_generation_tokens_total\{[^}]*\} (\d+)/m.exec(text)?.[1]);
    expect(generated).toBeGreaterThanOrEqual(8);
    expect(text).toMatch(/^flotilla_llm_kv_cache_usage_perc\{[^}]*\} 0$/m);
  });

  it("feeds the dashboard's LLM panels: /-/timeseries carries tokens/s, TTFT, KV usage and prefix hits", async () => {
    const llmSample = async () => {
      const ts = (await (await fetch(`${server.url}/-/timeseries`)).json()) as {
        samples: {
          deployments: Record<
            string,
            { llm?: { tokensPerS: number; ttftP50Ms: number | null; kvUsage: number; prefixHitRate: number | null } }
          >;
        }[];
      };
      return ts.samples.map((s) => Object.values(s.deployments)[0]?.llm).filter((l) => l !== undefined);
    };
    // Keep traffic going until the 1 s sampler has seen tokens flow.
    await eventually(
      async () => {
        await post('/generate', { inputs: 'Once upon a time', parameters: { max_new_tokens: 16 } });
        return llmSample();
      },
      (samples) => samples.some((l) => l!.tokensPerS > 0 && l!.ttftP50Ms !== null),
    );
    const samples = await llmSample();
    const last = samples.at(-1)!;
    expect(last.kvUsage).toBeGreaterThanOrEqual(0);
    // The hit rate of a 1 s window without prompt lookups is null (nothing to divide), not 0.
    const rates = samples.map((l) => l!.prefixHitRate).filter((r) => r !== null);
    expect(rates.length).toBeGreaterThan(0);
    for (const r of rates) expect(r >= 0 && r <= 1).toBe(true);
  });
});
