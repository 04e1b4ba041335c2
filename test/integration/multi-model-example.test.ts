/**
 * examples/multi-model.ts as users run it: `serve run` (a child process) with a key=value option, the
 * bundled models as MultiModelServer's catalogue, called with the official openai client: /v1/models lists
 * the catalogue, each model answers as an LLMServer serving it alone, an unknown name is 404.
 */
import OpenAI from 'openai';
import type { HttpRequestLike } from '@flotilla/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BUNDLED } from '../../examples/multi-model.js';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels } from '../helpers/models.js';

const PROMPT = 'Sara had a red ball';
const TOKENS = 32;

describeWithModels('examples/multi-model.ts through serve run', { timeout: 240_000 }, () => {
  let server: ServeRun;
  let client: OpenAI;
  const expected = new Map<string, string>();

  beforeAll(async () => {
    server = await serveRun(['examples/multi-model.ts:app', 'max_models_per_replica=1'], 180_000);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'none', maxRetries: 0 });
    for (const name of ['stories260K', 'llama2xs-260K']) {
      const entry = BUNDLED[name]!;
      const single = new LLMServer({
        ...(typeof entry === 'string' ? { model: entry } : entry),
        numThreads: 1,
        auditLog: 'none',
      });
      try {
        const req: HttpRequestLike = {
          method: 'POST',
          path: '/v1/completions',
          query: {},
          headers: {},
          body: { prompt: PROMPT, max_tokens: TOKENS, temperature: 0 },
          requestId: `ref-${name}`,
          clientIp: '127.0.0.1',
        };
        expected.set(name, ((await single.handleHttp(req).next()).value as any).body.choices[0].text);
      } finally {
        await single.dispose();
      }
    }
  }, 240_000);
  afterAll(async () => {
    await server?.stop();
  });

  it('lists the catalogue and answers each model as served alone; 404 for another name', async () => {
    expect((await client.models.list()).data.map((m) => m.id)).toEqual(Object.keys(BUNDLED));
    expect(expected.get('stories260K')).not.toBe(expected.get('llama2xs-260K'));
    // One model per replica (the option): the two alternate without failing.
    for (let round = 0; round < 2; round++)
      for (const name of ['stories260K', 'llama2xs-260K']) {
        const c = await client.completions.create({ model: name, prompt: PROMPT, max_tokens: TOKENS, temperature: 0 });
        expect(c.model).toBe(name);
        expect(c.choices[0]!.text).toBe(expected.get(name));
      }
    const err = await client.completions.create({ model: 'gpt-4', prompt: PROMPT, max_tokens: 4 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });
});
