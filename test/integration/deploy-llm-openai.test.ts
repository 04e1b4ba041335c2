/**
 * The OpenAI-compatible API of LLMServer through a real `serve run` on stories260K, driven by the
 * official `openai` npm client: models, completions, chat, streaming (with usage), logprobs, n, stop,
 * seed, penalties, logit_bias, scoring (echo + logprobs, max_tokens 0), vLLM's /tokenize and /detokenize, and errors in OpenAI's shape.
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithModels, models } from '../helpers/models.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';

const KEY = 'sk-flotilla-test-0001';
let server: ServeRun;
let client: OpenAI;

describeWithModels('LLMServer: OpenAI API through serve run (stories260K)', () => {
  beforeAll(async () => {
    server = await serveRun(['examples/llm-server.ts:app', `model=${models.stories260K}`, `api_keys=${KEY}`]);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('lists the served model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(['stories260K']);
    expect((list.data[0] as unknown as { random_weights: boolean }).random_weights).toBe(false);
  });

  it('retrieves the served model by id, and 404s another', async () => {
    const m = await client.models.retrieve('stories260K');
    expect([m.id, m.object]).toEqual(['stories260K', 'model']);
    const other = await client.models.retrieve('gpt-9').catch((e: unknown) => e);
    expect(other).toBeInstanceOf(OpenAI.NotFoundError);
    expect((other as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });

  it('streams usage in every chunk with stream_options.continuous_usage_stats (vLLM), counting up', async () => {
    const chunks = [];
    const stream = await client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 5,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true, continuous_usage_stats: true } as never,
    });
    for await (const c of stream) chunks.push(c);
    const usages = chunks.map((c) => c.usage!);
    expect(usages.every((u) => u && u.prompt_tokens > 0)).toBe(true);
    const completion = usages.map((u) => u.completion_tokens);
    expect(completion).toEqual([...completion].sort((a, b) => a - b));
    expect(completion.at(-1)).toBe(5);
    expect(chunks.at(-1)!.choices).toEqual([]); // the include_usage chunk still ends the stream
    expect(
      chunks
        .slice(0, -1)
        .map((c) => c.choices[0]!.delta.content ?? '')
        .join(''),
    ).toBe(
      (
        await client.chat.completions.create({
          model: 'stories260K',
          messages: [{ role: 'user', content: 'Hi' }],
          max_tokens: 5,
          temperature: 0,
        })
      ).choices[0]!.message.content,
    );
  });

  it('scores a prompt: echo + logprobs gives every prompt token a logprob (the first null), max_tokens 0 generates nothing', async () => {
    const base = { model: 'stories260K', prompt: 'Once upon a time', temperature: 0, echo: true } as const;
    const score = await client.completions.create({ ...base, max_tokens: 0, logprobs: 2 });
    const lp = score.choices[0]!.logprobs!;
    expect(score.choices[0]!.text).toBe('Once upon a time');
    expect(score.usage).toEqual({ prompt_tokens: 5, completion_tokens: 0, total_tokens: 5 });
    expect(lp.tokens).toHaveLength(5);
    expect(lp.token_logprobs![0]).toBeNull();
    expect(lp.top_logprobs![0]).toBeNull();
    expect(lp.token_logprobs!.slice(1).every((x) => x !== null && x < 0)).toBe(true);
    expect(Object.keys(lp.top_logprobs![1]!)).toHaveLength(2);
    const gen = await client.completions.create({ ...base, max_tokens: 3, logprobs: 0 });
    const plain = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once upon a time',
      temperature: 0,
      max_tokens: 3,
    });
    expect(gen.choices[0]!.text).toBe(`Once upon a time${plain.choices[0]!.text}`);
    expect(gen.choices[0]!.logprobs!.tokens).toHaveLength(8);
    expect(gen.choices[0]!.logprobs!.token_logprobs!.slice(0, 5)).toEqual(lp.token_logprobs);
    const streamed = await client.completions
      .create({ ...base, max_tokens: 2, logprobs: 0, stream: true })
      .catch((e: unknown) => e);
    expect((streamed as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    const noEcho = await client.completions
      .create({ model: 'stories260K', prompt: 'x', max_tokens: 0 })
      .catch((e: unknown) => e);
    expect((noEcho as InstanceType<typeof OpenAI.APIError>).param).toBe('max_tokens');
  });

  it('completes greedily, with usage and finish_reason length', async () => {
    const r = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once upon a time',
      max_tokens: 10,
      temperature: 0,
    });
    expect(r.object).toBe('text_completion');
    expect(r.choices[0]!.text).toBe(', there was a little girl named Lily');
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.usage).toEqual({ prompt_tokens: 5, completion_tokens: 10, total_tokens: 15 });
  });

  it('stops at a stop string (excluded) with finish_reason stop', async () => {
    const r = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once upon a time',
      max_tokens: 30,
      temperature: 0,
      stop: [' named'],
    });
    expect(r.choices[0]!.text).toBe(', there was a little girl');
    expect(r.choices[0]!.finish_reason).toBe('stop');
  });

  it('n samples with a seed are reproducible', async () => {
    const ask = () =>
      client.completions.create({
        model: 'stories260K',
        prompt: 'Lily and Tom',
        max_tokens: 12,
        temperature: 1,
        n: 3,
        seed: 42,
      });
    const [a, b] = [await ask(), await ask()];
    expect(a.choices.map((c) => c.index).sort()).toEqual([0, 1, 2]);
    expect(a.choices.map((c) => c.text)).toEqual(b.choices.map((c) => c.text));
    expect(a.usage!.completion_tokens).toBe(36);
  });

  it('returns completion logprobs with top alternatives', async () => {
    const r = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once upon a time',
      max_tokens: 5,
      temperature: 0,
      logprobs: 2,
    });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens).toHaveLength(5);
    expect(lp.tokens!.join('')).toBe(r.choices[0]!.text);
    expect(lp.token_logprobs!.every((x) => x <= 0)).toBe(true);
    expect(Object.keys(lp.top_logprobs![0]!)).toHaveLength(2);
    expect(lp.text_offset![1]).toBe(lp.tokens![0]!.length);
  });

  it('accepts penalties and top_p', async () => {
    const r = await client.completions.create({
      model: 'stories260K',
      prompt: 'Once upon a time',
      max_tokens: 20,
      temperature: 0.8,
      top_p: 0.9,
      seed: 1,
      presence_penalty: 1.5,
      frequency_penalty: 1.0,
    });
    expect(r.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it('streams a completion whose text equals the whole one', async () => {
    const whole = await client.completions.create({
      model: 'stories260K',
      prompt: 'One day, a big bird',
      max_tokens: 24,
      temperature: 0,
    });
    const stream = await client.completions.create({
      model: 'stories260K',
      prompt: 'One day, a big bird',
      max_tokens: 24,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(whole.choices[0]!.text);
    expect(finish).toBe('length');
  });

  it('chats, whole and streamed with include_usage', async () => {
    const messages = [{ role: 'user' as const, content: 'Tell me a story about a cat' }];
    const whole = await client.chat.completions.create({
      model: 'stories260K',
      messages,
      max_tokens: 16,
      temperature: 0,
    });
    expect(whole.object).toBe('chat.completion');
    expect(whole.choices[0]!.message.role).toBe('assistant');
    expect(whole.usage!.completion_tokens).toBe(16);
    const stream = await client.chat.completions.create({
      model: 'stories260K',
      messages,
      max_tokens: 16,
      temperature: 0,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let role: string | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      role ??= chunk.choices[0]?.delta.role;
      text += chunk.choices[0]?.delta.content ?? '';
      if (chunk.usage) usage = chunk.usage;
    }
    expect(role).toBe('assistant');
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(usage).toEqual(whole.usage);
  });

  it('returns chat logprobs', async () => {
    const r = await client.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 4,
      temperature: 0,
      logprobs: true,
      top_logprobs: 3,
    });
    const content = r.choices[0]!.logprobs!.content!;
    expect(content).toHaveLength(4);
    expect(content[0]!.top_logprobs).toHaveLength(3);
    expect(content.map((c) => c.token).join('')).toBe(r.choices[0]!.message.content);
  });

  it('tokenizes and detokenizes as vLLM does, with counts equal to what a request is charged', async () => {
    const post = async (path: string, body: unknown, key = KEY) => {
      const res = await fetch(`${server.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
        body: JSON.stringify(body),
      });
      return { status: res.status, body: (await res.json()) as Record<string, unknown> };
    };
    const t = await post('/tokenize', { prompt: 'Once upon a time' });
    expect(t.status).toBe(200);
    expect(t.body.count).toBe(5); // the completion of this prompt reports prompt_tokens: 5
    expect((t.body.tokens as number[])[0]).toBe(1); // BOS
    expect(t.body.max_model_len).toBeGreaterThan(0);
    const plain = await post('/tokenize', { prompt: 'Once upon a time', add_special_tokens: false });
    expect(plain.body.tokens).toEqual((t.body.tokens as number[]).slice(1));
    expect((await post('/detokenize', { tokens: t.body.tokens })).body).toEqual({ prompt: 'Once upon a time' });
    const messages = [{ role: 'user', content: 'Hi' }];
    const chat = await client.chat.completions.create({
      model: 'stories260K',
      messages: messages as never,
      max_tokens: 1,
    });
    expect((await post('/tokenize', { messages })).body.count).toBe(chat.usage!.prompt_tokens);
    const bad = await post('/detokenize', { tokens: [1, 99999] });
    expect(bad.status).toBe(400);
    expect((bad.body.error as { param: string }).param).toBe('tokens');
    expect((await post('/tokenize', {})).status).toBe(400);
    expect((await post('/tokenize', { prompt: 'x', model: 'gpt-9' })).status).toBe(200); // any name is the served model
    expect((await post('/tokenize', { prompt: 'x' }, 'sk-wrong-key-000')).status).toBe(401);
  });

  it('ends the raw SSE stream with data: [DONE]', async () => {
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
      body: JSON.stringify({ prompt: 'Hi', max_tokens: 3, stream: true }),
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const body = await res.text();
    expect(body.endsWith('data: [DONE]\n\n')).toBe(true);
    expect(
      body
        .split('\n\n')
        .filter(Boolean)
        .every((e) => e.startsWith('data: ')),
    ).toBe(true);
  });

  it('applies logit_bias (+100 makes a token every greedy pick); a bad one is a 400 naming logit_bias', async () => {
    const base = { model: 'stories260K', prompt: 'Once upon a time', max_tokens: 4, temperature: 0 } as const;
    const once = (await client.completions.create({ ...base, max_tokens: 1, logit_bias: { 407: 100 } })).choices[0]!
      .text;
    expect(once.length).toBeGreaterThan(0);
    expect((await client.completions.create({ ...base, logit_bias: { 407: 100 } })).choices[0]!.text).toBe(
      once.repeat(4),
    );
    expect((await client.completions.create(base)).choices[0]!.text).toBe(', there was a'); // no bias left behind
    const bad = await client.completions.create({ ...base, logit_bias: { 99999: 1 } }).catch((e: unknown) => e);
    expect((bad as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((bad as InstanceType<typeof OpenAI.APIError>).param).toBe('logit_bias');
  });

  it("reports errors in OpenAI's shape", async () => {
    const bad = await client.completions
      .create({ model: 'stories260K', prompt: 'x', temperature: 5 })
      .catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
    const e = bad as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.param).toBe('temperature');
    expect(e.code).toBe('invalid_parameter');
    expect(e.type).toBe('invalid_request_error');
    expect(e.message).toContain('temperature');

    // Any model name is the one served model (as on TGI; strict_model_name=true gives vLLM's 404
    // model_not_found, see deploy-llm-clients.test.ts), and the answer names the served model.
    const other = await client.completions.create({ model: 'gpt-9', prompt: 'x', max_tokens: 1 });
    expect(other.model).toBe('stories260K');

    const long = await client.completions
      .create({ model: 'stories260K', prompt: 'x', max_tokens: 100_000 })
      .catch((err: unknown) => err);
    expect((long as InstanceType<typeof OpenAI.APIError>).status).toBe(400);
    expect((long as InstanceType<typeof OpenAI.APIError>).param).toBe('max_tokens');

    const anon = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'sk-wrong-key-000', maxRetries: 0 });
    const denied = await anon.models.list().catch((err: unknown) => err);
    expect(denied).toBeInstanceOf(OpenAI.AuthenticationError);
    expect((denied as InstanceType<typeof OpenAI.AuthenticationError>).code).toBe('invalid_api_key');
  });
});
