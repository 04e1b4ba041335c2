/**
 * HybridRouter and ResponseCache as GenerationGraphs over fake model handles (plain objects answering
 * graphInfo / tokenizePrompt / generateStream): the router's choice travels from tokenizePrompt to
 * generateStream, a model failing before its first delta falls back to the other; the cache answers a
 * repeated deterministic request from its store, never a sampled one, keeps no partial answer, and
 * refuses logprobs on a hit by the API's name.
 */
import type { DeploymentHandle } from '@flotilla/core';
import { describe, expect, it } from 'vitest';
import { InvalidParameterError, ModelNotFoundError } from '../../packages/deployments/src/errors.js';
import type { GraphDelta, GraphRequest } from '../../packages/deployments/src/graph.js';
import { HybridRouter } from '../../packages/deployments/src/hybrid-router.js';
import { ResponseCache } from '../../packages/deployments/src/response-cache.js';

/** A fake model deployment: answers `text` one character per delta; `failing` makes generateStream throw first. */
function fakeModel(name: string, text: string) {
  const state = { failing: false, generated: 0, tokenized: 0 };
  const deltas = (): GraphDelta[] =>
    [...text].map((c, i) => ({
      index: 0,
      text: c,
      tokenIds: [c.charCodeAt(0)],
      finished: i === text.length - 1,
      finishReason: i === text.length - 1 ? 'length' : null,
      stopReason: null,
      usage: { promptTokens: 2, completionTokens: i + 1 },
    }));
  const handle = {
    async remote(method: string) {
      if (method === 'graphInfo') return { name, maxModelLen: name === 'small' ? 128 : 256, createdS: 5 };
      if (method === 'tokenizePrompt') {
        state.tokenized++;
        return { tokenIds: [1, 2], promptTokens: 2, maxTokens: text.length, n: 1, promptText: 'hi' };
      }
      throw new Error(`no ${method}`);
    },
    remoteStream(method: string): AsyncIterable<GraphDelta> {
      if (method !== 'generateStream') throw new Error(`no ${method}`);
      return (async function* () {
        if (state.failing) throw new Error(`${name} is down`);
        state.generated++;
        yield* deltas();
      })();
    },
  };
  return { handle: handle as unknown as DeploymentHandle, state };
}

const request = (over: Partial<GraphRequest> = {}): GraphRequest => ({
  requestId: 'r1',
  prompt: { text: 'Sara had a ball' },
  params: { temperature: 0 },
  names: { logprobs: 'logprobs' },
  ...over,
});

async function collect(stream: AsyncIterable<GraphDelta>): Promise<string> {
  let text = '';
  for await (const d of stream) text += d.text;
  return text;
}

describe('HybridRouter as a GenerationGraph', () => {
  const router = (small: DeploymentHandle, large: DeploymentHandle) =>
    new HybridRouter(small, large, { retries: 0, backoff: { baseMs: 1, maxMs: 1 } });

  it('classifies in tokenizePrompt and generates on the chosen model; names itself with the shorter context', async () => {
    const small = fakeModel('small', 'abc');
    const large = fakeModel('large', 'XYZ');
    const r = router(small.handle, large.handle);
    expect(await r.graphInfo()).toMatchObject({ name: 'hybrid', maxModelLen: 128, createdS: 5 });
    const easy = await r.tokenizePrompt(request());
    expect(easy.state).toEqual({ model: 'small', reason: 'classifier' });
    expect(await collect(r.generateStream(request({ prepared: easy })))).toBe('abc');
    const hard = await r.tokenizePrompt(request({ prompt: { text: 'Explain why the sky is blue' } }));
    expect(hard.state).toMatchObject({ model: 'large' });
    expect(await collect(r.generateStream(request({ prepared: hard })))).toBe('XYZ');
    expect((await r.routerStats()).decisions).toEqual({ 'small/classifier': 1, 'large/classifier': 1 });
  });

  it('falls back to the other model when the chosen one fails before its first delta, without its token ids', async () => {
    const small = fakeModel('small', 'abc');
    const large = fakeModel('large', 'XYZ');
    const r = router(small.handle, large.handle);
    const prepared = await r.tokenizePrompt(request());
    small.state.failing = true;
    expect(await collect(r.generateStream(request({ prepared })))).toBe('XYZ');
    const stats = await r.routerStats();
    expect(stats.decisions).toEqual({ 'large/fallback': 1 });
    expect(stats.failures).toEqual({ small: 1 });
  });
});

describe('HybridRouter: which model names it takes', () => {
  /** A fake LLMServer handle: its name from modelInfo; grpcGenerate echoes who answered and the model it was sent. */
  const named = (name: string) =>
    ({
      async remote(method: string, args: unknown[]) {
        if (method === 'modelInfo') return { name };
        if (method === 'grpcGenerate') return { answeredBy: name, sent: (args[0] as { model?: unknown }).model };
        throw new Error(`no ${method}`);
      },
    }) as unknown as DeploymentHandle;
  const easy = { prompt: 'Sara had a ball', max_tokens: 4 };

  it('takes any other name as its own (as TGI: the endpoint URL, tgi), the classifier choosing', async () => {
    const r = new HybridRouter(named('s260'), named('l260'), { retries: 0 });
    for (const model of ['tgi', 'http://127.0.0.1:8000', 'hybrid', undefined])
      expect(await r.generate({ ...easy, ...(model ? { model } : {}) })).toMatchObject({
        answeredBy: 's260',
        sent: model ? '' : undefined,
      });
    expect(await r.generate({ ...easy, model: 'l260' })).toEqual({ answeredBy: 'l260', sent: 'l260' });
    expect((await r.routerStats()).decisions).toEqual({ 'small/classifier': 4, 'large/requested': 1 });
  });

  it("with strictModelName answers another name with vLLM's 404 (ModelNotFoundError)", async () => {
    const r = new HybridRouter(named('s260'), named('l260'), { retries: 0, strictModelName: true });
    const err = await r.generate({ ...easy, model: 'tgi' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect((err as ModelNotFoundError).message).toContain("'hybrid', 's260', 'l260'");
    expect(await r.generate({ ...easy, model: 'hybrid' })).toMatchObject({ answeredBy: 's260' });
  });
});

describe('ResponseCache as a GenerationGraph', () => {
  it('answers a repeated greedy request from the cache, a sampled one never', async () => {
    const model = fakeModel('m', 'hello');
    const cache = new ResponseCache(model.handle);
    expect(await collect(cache.generateStream(request()))).toBe('hello');
    expect(await collect(cache.generateStream(request({ requestId: 'r2' })))).toBe('hello');
    expect(model.state.generated).toBe(1);
    await collect(cache.generateStream(request({ params: { temperature: 1 } })));
    await collect(cache.generateStream(request({ params: { temperature: 1 } })));
    expect(model.state.generated).toBe(3);
    expect(await cache.cacheStats()).toMatchObject({ hits: 1, misses: 1, bypasses: 2, entries: 1 });
  });

  it('refuses logprobs on a hit by the API name (chat: logprobs), answers them on a miss', async () => {
    const model = fakeModel('m', 'hello');
    const cache = new ResponseCache(model.handle);
    const withLogprobs = request({ params: { temperature: 0, logprobs: 0 } });
    expect(await cache.tokenizePrompt(withLogprobs)).toMatchObject({ promptTokens: 2 }); // miss: the model answers
    await collect(cache.generateStream(request()));
    for (const names of [{ logprobs: 'logprobs' }, { logprobs: 'top_logprobs' }]) {
      const err = await Promise.resolve(cache.tokenizePrompt({ ...withLogprobs, names })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InvalidParameterError);
      expect((err as InvalidParameterError).param).toBe('logprobs');
    }
  });

  it('keeps no answer that did not finish (a stream left early)', async () => {
    const model = fakeModel('m', 'hello');
    const cache = new ResponseCache(model.handle);
    for await (const _ of cache.generateStream(request())) break;
    expect((await cache.cacheStats()).entries).toBe(0);
    expect(await collect(cache.generateStream(request()))).toBe('hello');
    expect(model.state.generated).toBe(2);
  });
});
