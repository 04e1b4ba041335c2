/**
 * Real clients, unmodified, against `serve run examples/llm-server.ts` on stories260K: Hugging Face's
 * `@huggingface/inference` InferenceClient with `endpointUrl` (textGeneration, textGenerationStream with
 * TGI's details, chatCompletion with model 'tgi' or none) and the official `openai` client, any model name
 * taken as the served one; vLLM's metric names on the proxy's /metrics with vLLM's meanings (counts equal to
 * the requests made, token totals to the usage reported); and in-engine speculative decoding from the
 * command line (vLLM's argument names, the model as its own draft), its output identical to the plain
 * server's and its spec-decode counters consistent, on a server that refuses other model names (strict).
 */
import { InferenceClient } from '@huggingface/inference';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { VLLM_METRIC_NAMES } from '../../packages/deployments/src/vllm-metrics.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { eventually } from '../helpers/eventually.js';
import { describeWithModels, models } from '../helpers/models.js';

const KEY = 'sk-flotilla-clients-0001';
const PROMPT = 'Once upon a time';
let plain: ServeRun;
let spec: ServeRun;
let openai: OpenAI;
let hf: InferenceClient;

/** The value of one series (summed over label sets that match `labels`) in a /metrics text. */
function series(text: string, name: string, labels = ''): number {
  let total = 0;
  let found = false;
  for (const m of text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    if (!m[1]!.includes(labels)) continue;
    total += Number(m[2]);
    found = true;
  }
  if (!found) throw new Error(`no series ${name}{${labels}} in /metrics`);
  return total;
}

const scrape = async (server: ServeRun) =>
  (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();

describeWithModels('LLMServer: real clients, vLLM metrics and speculation from the command line (stories260K)', () => {
  beforeAll(async () => {
    [plain, spec] = await Promise.all([
      serveRun(['examples/llm-server.ts:app', `model=${models.stories260K}`, `admin_keys=${KEY}`]),
      serveRun([
        'examples/llm-server.ts:app',
        `model=${models.stories260K}`,
        `admin_keys=${KEY}`,
        `speculative_model=${models.stories260K}`,
        'num_speculative_tokens=3',
        'strict_model_name=true',
      ]),
    ]);
    openai = new OpenAI({ baseURL: `${plain.url}/v1`, apiKey: KEY, maxRetries: 0 });
    hf = new InferenceClient(KEY, { endpointUrl: plain.url });
  }, 180_000);
  afterAll(async () => {
    await Promise.all([plain?.stop(), spec?.stop()]);
  });

  it("Hugging Face's textGeneration, textGenerationStream (details) and chatCompletion work unmodified", async () => {
    const greedy = await openai.completions.create({
      model: 'stories260K',
      prompt: PROMPT,
      max_tokens: 12,
      temperature: 0,
    });
    const expected = greedy.choices[0]!.text;
    expect(expected.length).toBeGreaterThan(0);

    // model: the endpoint URL; TGI's parameters, flattened by the client
    const whole = await hf.textGeneration({
      inputs: PROMPT,
      parameters: { max_new_tokens: 12, do_sample: false, details: true, decoder_input_details: false },
    });
    expect(whole.generated_text).toBe(expected);
    const full = await hf.textGeneration({
      inputs: PROMPT,
      parameters: { max_new_tokens: 12, temperature: 0, return_full_text: true },
    });
    expect(full.generated_text).toBe(PROMPT + expected);

    // As on TGI's /v1/completions, the events are OpenAI completion chunks.
    let streamed = '';
    let events = 0;
    for await (const chunk of hf.textGenerationStream({
      inputs: PROMPT,
      parameters: { max_new_tokens: 12, do_sample: false, details: true, top_n_tokens: 2 },
    })) {
      const c = chunk as unknown as { model: string; choices: { text: string }[] };
      expect(c.model).toBe('stories260K');
      streamed += c.choices[0]?.text ?? '';
      events++;
    }
    expect(events).toBeGreaterThan(1);
    expect(streamed).toBe(expected);

    const messages = [{ role: 'user', content: 'Tell me a story' }];
    const reference = await openai.chat.completions.create({
      model: 'stories260K',
      messages: messages as never,
      max_tokens: 10,
      temperature: 0,
    });
    for (const model of ['tgi', undefined]) {
      const chat = await hf.chatCompletion({ ...(model ? { model } : {}), messages, max_tokens: 10, temperature: 0 });
      expect(chat.model).toBe('stories260K');
      expect(chat.choices[0]!.message.content).toBe(reference.choices[0]!.message.content);
    }
  });

  it('takes any model name as the one served model (answers carry the served name; /v1/models lists it alone)', async () => {
    const r = await openai.completions.create({ model: 'gpt-4o', prompt: PROMPT, max_tokens: 3, temperature: 0 });
    expect(r.model).toBe('stories260K');
    expect((await openai.models.list()).data.map((m) => m.id)).toEqual(['stories260K']);
    // a lookup of another model is still not found
    const other = await openai.models.retrieve('gpt-4o').catch((e: unknown) => e);
    expect((other as InstanceType<typeof OpenAI.NotFoundError>).status).toBe(404);
  });

  it("exposes vLLM's metric names with model_name, counts equal to the requests made and tokens to the usage", async () => {
    const before = await scrape(plain);
    const usages = [];
    usages.push(
      (await openai.completions.create({ model: 'x', prompt: PROMPT, max_tokens: 5, temperature: 0 })).usage!,
    );
    usages.push(
      (
        await openai.chat.completions.create({
          model: 'stories260K',
          messages: [{ role: 'user', content: 'Hi' }],
          max_tokens: 7,
          temperature: 0,
        })
      ).usage!,
    );
    const stream = await openai.completions.create({
      model: 'stories260K',
      prompt: 'Lily',
      max_tokens: 6,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    for await (const c of stream) if (c.usage) usages.push(c.usage);
    expect(usages).toHaveLength(3);
    const prompt = usages.reduce((s, u) => s + u.prompt_tokens, 0);
    const completion = usages.reduce((s, u) => s + u.completion_tokens, 0);
    const delta = (text: string, name: string, labels?: string) =>
      series(text, name, labels) - series(before, name, labels);
    const after = await eventually(
      () => scrape(plain),
      (t) => delta(t, 'vllm:e2e_request_latency_seconds_count') === 3,
    );
    for (const name of [...VLLM_METRIC_NAMES.gauges, ...VLLM_METRIC_NAMES.counters])
      expect(after).toMatch(new RegExp(`^${name}\\{[^}]*model_name="stories260K"[^}]*replica="[^"]+"`, 'm'));
    for (const name of VLLM_METRIC_NAMES.histograms)
      for (const part of ['_bucket', '_sum', '_count'])
        expect(after).toMatch(new RegExp(`^${name}${part}\\{[^}]*model_name="stories260K"`, 'm'));
    expect(after).not.toContain('vllm:spec_decode'); // this server does not speculate
    expect(delta(after, 'vllm:request_success_total')).toBe(3);
    expect(delta(after, 'vllm:request_success_total', 'finished_reason="length"')).toBe(
      usages.filter((u, i) => u.completion_tokens === [5, 7, 6][i]).length,
    );
    expect(delta(after, 'vllm:prompt_tokens_total')).toBe(prompt);
    expect(delta(after, 'vllm:generation_tokens_total')).toBe(completion);
    expect(delta(after, 'vllm:request_prompt_tokens_sum')).toBe(prompt);
    expect(delta(after, 'vllm:request_generation_tokens_sum')).toBe(completion);
    expect(delta(after, 'vllm:time_to_first_token_seconds_count')).toBe(3);
    expect(delta(after, 'vllm:inter_token_latency_seconds_count')).toBe(completion - 3);
    expect(delta(after, 'vllm:time_per_output_token_seconds_count')).toBe(completion - 3);
    // the same figures as Flotilla's own series
    expect(series(after, 'vllm:generation_tokens_total')).toBe(series(after, 'flotilla_llm_generation_tokens_total'));
    expect(series(after, 'vllm:num_requests_running')).toBe(0);
    expect(series(after, 'vllm:kv_cache_usage_perc')).toBe(series(after, 'vllm:gpu_cache_usage_perc'));
  });

  it('speculates in the engine from the command line: same greedy text, consistent spec-decode counters', async () => {
    const client = new OpenAI({ baseURL: `${spec.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const body = { model: 'stories260K', prompt: PROMPT, max_tokens: 24, temperature: 0 };
    const [a, b] = await Promise.all([openai.completions.create(body), client.completions.create(body)]);
    expect(b.choices[0]!.text).toBe(a.choices[0]!.text);
    const text = await eventually(
      () => scrape(spec),
      (t) => /^vllm:spec_decode_num_drafts_total\{[^}]*\} [1-9]/m.test(t),
    );
    const drafts = series(text, 'vllm:spec_decode_num_drafts_total', 'model_name="stories260K"');
    const draftTokens = series(text, 'vllm:spec_decode_num_draft_tokens_total');
    const accepted = series(text, 'vllm:spec_decode_num_accepted_tokens_total');
    const perPos = [0, 1, 2].map((p) =>
      series(text, 'vllm:spec_decode_num_accepted_tokens_per_pos_total', `position="${p}"`),
    );
    expect(draftTokens).toBeLessThanOrEqual(3 * drafts);
    expect(draftTokens).toBeGreaterThanOrEqual(drafts);
    expect(perPos.reduce((s, x) => s + x, 0)).toBe(accepted);
    expect(perPos[0]).toBeLessThanOrEqual(drafts);
    expect(perPos[1]).toBeLessThanOrEqual(perPos[0]!);
    expect(perPos[2]).toBeLessThanOrEqual(perPos[1]!);
    // the model is its own draft and decoding is greedy: (nearly) every proposal is the target's own choice
    expect(accepted / draftTokens).toBeGreaterThan(0.9);
    // tokens generated = accepted proposals + one token of the target's per verification, and more
    expect(series(text, 'vllm:generation_tokens_total')).toBeGreaterThanOrEqual(accepted + drafts);
  });

  it('refuses other model names with strict_model_name=true (vLLM), from both clients', async () => {
    const client = new OpenAI({ baseURL: `${spec.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const missing = await client.completions.create({ model: 'gpt-9', prompt: 'x' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const strictHf = new InferenceClient(KEY, { endpointUrl: spec.url });
    const refused = await strictHf
      .chatCompletion({ model: 'tgi', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 3 })
      .catch((e: unknown) => e);
    expect((refused as { httpResponse?: { status: number } }).httpResponse?.status).toBe(404);
  });
});
