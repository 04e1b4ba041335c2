/**
 * What the other deploy-llm tests leave out: `serve run examples/llm-server.ts` with an API key file,
 * int8 quantization and the audit log on stderr; with no model (random weights, said so at start and in
 * /v1/models); and LLMServer's /health while the model loads and after it failed to load (the class
 * itself, in this process, on the real engine).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { HttpRequestLike } from '@flotilla/core';
import { LLMServer } from '../../packages/deployments/src/index.js';
import { describeWithModels, models } from '../helpers/models.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';

const KEY = 'sk-from-key-file-0001';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-llm-server-'));
const keyFile = path.join(tmp, 'keys.txt');
writeFileSync(keyFile, `# one key per line\n${KEY}   # ci\n\nsk-second-key-0002\n`);

const post = (url: string, body: unknown, key?: string) =>
  fetch(`${url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
  });

interface AuditLine {
  audit: string;
  requestId: string;
  keyId: string;
  route: string;
  status: number;
  promptTokens: number;
  completionTokens: number;
  latencyMs: number;
  prompt?: string;
  error?: string;
}
const auditLines = (out: string): AuditLine[] =>
  out
    .split('\n')
    .filter((l) => l.includes('"audit":"llm-request"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as AuditLine);

/** Polls `read` until `ok` holds of what it returns (the audit line is written as the response ends). */
async function until<T>(read: () => T, ok: (v: T) => boolean): Promise<T> {
  for (let i = 0; i < 100; i++) {
    const v = read();
    if (ok(v)) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  return read();
}

describeWithModels('LLMServer: key file, int8 weights with an f16 KV cache, audit log (serve run, stories260K)', () => {
  let server: ServeRun;
  beforeAll(async () => {
    server = await serveRun([
      'examples/llm-server.ts:app',
      `model=${models.stories260K}`,
      `api_key_file=${keyFile}`,
      'quantize=int8',
      'kv_cache_dtype=f16',
    ]);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('accepts the keys of the key file (comments and blank lines ignored) and no others', async () => {
    expect((await post(server.url, { prompt: 'Hi', max_tokens: 2 }, KEY)).status).toBe(200);
    expect((await post(server.url, { prompt: 'Hi', max_tokens: 2 }, 'sk-second-key-0002')).status).toBe(200);
    expect((await post(server.url, { prompt: 'Hi', max_tokens: 2 }, '# one key per line')).status).toBe(401);
    expect((await post(server.url, { prompt: 'Hi', max_tokens: 2 })).status).toBe(401);
  });

  it('serves the int8-quantized model over an f16 KV cache', async () => {
    const res = await post(server.url, { prompt: 'Once upon a time', max_tokens: 8, temperature: 0 }, KEY);
    const body = (await res.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
    expect(body.usage.completion_tokens).toBe(8);
    expect(body.choices[0]!.text.length).toBeGreaterThan(0);
  });

  it('writes one audit line per request: key id, route, tokens, status, latency; never the key or the prompt', async () => {
    const send = async (body: unknown, key: string) => {
      const res = await post(server.url, body, key);
      await res.json();
      return res.headers.get('x-request-id')!;
    };
    const ids = [
      await send({ prompt: 'Once upon a time', max_tokens: 3, temperature: 0 }, KEY),
      await send({ prompt: 'Once upon a time' }, 'sk-wrong-key-0003'),
      await send({ prompt: 'Once upon a time', temperature: 7 }, KEY),
    ];
    const mine = () => auditLines(server.output()).filter((l) => ids.includes(l.requestId));
    const lines = (await until(mine, (l) => l.length >= 3)).sort(
      (a, b) => ids.indexOf(a.requestId) - ids.indexOf(b.requestId),
    );
    expect(lines).toHaveLength(3);
    const [served, denied, invalid] = lines as [AuditLine, AuditLine, AuditLine];
    expect(served).toMatchObject({ route: 'POST /v1/completions', status: 200, promptTokens: 5, completionTokens: 3 });
    expect(served.keyId).toMatch(/^key-[0-9a-f]{12}$/);
    expect(served.latencyMs).toBeGreaterThan(0);
    expect(served.prompt).toBeUndefined();
    expect(denied).toMatchObject({
      keyId: 'unauthenticated',
      status: 401,
      error: 'E_INVALID_API_KEY',
      promptTokens: 0,
    });
    expect(invalid).toMatchObject({ keyId: served.keyId, status: 400, error: 'E_INVALID_PARAMETER' });
    expect(server.output()).not.toContain('Once upon a time');
    expect(server.output()).not.toContain(KEY);
  });
});

describeWithModels('LLMServer without a model: random weights, said so (serve run)', () => {
  let server: ServeRun;
  beforeAll(async () => {
    server = await serveRun(['examples/llm-server.ts:app']);
  }, 120_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('says so at start and in /v1/models, and still serves', async () => {
    expect(server.output()).toMatch(/no model given — serving a RANDOM-WEIGHT model.*Its output is noise/);
    const list = (await (await fetch(`${server.url}/v1/models`)).json()) as {
      data: { id: string; random_weights: boolean; description: string }[];
    };
    expect(list.data[0]).toMatchObject({
      id: 'random-weights',
      random_weights: true,
      description: expect.stringContaining('RANDOM WEIGHTS'),
    });
    expect((await post(server.url, { prompt: 'Hi', max_tokens: 4, ignore_eos: true })).status).toBe(200);
  });
});

describeWithModels('LLMServer /health while loading and after a failed load (in process)', () => {
  const get = (path: string): HttpRequestLike => ({
    method: 'GET',
    path,
    query: {},
    headers: {},
    body: undefined,
    requestId: `t-${path}`,
    clientIp: '127.0.0.1',
  });
  const first = async (server: LLMServer, req: HttpRequestLike) =>
    (await server.handleHttp(req).next()).value as { status: number; body: Record<string, unknown> };

  it('answers 503 (loading) until the model is ready, then 200', async () => {
    const server = new LLMServer({ model: models.stories260K, numThreads: 1, auditLog: 'none' });
    expect(await first(server, get('/health'))).toEqual({
      status: 503,
      body: { error: 'model is loading', error_type: 'loading' },
    });
    // Other routes wait for the model instead of failing.
    expect((await first(server, get('/v1/models'))).status).toBe(200);
    expect(await first(server, get('/health'))).toEqual({ status: 200, body: {} });
    await expect(server.checkHealth()).resolves.toBeUndefined();
  });

  it('answers 503 (unhealthy) when the model failed to load, and the health check fails', async () => {
    const broken = path.join(tmp, 'broken.bin');
    writeFileSync(broken, 'not a model');
    const server = new LLMServer({ model: broken, numThreads: 1, auditLog: 'none' });
    const list = await first(server, get('/v1/models'));
    expect(list.status).toBe(503);
    expect(list.body).toMatchObject({ error: { code: 'model_unavailable' } });
    const health = await first(server, get('/health'));
    expect(health).toMatchObject({
      status: 503,
      body: { error_type: 'unhealthy', error: expect.stringContaining('model failed to load') },
    });
    await expect(server.checkHealth()).rejects.toThrow();
  });
});
