/**
 * MultiLoraServer in process (no runtime; request contexts as the replica runs them): one LoRA slot,
 * two catalogued adapters. A running request pins its adapter in the multiplexing cache, so a second
 * adapter loads beside it (the engine holds both); when the second request ends, over capacity, its idle
 * adapter is evicted from the cache and unloaded from the engine, never the pinned one. Answers equal those of LLMServer with both loaded.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { HttpRequestLike } from '@flotilla/core';
import type { LLMEngine } from '@flotilla/engine';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { MultiLoraServer } from '../../packages/deployments/src/lora-multiplex.js';
import { endRequest, requestContextStorage, type RequestContext } from '../../packages/core/src/request-context.js';
import { describeWithModels, models } from '../helpers/models.js';
import { writeStoriesAdapters } from '../helpers/lora-adapters.js';

const request = (model: string): HttpRequestLike => ({
  method: 'POST',
  path: '/v1/completions',
  query: {},
  headers: { 'content-type': 'application/json' },
  body: { model, prompt: 'Once upon a time', max_tokens: 10, temperature: 0 },
  requestId: `evict-${model}`,
  clientIp: '127.0.0.1',
});
const ctx = (model: string): RequestContext => ({
  requestId: `evict-${model}`,
  signal: new AbortController().signal,
  app: 'a',
  deployment: 'Tuned',
  method: 'handleHttp',
});

/** Lets an eviction's async engine.unloadAdapter finish. */
const settle = () => new Promise((r) => setTimeout(r, 50));

async function complete(server: LLMServer, model: string): Promise<string> {
  const head = (await server.handleHttp(request(model)).next()).value as { status: number; body: any };
  expect(head.status).toBe(200);
  return head.body.choices[0].text;
}

describeWithModels('MultiLoraServer eviction (one LoRA slot, in process)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-multi-lora-evict-'));
  let modules = '';
  beforeAll(async () => {
    modules = await writeStoriesAdapters(dir, ['a0', 'a1'], 90);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const options = () => ({
    model: models.stories260KHf,
    servedModelName: 'stories',
    numThreads: 1,
    auditLog: 'none' as const,
    loraModules: modules,
    maxLoraRank: 8,
  });

  it('pins the adapter of a running request, and unloads the idle one from the engine', async () => {
    const single = new LLMServer({ ...options(), maxLoras: 2 });
    const expected = { a0: await complete(single, 'a0'), a1: await complete(single, 'a1') };
    await single.dispose();
    expect(expected.a0).not.toBe(expected.a1);

    const server = new MultiLoraServer({ ...options(), maxLoras: 1 });
    try {
      const engine = () => (server as unknown as { engine: LLMEngine }).engine;
      expect(server.adapterCapacity).toBe(1);
      expect(await complete(server, 'stories')).not.toBe(expected.a0);
      const names = () =>
        engine()
          .listAdapters()
          .map((a) => a.name)
          .sort();
      expect(names()).toEqual([]); // nothing at start-up

      const first = ctx('a0');
      expect(await requestContextStorage.run(first, () => complete(server, 'a0'))).toBe(expected.a0);
      const second = ctx('a1');
      expect(await requestContextStorage.run(second, () => complete(server, 'a1'))).toBe(expected.a1);
      expect(names()).toEqual(['a0', 'a1']); // a0's request still holds it: over capacity, nothing unloaded
      endRequest(second);
      await settle();
      // Over capacity, and a0 still pinned by its request: the idle a1 is the one evicted and unloaded.
      expect(names()).toEqual(['a0']);
      endRequest(first);
      await settle();
      expect(names()).toEqual(['a0']); // within capacity now: kept
      // a1 again (outside a request, so not pinned): loaded anew, same answer; the idle a0 goes.
      expect(await complete(server, 'a1')).toBe(expected.a1);
      await settle();
      expect(names()).toEqual(['a1']);
      // gRPC's model and TGI's adapter_id load the adapter the same way (max_tokens 10 as above).
      const grpc = (await server.grpcGenerate({
        model: 'a0',
        prompt: 'Once upon a time',
        max_tokens: 10,
        temperature: 0,
      })) as { choices: { text: string }[] };
      expect(grpc.choices[0]!.text).toBe(expected.a0);
      await settle();
      expect(names()).toEqual(['a0']);
      const tgi = (await server
        .handleHttp({
          ...request('a1'),
          path: '/generate',
          body: { inputs: 'Once upon a time', parameters: { max_new_tokens: 10, adapter_id: 'a1' } },
        })
        .next()) as { value: { status: number; body: { generated_text: string } } };
      expect(tgi.value.body.generated_text).toBe(expected.a1);
      await settle();
      expect(names()).toEqual(['a1']);
    } finally {
      await server.dispose();
    }
  });
});
