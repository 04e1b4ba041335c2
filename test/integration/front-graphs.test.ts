/**
 * LLMFront over three graphs of different kinds behind one endpoint (`serve run`, gRPC on), chosen by
 * `model`: an LLMServer (`stories`), a SpeculativePipeline whose target is the same model (`speculative`)
 * and a ResponseCache over another model (`cached`). The official openai client (completions, chat and
 * the Responses API, whole and streamed), TGI's /generate and llm.proto's Generate through the front; the API key enforced
 * by the front; vLLM's 404 for an unknown model; what a graph cannot do refused by the field's name (n on
 * the pipeline, logprobs on a cache hit); the speculative graph's greedy text equal to the target's alone.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FRONT_ADMIN_KEY, FRONT_KEY } from '../fixtures/apps/front-apps.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { eventually } from '../helpers/eventually.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

let server: ServeRun;
let client: OpenAI;
const auth = { authorization: `Bearer ${FRONT_KEY}`, 'content-type': 'application/json' };

/** Completion and chat, whole and streamed (greedy); each one's text. */
async function fourWays(model: string, prompt: string, maxTokens: number) {
  const messages = [{ role: 'user' as const, content: prompt }];
  const completion = await client.completions.create({ model, prompt, max_tokens: maxTokens, temperature: 0 });
  let completionStream = '';
  for await (const c of await client.completions.create({
    model,
    prompt,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
  }))
    completionStream += c.choices[0]?.text ?? '';
  const chat = await client.chat.completions.create({ model, messages, max_tokens: maxTokens, temperature: 0 });
  let chatStream = '';
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const c of await client.chat.completions.create({
    model,
    messages,
    max_tokens: maxTokens,
    temperature: 0,
    stream: true,
    stream_options: { include_usage: true },
  })) {
    chatStream += c.choices[0]?.delta?.content ?? '';
    if (c.usage) usage = c.usage;
  }
  return {
    completion: completion.choices[0]!.text,
    completionStream,
    chat: chat.choices[0]!.message.content,
    chatStream,
    usage: completion.usage,
    streamUsage: usage,
  };
}

type Reply = { model: string; choices: Array<{ text: string }>; usage: { completion_tokens: number } };

/** A client of protos/llm.proto's Llm service on the front's gRPC port. */
function llmClient(): grpc.Client & Record<string, (...args: unknown[]) => unknown> {
  const def = protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), {
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
  };
  return new pkg.flotilla.llm.v1.Llm(server.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client &
    Record<string, (...args: unknown[]) => unknown>;
}

function grpcGenerate(req: Record<string, unknown>, key?: string): Promise<Reply> {
  const c = llmClient();
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  return new Promise<Reply>((resolve, reject) =>
    c.Generate!(req, md, (err: grpc.ServiceError | null, reply: Reply) => {
      c.close();
      if (err) reject(err);
      else resolve(reply);
    }),
  );
}

function grpcStream(req: Record<string, unknown>, key: string): Promise<Array<{ text: string; usage?: unknown }>> {
  const c = llmClient();
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${key}`);
  const call = c.GenerateStream!(req, md) as grpc.ClientReadableStream<{ text: string; usage?: unknown }>;
  const out: Array<{ text: string; usage?: unknown }> = [];
  return new Promise((resolve, reject) => {
    call.on('data', (m) => out.push(m));
    call.on('end', () => {
      c.close();
      resolve(out);
    });
    call.on('error', (e) => {
      c.close();
      reject(e);
    });
  });
}

const metric = (text: string, name: string) =>
  [...text.matchAll(new RegExp(`^${name}\\{[^}]*\\} (\\S+)$`, 'gm'))].reduce((a, m) => a + Number(m[1]), 0);

describeWithModels('LLMFront: several graphs behind one endpoint, chosen by model', () => {
  beforeAll(async () => {
    server = await serveRun(['test/fixtures/apps/front-apps.ts:graphs'], 180_000);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: FRONT_KEY, maxRetries: 0 });
  }, 200_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('lists every graph under its bound name; an unknown name is 404 model_not_found', async () => {
    const ids = (await client.models.list()).data.map((m) => m.id);
    expect(ids).toEqual(['stories', 'speculative', 'cached']);
    expect((await client.models.retrieve('cached')).id).toBe('cached');
    const err = await client.completions
      .create({ model: 'nope', prompt: 'Hi', max_tokens: 4 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).param).toBe('model');
  }, 60_000);

  it('the speculative graph answers the openai client four ways with the target model alone greedy text', async () => {
    for (const prompt of ['Once upon a time', 'Sara had a red ball']) {
      const alone = await fourWays('stories', prompt, 32);
      const spec = await fourWays('speculative', prompt, 32);
      expect(alone.completion.length).toBeGreaterThan(10);
      expect(spec.completion).toBe(alone.completion);
      expect(spec.completionStream).toBe(alone.completion);
      expect(spec.chat).toBe(alone.chat);
      expect(spec.chatStream).toBe(alone.chat);
      expect(spec.usage).toEqual(alone.usage);
      expect(spec.streamUsage?.total_tokens).toBe(
        (spec.streamUsage?.prompt_tokens ?? 0) + (spec.streamUsage?.completion_tokens ?? 0),
      );
    }
  }, 240_000);

  it('the Responses API over a graph: output_text equals chat greedy text, whole and streamed', async () => {
    const prompt = 'Tom had a dog';
    for (const model of ['speculative', 'stories']) {
      const chat = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: prompt }],
        max_tokens: 16,
        temperature: 0,
      });
      const whole = await client.responses.create({ model, input: prompt, max_output_tokens: 16, temperature: 0 });
      expect(whole.output_text.length).toBeGreaterThan(0);
      expect(whole.output_text).toBe(chat.choices[0]!.message.content);
      expect(whole.usage?.output_tokens).toBe(chat.usage?.completion_tokens);
      let streamed = '';
      let completed = false;
      for await (const ev of await client.responses.create({
        model,
        input: prompt,
        max_output_tokens: 16,
        temperature: 0,
        stream: true,
      })) {
        if (ev.type === 'response.output_text.delta') streamed += ev.delta;
        if (ev.type === 'response.completed' || ev.type === 'response.incomplete') completed = true;
      }
      expect(streamed).toBe(whole.output_text);
      expect(completed).toBe(true);
    }
  }, 120_000);

  it('the cached graph answers four ways, a repeat from the cache; logprobs on a hit is 400 naming logprobs', async () => {
    const r = await fourWays('cached', 'Lily went to the park', 16);
    expect(r.completion.length).toBeGreaterThan(0);
    expect(r.completionStream).toBe(r.completion);
    expect(r.chatStream).toBe(r.chat);
    const again = await client.completions.create({
      model: 'cached',
      prompt: 'Lily went to the park',
      max_tokens: 16,
      temperature: 0,
    });
    expect(again.choices[0]!.text).toBe(r.completion);
    const metrics = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${FRONT_ADMIN_KEY}` } })
    ).text();
    expect(metrics).toMatch(/flotilla_response_cache_lookups_total\{result="hit"[^}]*\} [1-9]/);
    for (const ask of [
      () =>
        client.completions.create({
          model: 'cached',
          prompt: 'Lily went to the park',
          max_tokens: 16,
          temperature: 0,
          logprobs: 1,
        }),
      () =>
        client.chat.completions.create({
          model: 'cached',
          messages: [{ role: 'user', content: 'Lily went to the park' }],
          max_tokens: 16,
          temperature: 0,
          logprobs: true,
        }),
    ]) {
      const err = await ask().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('logprobs');
    }
    // Not cached before: the model answers, with logprobs.
    const fresh = await client.completions.create({
      model: 'cached',
      prompt: 'Tom had a dog',
      max_tokens: 4,
      temperature: 0,
      logprobs: 1,
    });
    expect(fresh.choices[0]!.logprobs?.tokens).toHaveLength(4);
  }, 120_000);

  it('refuses what a graph cannot do by name (n on the pipeline), in OpenAI and TGI shapes', async () => {
    const err = await client.completions
      .create({ model: 'speculative', prompt: 'Hi', max_tokens: 4, n: 2 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('n');
    const tgi = await fetch(`${server.url}/generate`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ model: 'speculative', inputs: 'Hi', parameters: { max_new_tokens: 4, top_n_tokens: 2 } }),
    });
    expect(tgi.status).toBe(422);
    expect(await tgi.json()).toMatchObject({
      error_type: 'validation',
      error: expect.stringContaining('top_n_tokens'),
    });
  }, 60_000);

  it('enforces the API key on OpenAI, TGI and gRPC', async () => {
    const anon = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'wrong-key', maxRetries: 0 });
    const err = await anon.completions
      .create({ model: 'stories', prompt: 'Hi', max_tokens: 4 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.AuthenticationError);
    const tgi = await fetch(`${server.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: 'Hi', parameters: { max_new_tokens: 4 } }),
    });
    expect(tgi.status).toBe(401);
    const denied = await grpcGenerate({ model: 'stories', prompt: 'Hi', max_tokens: 4 }).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((denied as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
  }, 60_000);

  it('serves TGI /generate and llm.proto Generate through the front, the graph chosen by model', async () => {
    const alone = await client.completions.create({
      model: 'stories',
      prompt: 'Once upon a time',
      max_tokens: 12,
      temperature: 0,
    });
    const viaTgi = async (body: Record<string, unknown>) => {
      const res = await fetch(`${server.url}/generate`, { method: 'POST', headers: auth, body: JSON.stringify(body) });
      expect(res.status).toBe(200);
      return (await res.json()) as { generated_text: string; details: { tokens: Array<{ text: string }> } };
    };
    // No model: the first graph; a top-level model picks another (TGI's own body has no such field).
    const first = await viaTgi({ inputs: 'Once upon a time', parameters: { max_new_tokens: 12, details: true } });
    expect(first.generated_text).toBe(alone.choices[0]!.text);
    expect(first.details.tokens.map((t) => t.text).join('')).toBe(alone.choices[0]!.text);
    const spec = await viaTgi({
      model: 'speculative',
      inputs: 'Once upon a time',
      parameters: { max_new_tokens: 12, details: true },
    });
    expect(spec.generated_text).toBe(alone.choices[0]!.text);
    expect(spec.details.tokens.map((t) => t.text).join('')).toBe(alone.choices[0]!.text);
    const g = await grpcGenerate(
      { model: 'speculative', prompt: 'Once upon a time', max_tokens: 12, temperature: 0 },
      FRONT_KEY,
    );
    expect(g.model).toBe('speculative');
    expect(g.choices[0]!.text).toBe(alone.choices[0]!.text);
    const unknown = await grpcGenerate({ model: 'nope', prompt: 'Hi', max_tokens: 4 }, FRONT_KEY).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((unknown as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
  }, 120_000);
  it('streams TGI and llm.proto through the front; answers bad input in each API shape', async () => {
    const alone = await client.completions.create({
      model: 'stories',
      prompt: 'Lily',
      max_tokens: 10,
      temperature: 0,
    });
    const sse = await fetch(`${server.url}/generate_stream`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ model: 'speculative', inputs: 'Lily', parameters: { max_new_tokens: 10 } }),
    });
    const events = (await sse.text())
      .split('\n\n')
      .filter((e) => e.startsWith('data: '))
      .map((e) => JSON.parse(e.slice(6)) as { token: { text: string }; generated_text: string | null });
    expect(events.map((e) => e.token.text).join('')).toBe(alone.choices[0]!.text);
    expect(events.at(-1)!.generated_text).toBe(alone.choices[0]!.text);
    const msgs = await grpcStream({ model: 'speculative', prompt: 'Lily', max_tokens: 10, temperature: 0 }, FRONT_KEY);
    expect(msgs.map((m) => m.text).join('')).toBe(alone.choices[0]!.text);
    expect(msgs.at(-1)!.usage).toMatchObject({ completion_tokens: 10 });

    const bad = await client.completions
      .create({ model: 'cached', prompt: 'Hi', max_tokens: 4, temperature: 9 })
      .catch((e: unknown) => e);
    expect((bad as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('temperature');
    const tooLong = await client.completions
      .create({ model: 'stories', prompt: 'Hi', max_tokens: 100_000 })
      .catch((e: unknown) => e);
    expect((tooLong as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
    expect((tooLong as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('max_tokens');
    const tgiBad = await fetch(`${server.url}/generate`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ inputs: 'Hi', parameters: { temperature: -1 } }),
    });
    expect(tgiBad.status).toBe(422);
    const notJson = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: auth, body: '{"prompt":' });
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: { code: string } }).error.code).toBe('invalid_json');
    const grpcBad = await grpcGenerate({ model: 'speculative', prompt: 'Hi', temperature: 9 }, FRONT_KEY).catch(
      (e: grpc.ServiceError) => e,
    );
    expect((grpcBad as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((grpcBad as grpc.ServiceError).details).toContain('temperature');
  }, 120_000);

  it("reports each graph's TTFT, e2e latency and finishes as the front saw them (LLMServer's histograms)", async () => {
    await client.completions.create({ model: 'speculative', prompt: 'Tom', max_tokens: 6, temperature: 0 });
    const text = await (
      await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${FRONT_ADMIN_KEY}` } })
    ).text();
    const front = (name: string, model: string) =>
      [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))]
        .filter((m) => m[1]!.includes(`model_name="${model}"`) && m[1]!.includes('deployment="Front"'))
        .reduce((a, m) => a + Number(m[2]), 0);
    expect(front('flotilla_llm_time_to_first_token_seconds_count', 'speculative')).toBeGreaterThan(0);
    expect(front('flotilla_llm_e2e_request_latency_seconds_count', 'speculative')).toBe(
      front('flotilla_llm_time_to_first_token_seconds_count', 'speculative'),
    );
    expect(front('flotilla_llm_request_success_total', 'stories')).toBeGreaterThan(0);
  }, 60_000);

  it('a client leaving a stream through the front ends the request in the graph (no running request left)', async () => {
    const scrape = async () =>
      (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${FRONT_ADMIN_KEY}` } })).text();
    const before = metric(await scrape(), 'vllm:generation_tokens_total');
    const ac = new AbortController();
    const res = await fetch(`${server.url}/v1/completions`, {
      method: 'POST',
      headers: auth,
      signal: ac.signal,
      body: JSON.stringify({ model: 'stories', prompt: 'Once', max_tokens: 500, ignore_eos: true, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    await reader.cancel().catch(() => {});
    await eventually(
      async () => metric(await scrape(), 'vllm:num_requests_running'),
      (n) => n === 0,
    );
    // Cut short: the engine stopped before max_tokens (500, with ignore_eos) once the client left.
    const generated = metric(await scrape(), 'vllm:generation_tokens_total') - before;
    expect(generated).toBeGreaterThan(0);
    expect(generated).toBeLessThan(500);
  }, 60_000);
});
