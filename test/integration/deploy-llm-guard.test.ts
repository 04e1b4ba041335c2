/**
 * LLMServer's guard on the real runtime (startServe, thread replicas, real sockets, stories260K): every
 * bad input gets its status and a message naming the field or limit, 401 without a key, 429 with
 * Retry-After, rejected requests never reach the engine, and 100 concurrent streams of which a third
 * disconnect early: the others complete and the KV cache empties.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithModels, models } from '../helpers/models.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { guardKeys, guardedApp, openApp } from '../fixtures/apps/deploy-llm-apps.js';

let served: Served;

interface Stats {
  promptTokens: number;
  requests: number;
  kvUsage: number;
  running: number;
  waiting: number;
  requestsAborted: number;
  requestsFinished: number;
  debug: { requests: number; samples: number };
}
const stats = (app: string) => served.instance.getHandle(app).engineStats() as Promise<Stats>;

function post(path: string, body: unknown, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(`${served.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

async function expectError(res: Response, status: number, message: string | RegExp, param?: string) {
  const body = (await res.json()) as { error: { message: string; param: string | null; type: string; code: string } };
  expect({ status: res.status, message: body.error.message }).toEqual({
    status,
    message: expect.stringMatching(message),
  });
  if (param !== undefined) expect(body.error.param).toBe(param);
}

describeWithModels('LLMServer guard on the runtime (stories260K)', () => {
  beforeAll(async () => {
    served = await serveForTest([
      { name: 'open', routePrefix: '/open', app: openApp(models.stories260K) },
      { name: 'guarded', routePrefix: '/guarded', app: guardedApp(models.stories260K) },
    ]);
    await eventually(
      async () => (await stats('open')) !== null && (await stats('guarded')) !== null,
      60_000,
      'models loaded',
    );
  }, 120_000);
  afterAll(async () => {
    await served?.close();
  });

  it('rejects every bad input with its status and a message naming it, before the engine', async () => {
    const before = await stats('open');
    const c = '/open/v1/completions';
    const ok = { prompt: 'Once upon a time', max_tokens: 4 };
    await expectError(
      await post(c, { ...ok, temperature: 'hot' }),
      400,
      /^temperature: must be a number/,
      'temperature',
    );
    await expectError(await post(c, { ...ok, top_p: 0 }), 400, /^top_p: must be > 0/, 'top_p');
    await expectError(await post(c, { ...ok, n: 9 }), 400, /^n: .*limits\.maxN/, 'n');
    await expectError(await post(c, { ...ok, max_tokens: 500 }), 400, /^max_tokens: .*limits\.maxTokens/, 'max_tokens');
    await expectError(await post(c, { ...ok, max_tokens: 0 }), 400, /^max_tokens: must be >= 1/, 'max_tokens');
    await expectError(await post(c, { ...ok, stop: ['a', 'b', 'c'] }), 400, /^stop: at most 2/, 'stop');
    await expectError(await post(c, { ...ok, seed: -1 }), 400, /^seed:/, 'seed');
    await expectError(await post(c, { ...ok, logprobs: 50 }), 400, /^logprobs:/, 'logprobs');
    await expectError(await post(c, { ...ok, presence_penalty: 3 }), 400, /^presence_penalty:/, 'presence_penalty');
    await expectError(
      await post(c, { ...ok, stream_options: { include_usage: true } }),
      400,
      /^stream_options: .*stream: true/,
      'stream_options',
    );
    await expectError(await post(c, { ...ok, frobnicate: 1 }), 400, /^frobnicate: unknown parameter/, 'frobnicate');
    await expectError(await post(c, { max_tokens: 4 }), 400, /^prompt: is required/, 'prompt');
    await expectError(
      await post(c, { prompt: 'word '.repeat(100) }),
      400,
      /^prompt: is \d+ tokens; the limit is 64 tokens \(limits\.maxPromptTokens\)/,
      'prompt',
    );
    await expectError(
      await post(c, { prompt: 'x'.repeat(100_000) }),
      413,
      /limit is 65536 bytes \(limits\.maxBodyBytes\)/,
    );
    await expectError(await post(c, '[1, 2]'), 400, /must be a JSON object/);
    const chat = '/open/v1/chat/completions';
    await expectError(await post(chat, { messages: [] }), 400, /^messages:/, 'messages');
    await expectError(
      await post(chat, { messages: [{ role: 'wizard', content: 'hi' }] }),
      400,
      /^messages\[0\]\.role:/,
      'messages[0].role',
    );
    await expectError(
      await post(chat, { messages: [{ role: 'user', content: 'hi' }], top_logprobs: 2 }),
      400,
      /requires logprobs/,
      'top_logprobs',
    );
    await expectError(
      await post(chat, { messages: [{ role: 'user', content: 'hi' }], tools: [{ type: 'function' }] }),
      400,
      /^tools\[0\]\.function:/,
      'tools[0].function',
    );
    const tgi = await post('/open/generate', { inputs: 'x', parameters: { top_k: 0 } });
    expect(tgi.status).toBe(422);
    expect((await tgi.json()).error).toMatch(/^parameters\.top_k:/);
    expect((await fetch(`${served.url}/open/v1/completions`)).status).toBe(405);
    const after = await stats('open');
    expect(after.promptTokens).toBe(before.promptTokens);
    expect(after.requestsFinished).toBe(before.requestsFinished);
  });

  it("answers a body that is not JSON, or not an object, in the route's own error shape; too large is still 413", async () => {
    const before = await stats('open');
    for (const route of ['/open/v1/completions', '/open/v1/chat/completions']) {
      const broken = await post(route, '{"prompt": "Once upon');
      expect(broken.status).toBe(400);
      expect(await broken.json()).toEqual({
        error: {
          message: expect.stringMatching(/^The request body is not valid JSON/),
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_json',
        },
      });
      const notObject = await post(route, '"just a string"');
      expect(notObject.status).toBe(400);
      expect(await notObject.json()).toEqual({
        error: {
          message: expect.stringMatching(/must be a JSON object/),
          type: 'invalid_request_error',
          param: null,
          code: 'invalid_request',
        },
      });
    }
    // TGI's router answers a JSON syntax error with 400 and a body of the wrong shape with 422.
    for (const route of ['/open/generate', '/open/generate_stream']) {
      const broken = await post(route, '{"inputs": ');
      expect(broken.status).toBe(400);
      expect(await broken.json()).toEqual({
        error: expect.stringMatching(/^The request body is not valid JSON/),
        error_type: 'validation',
      });
      const notObject = await post(route, '42');
      expect(notObject.status).toBe(422);
      expect(await notObject.json()).toEqual({
        error: expect.stringMatching(/must be a JSON object/),
        error_type: 'validation',
      });
    }
    // Over limits.maxBodyBytes (64 KiB here) and broken: the size is reported, in the route's shape.
    const big = await post('/open/v1/completions', `{"prompt": "${'x'.repeat(100_000)}`);
    expect(big.status).toBe(413);
    expect((await big.json()).error).toMatchObject({ type: 'invalid_request_error', code: 'request_too_large' });
    const bigTgi = await post('/open/generate', `{"inputs": "${'x'.repeat(100_000)}`);
    expect(bigTgi.status).toBe(413);
    expect(await bigTgi.json()).toEqual({
      error: expect.stringMatching(/limits\.maxBodyBytes/),
      error_type: 'validation',
    });
    // Over the proxy's own limit (bodyLimitBytes, 4 MiB): the proxy answers 413 before the deployment sees it.
    const huge = await post('/open/v1/completions', `{"prompt": "${'x'.repeat(4 * 1024 * 1024)}`);
    expect(huge.status).toBe(413);
    const after = await stats('open');
    expect(after.promptTokens).toBe(before.promptTokens);
    expect(after.requestsFinished).toBe(before.requestsFinished);
  });

  it('answers 401 without a valid key, and the engine never sees the request', async () => {
    const before = await stats('guarded');
    const body = { prompt: 'Once upon a time', max_tokens: 4 };
    await expectError(await post('/guarded/v1/completions', body), 401, /Missing API key/);
    await expectError(
      await post('/guarded/v1/completions', body, { authorization: 'Bearer sk-not-a-key-000' }),
      401,
      /Invalid API key/,
    );
    expect((await fetch(`${served.url}/guarded/v1/models`)).status).toBe(401);
    const tgi = await post('/guarded/generate', { inputs: 'x' });
    expect(tgi.status).toBe(401);
    expect((await tgi.json()).error_type).toBe('authentication');
    expect((await fetch(`${served.url}/guarded/health`)).status).toBe(200);
    const after = await stats('guarded');
    expect(after.promptTokens).toBe(before.promptTokens);
    expect(after.requestsFinished).toBe(before.requestsFinished);
  });

  it('limits requests per key with 429 and Retry-After; limited requests never reach the engine', async () => {
    const auth = { authorization: `Bearer ${guardKeys.a}` };
    for (let i = 0; i < 3; i++)
      expect((await post('/guarded/v1/completions', { prompt: 'a', max_tokens: 1 }, auth)).status).toBe(200);
    const before = await stats('guarded');
    const limited = await post('/guarded/v1/completions', { prompt: 'a', max_tokens: 1 }, auth);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await expectError(limited, 429, /Request rate limit reached/);
    expect((await stats('guarded')).promptTokens).toBe(before.promptTokens);
  });

  it('limits tokens per key with 429 and Retry-After', async () => {
    const auth = { authorization: `Bearer ${guardKeys.b}` };
    const big = { prompt: 'Once upon a time', max_tokens: 50, ignore_eos: true };
    expect((await post('/guarded/v1/completions', big, auth)).status).toBe(200);
    expect((await post('/guarded/v1/completions', big, auth)).status).toBe(200);
    const before = await stats('guarded');
    const limited = await post('/guarded/v1/completions', big, auth);
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await expectError(limited, 429, /Token rate limit reached/);
    expect((await stats('guarded')).promptTokens).toBe(before.promptTokens);
  });

  it('100 concurrent streams, a third disconnecting early: the rest complete and KV usage returns to zero', async () => {
    const before = await stats('open');
    const one = async (i: number): Promise<'done' | 'left'> => {
      const leave = i % 3 === 0;
      const ac = new AbortController();
      const res = await post(
        '/open/v1/completions',
        {
          prompt: `Story ${i}: once upon a time`,
          max_tokens: 64,
          ignore_eos: true,
          temperature: 0.8,
          seed: i,
          stream: true,
          stream_options: { include_usage: true },
        },
        {},
        ac.signal,
      );
      expect(res.status).toBe(200);
      const reader = res.body!.getReader();
      const decoder = new TextDecoder();
      let text = '';
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
        // A leaver hangs up after its first tokens (unless the whole stream already came in one read).
        if (leave && text.includes('"text"') && !text.includes('[DONE]')) {
          ac.abort();
          await reader.cancel().catch(() => {});
          return 'left';
        }
      }
      expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
      expect(text).toContain('"completion_tokens":64');
      return 'done';
    };
    const outcomes = await Promise.all(Array.from({ length: 100 }, (_, i) => one(i)));
    const left = outcomes.filter((o) => o === 'left').length;
    expect(outcomes.filter((o, i) => i % 3 !== 0 && o === 'done')).toHaveLength(66);
    expect(left).toBeGreaterThanOrEqual(20);
    await eventually(
      async () => {
        const s = await stats('open');
        return s.kvUsage === 0 && s.running === 0 && s.waiting === 0 && s.debug.requests === 0 && s.debug.samples === 0;
      },
      20_000,
      'KV cache empty',
    );
    const after = await stats('open');
    const aborted = after.requestsAborted - before.requestsAborted;
    expect(aborted).toBeGreaterThan(0);
    expect(aborted).toBeLessThanOrEqual(left);
  });
});
