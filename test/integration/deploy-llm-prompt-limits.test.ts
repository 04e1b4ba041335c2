/**
 * Prompt size limits and off-loop tokenizing on a real LLMServer (startServe + Ingress, real sockets, the real
 * engine on stories260K, thread replicas): oversize prompts refused before tokenizing on OpenAI (official
 * client), TGI, /tokenize and gRPC (@grpc/grpc-js), each in its own error shape; eight running streams keep
 * their cadence while 1 MB prompts are refused; long prompts that fit are tokenized by the tokenizer thread
 * with the same ids; /tokenize and /detokenize count against the per-client request limit; bodies nested too
 * deeply are answered in OpenAI's and TGI's shapes; gRPC chat roles are validated as on HTTP.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readModelSpec, type Tokenizer } from '../../packages/engine/src/index.js';
import { LLM_GRPC_SERVICE } from '../../packages/deployments/src/index.js';
import { describeWithModels, models } from '../helpers/models.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { probedApp, requestLimitedApp, TOKENIZE_REQUESTS_PER_MINUTE } from '../fixtures/apps/deploy-llm-prompt-apps.js';

let served: Served;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;
let openai: OpenAI;
let tokenizer: Tokenizer;

/** About 1 MB of story text: under limits.maxBodyBytes (1 MiB), far over stories260K's context (512 tokens). */
const MB_PROMPT = 'Once upon a time there was a little girl named Lily. '.repeat(19_000);
const SENTENCE = 'Lily and her mom went to the park to play on the swings. ';

const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(`${served.url}${path}`, {
    method: 'POST',
    body: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...headers },
  });

type Probed = { loopStallMs(): Promise<number>; tokenizerCounts(): Promise<{ offLoop: number; onLoop: number }> };
const probed = () => served.instance.getHandle('probed') as unknown as Probed;
const engineStats = () =>
  served.instance.getHandle('probed').engineStats() as Promise<{ promptTokens: number; requestsFinished: number }>;

function unary(req: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.Generate!(req, (err: grpc.ServiceError | null, reply: unknown) => (err ? reject(err) : resolve(reply))),
  );
}
const grpcFailure = (req: Record<string, unknown>) =>
  unary(req).then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: grpc.ServiceError) => e,
  );

/** OpenAI's error, as the official client raises it. */
async function openAiFailure(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  const err = await p.then(
    () => {
      throw new Error('expected the request to fail');
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OpenAI.APIError);
  return err as InstanceType<typeof OpenAI.APIError>;
}

/** Reads an OpenAI SSE stream to its end; its completion tokens (from the usage chunk). */
async function streamTokens(res: Response): Promise<number> {
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text.trimEnd().endsWith('data: [DONE]')).toBe(true);
  const usage = [...text.matchAll(/^data: (\{.*\})$/gm)].map((m) => JSON.parse(m[1]!).usage).find(Boolean);
  return usage?.completion_tokens ?? -1;
}

describeWithModels('LLMServer: prompt size limits, off-loop tokenizing, /tokenize limits (stories260K)', () => {
  beforeAll(async () => {
    served = await serveForTest(
      [
        { name: 'probed', routePrefix: '/', app: probedApp(models.stories260K) },
        { name: 'limited', routePrefix: '/limited', app: requestLimitedApp(models.stories260K) },
      ],
      { grpcServices: [{ ...LLM_GRPC_SERVICE, app: 'probed' }] },
    );
    await eventually(
      async () =>
        (await fetch(`${served.url}/health`)).status === 200 &&
        (await fetch(`${served.url}/limited/health`)).status === 200,
      60_000,
      'models loaded',
    );
    const def = protoLoader.loadSync(LLM_GRPC_SERVICE.protoPath, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    client = new pkg.flotilla.llm.v1.Llm(served.grpcAddress, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': 8 * 1024 * 1024,
    }) as typeof client;
    openai = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    tokenizer = (await readModelSpec(models.stories260K)).tokenizer;
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await served?.close();
  });

  it('refuses an oversize prompt before tokenizing it, in each protocol’s own shape', async () => {
    const before = await engineStats();
    const countsBefore = await probed().tokenizerCounts();
    const limit = 511 * 16; // maxPromptTokens (context - 1) × 16 bytes

    const completion = await openAiFailure(openai.completions.create({ model: 'stories260K', prompt: MB_PROMPT }));
    expect(completion.status).toBe(400);
    expect(completion.error).toMatchObject({ type: 'invalid_request_error', code: 'context_length_exceeded' });
    expect(completion.param).toBe('prompt');
    expect(completion.message).toMatch(new RegExp(`is ${MB_PROMPT.length} bytes; the limit is ${limit} bytes`));

    const chat = await openAiFailure(
      openai.chat.completions.create({ model: 'stories260K', messages: [{ role: 'user', content: MB_PROMPT }] }),
    );
    expect(chat.status).toBe(400);
    expect(chat.code).toBe('context_length_exceeded');
    expect(chat.param).toBe('messages');

    const tgi = await post('/generate', { inputs: MB_PROMPT });
    expect(tgi.status).toBe(422);
    expect(await tgi.json()).toEqual({
      error: expect.stringMatching(/^inputs: is \d+ bytes; the limit is \d+ bytes \(limits\.maxPromptBytes\)/),
      error_type: 'validation',
    });

    const tokenize = await post('/tokenize', { prompt: MB_PROMPT });
    expect(tokenize.status).toBe(400);
    expect((await tokenize.json()).error).toMatchObject({
      type: 'invalid_request_error',
      param: 'prompt',
      code: 'context_length_exceeded',
    });

    // gRPC has no body limit of its own below grpc-js's 4 MB: 3 MB of prompt, and a million token ids.
    const grpcText = await grpcFailure({ prompt: MB_PROMPT.repeat(3), max_tokens: 4 });
    expect(grpcText.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(grpcText.details).toMatch(/\[E_CONTEXT_LIMIT\] prompt: is \d+ bytes; .*limits\.maxPromptBytes/);
    const grpcIds = await grpcFailure({ prompt_token_ids: new Array(1_000_000).fill(5), max_tokens: 4 });
    expect(grpcIds.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(grpcIds.details).toMatch(/prompt_token_ids: is 1000000 tokens; the limit is 511 tokens/);

    // Nothing reached the engine, and nothing was tokenized (not even off the event loop).
    const after = await engineStats();
    expect(after.promptTokens).toBe(before.promptTokens);
    expect(after.requestsFinished).toBe(before.requestsFinished);
    expect(await probed().tokenizerCounts()).toEqual(countsBefore);
  });

  it('keeps eight running streams’ event loop free while 1 MB prompts are refused on every protocol', async () => {
    // The bound is relative to this run: how long tokenizing one such prompt blocks a thread here (measured
    // on this test's thread, with the engine's tokenizer), and the replica's own stalls while the streams run.
    const started = performance.now();
    tokenizer.encode(MB_PROMPT);
    const tokenizeMs = performance.now() - started;

    const streams = Array.from({ length: 8 }, () =>
      post('/v1/completions', {
        prompt: 'Once upon a time',
        max_tokens: 480,
        ignore_eos: true,
        stream: true,
        stream_options: { include_usage: true },
      }).then(streamTokens),
    );
    for (const s of streams) s.catch(() => {}); // awaited below; a failure before then must not go unhandled
    await eventually(async () => (await runningOf()) === 8, 60_000, '8 streams running');
    await probed().loopStallMs(); // a fresh window: the streams run
    await new Promise((r) => setTimeout(r, 1_000));
    const baselineMs = await probed().loopStallMs();

    const refusals = await Promise.all([
      post('/v1/completions', { prompt: MB_PROMPT }).then((r) => r.status),
      post('/v1/chat/completions', { messages: [{ role: 'user', content: MB_PROMPT }] }).then((r) => r.status),
      post('/generate', { inputs: MB_PROMPT }).then((r) => r.status),
      post('/tokenize', { prompt: MB_PROMPT }).then((r) => r.status),
      grpcFailure({ prompt: MB_PROMPT, max_tokens: 4 }).then((e) => e.code),
    ]);
    const duringMs = await probed().loopStallMs();
    const measured = { tokenizeMs, baselineMs, duringMs };
    expect(await runningOf(), 'the window above was measured with the streams running').toBeGreaterThan(0);
    expect(refusals).toEqual([400, 400, 422, 400, grpc.status.INVALID_ARGUMENT]);

    // Tokenizing even one of these prompts on the replica's loop would stall it for about tokenizeMs.
    expect(duringMs, JSON.stringify(measured)).toBeLessThan(Math.max(tokenizeMs / 4, 4 * baselineMs));
    expect(await Promise.all(streams)).toEqual(Array(8).fill(480));
  }, 180_000);

  it('tokenizes a long prompt that fits on the tokenizer thread, with the engine tokenizer’s ids', async () => {
    const prompt = SENTENCE.repeat(20); // ~1.1 KB: over the 1 KB off-loop threshold, under 511 tokens
    const expected = tokenizer.encode(prompt);
    expect(expected.length).toBeLessThan(511 - 8);
    const before = await probed().tokenizerCounts();

    const tokenized = await (await post('/tokenize', { prompt })).json();
    expect(tokenized.tokens).toEqual(expected);
    const noBos = await (await post('/tokenize', { prompt, add_special_tokens: false })).json();
    expect(noBos.tokens).toEqual(tokenizer.encode(prompt, { addBos: false }));

    const completion = await openai.completions.create({
      model: 'stories260K',
      prompt,
      max_tokens: 4,
      temperature: 0,
      echo: true,
    });
    expect(completion.usage?.prompt_tokens).toBe(expected.length);
    expect(completion.choices[0]!.text.startsWith(prompt)).toBe(true); // echo: the prompt as sent
    const tgi = await (
      await post('/generate', { inputs: prompt, parameters: { max_new_tokens: 2, details: true } })
    ).json();
    expect(tgi.details.generated_tokens).toBe(2);
    const chat = await openai.chat.completions.create({
      model: 'stories260K',
      messages: [{ role: 'user', content: prompt }],
      max_tokens: 2,
    });
    expect(chat.usage?.prompt_tokens).toBeGreaterThan(expected.length);
    const grpcReply = (await unary({ prompt, max_tokens: 2 })) as { usage: { prompt_tokens: number } };
    expect(grpcReply.usage.prompt_tokens).toBe(expected.length);

    const after = await probed().tokenizerCounts();
    expect(after.offLoop - before.offLoop).toBe(6);

    // Too many tokens once tokenized (but under the byte limit): still context_length_exceeded, by token count.
    const long = await openAiFailure(openai.completions.create({ model: 'stories260K', prompt: SENTENCE.repeat(100) }));
    expect(long.code).toBe('context_length_exceeded');
    expect(long.param).toBe('prompt');
    expect(long.message).toMatch(/prompt: is \d+ tokens/);
  });

  it('counts /tokenize and /detokenize against the per-client request limit, keyed by the socket’s address', async () => {
    // X-Forwarded-For is the client's to write: it must not make each request a new client.
    const statuses: number[] = [];
    for (let i = 0; i < TOKENIZE_REQUESTS_PER_MINUTE; i++) {
      const path = i === 0 ? '/limited/detokenize' : '/limited/tokenize';
      const body = i === 0 ? { tokens: [1, 2, 3] } : { prompt: 'Once upon a time' };
      statuses.push((await post(path, body, { 'x-forwarded-for': `10.0.0.${i + 1}` })).status);
    }
    expect(statuses).toEqual(Array(TOKENIZE_REQUESTS_PER_MINUTE).fill(200));
    for (const path of ['/limited/tokenize', '/limited/detokenize']) {
      const limited = await post(path, path.endsWith('/tokenize') ? { prompt: 'x' } : { tokens: [1] }, {
        'x-forwarded-for': '10.9.9.9',
      });
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect((await limited.json()).error).toMatchObject({ type: 'rate_limit_error', code: 'rate_limit_exceeded' });
    }
    // Size limits: a detokenize of more ids than the model's context (checked before the rate limit).
    const tooMany = await post('/detokenize', { tokens: new Array(600).fill(5) });
    expect(tooMany.status).toBe(400);
    expect((await tooMany.json()).error).toMatchObject({ param: 'tokens', code: 'context_length_exceeded' });
  });

  it('answers a body nested too deeply in OpenAI’s and TGI’s error shapes, never the runtime’s words', async () => {
    const deep = (depth: number) => `{"prompt": ${'['.repeat(depth)}1${']'.repeat(depth)}}`;
    for (const path of ['/v1/completions', '/v1/chat/completions', '/tokenize']) {
      const res = await post(path, deep(100_000));
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body).toEqual({
        error: { message: expect.any(String), type: 'invalid_request_error', param: null, code: 'invalid_json' },
      });
      expect(body.error.message).toMatch(/nest/);
      expect(body.error.message).not.toMatch(/call stack/i);
    }
    for (const path of ['/generate', '/generate_stream']) {
      const res = await post(path, `{"inputs": "x", "parameters": ${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`);
      expect(res.status).toBe(400);
      const body = await res.json();
      expect(body).toEqual({ error: expect.stringMatching(/nest/), error_type: 'validation' });
      expect(body.error).not.toMatch(/call stack/i);
    }
    // Nested, but not beyond what the proxy passes on: an ordinary validation error naming the field.
    const shallow = await post('/v1/completions', deep(60));
    expect(shallow.status).toBe(400);
    expect((await shallow.json()).error).toMatchObject({ param: 'prompt', code: 'invalid_parameter' });
  });

  it('validates gRPC as HTTP does: role "root" is INVALID_ARGUMENT, every other field refused alike', async () => {
    const root = await grpcFailure({ messages: [{ role: 'root', content: 'obey' }], max_tokens: 2 });
    expect(root.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(root.details).toMatch(/\[E_INVALID_PARAMETER\] messages\[0\]\.role: must be one of system, developer/);
    const http = await post('/v1/chat/completions', { messages: [{ role: 'root', content: 'obey' }], max_tokens: 2 });
    expect(http.status).toBe(400);
    expect((await http.json()).error.param).toBe('messages[0].role');
    // Every other field: the same refusal, naming the same field, on both protocols.
    const bad: Array<[string, Record<string, unknown>]> = [
      ['temperature', { temperature: 3 }],
      ['top_p', { top_p: 0 }],
      ['logprobs', { logprobs: 50 }],
      ['presence_penalty', { presence_penalty: 3 }],
      ['n', { n: 9 }],
      ['stop', { stop: [''] }],
      ['max_tokens', { max_tokens: 100_000 }],
    ];
    for (const [field, fields] of bad) {
      const viaHttp = await post('/v1/completions', { prompt: 'Once upon a time', max_tokens: 2, ...fields });
      expect(viaHttp.status).toBe(400);
      expect((await viaHttp.json()).error.param).toBe(field);
      const viaGrpc = await grpcFailure({ prompt: 'Once upon a time', max_tokens: 2, ...fields });
      expect(viaGrpc.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(viaGrpc.details).toMatch(new RegExp(`\\] ${field}: `));
    }
    const ok = (await unary({
      messages: [
        { role: 'system', content: 'Tell a story.' },
        { role: 'user', content: 'Once upon a time' },
      ],
      max_tokens: 2,
    })) as { choices: unknown[] };
    expect(ok.choices).toHaveLength(1);
  });
});

async function runningOf(): Promise<number> {
  const stats = (await served.instance.getHandle('probed').engineStats()) as { running: number } | null;
  return stats?.running ?? 0;
}
