/**
 * MultiLoraServer on the real runtime (startServe, three thread replicas with two LoRA slots each, the
 * HTTP proxy) called with the official openai client: four random PEFT adapters on stories260K-hf, each
 * request naming one in `model`. The replicas load only the adapters routed to them (their /-/status
 * `models`), repeated names are hits without another load, each answer equals the same adapter's on a
 * single in-process LLMServer holding all four (greedy), and an unknown name is 404 model_not_found.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import OpenAI from 'openai';
import type { HttpRequestLike, ServeStatus } from '@flotilla/core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { requestModelId } from '../../packages/deployments/src/lora-multiplex.js';
import { multiLoraApp } from '../fixtures/apps/multi-lora.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { describeWithModels, models } from '../helpers/models.js';
import { writeStoriesAdapters } from '../helpers/lora-adapters.js';

const ADAPTERS = ['a0', 'a1', 'a2', 'a3'];
const PROMPT = 'Once upon a time';
const TOKENS = 12;

function replicasOf(status: ServeStatus) {
  return status.applications.find((a) => a.name === 'tuned')?.deployments[0]?.replicas ?? [];
}

describeWithModels('MultiLoraServer (3 thread replicas, adapters multiplexed)', { timeout: 180_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-multi-lora-'));
  const expected = new Map<string, string>();
  let served: Served;
  let client: OpenAI;

  beforeAll(async () => {
    const modules = await writeStoriesAdapters(dir, ADAPTERS, 70);
    // The reference: one engine holding all four adapters, through LLMServer's own handler.
    const single = new LLMServer({
      model: models.stories260KHf,
      servedModelName: 'stories',
      numThreads: 1,
      auditLog: 'none',
      loraModules: modules,
      maxLoras: 4,
      maxLoraRank: 8,
    });
    try {
      for (const name of [...ADAPTERS, 'stories']) {
        const req: HttpRequestLike = {
          method: 'POST',
          path: '/v1/completions',
          query: {},
          headers: { 'content-type': 'application/json' },
          body: { model: name, prompt: PROMPT, max_tokens: TOKENS, temperature: 0 },
          requestId: `ref-${name}`,
          clientIp: '127.0.0.1',
        };
        const head = (await single.handleHttp(req).next()).value as { status: number; body: any };
        expect(head.status).toBe(200);
        expected.set(name, head.body.choices[0].text);
      }
    } finally {
      await single.dispose();
    }
    served = await serveForTest([{ name: 'tuned', routePrefix: '/', app: multiLoraApp(modules) }], { grpc: false });
    await eventually(
      () => replicasOf(served.instance.status()).filter((r) => r.state === 'RUNNING').length === 3,
      90_000,
      'three RUNNING replicas',
    );
    client = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'none', maxRetries: 0 });
  }, 180_000);
  afterAll(async () => {
    await served?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const complete = (model: string) =>
    client.completions.create({ model, prompt: PROMPT, max_tokens: TOKENS, temperature: 0 });
  const held = () => replicasOf(served.instance.status()).map((r) => r.models);
  /** Adds what the replicas hold to a timeout's message. */
  const withHeld = (e: Error) => {
    throw new Error(`${e.message}; replicas' models: ${JSON.stringify(held())}`);
  };

  it('loads each adapter on the replica it is routed to, answers as a single engine, and hits on repeats', async () => {
    expect(new Set(expected.values()).size).toBe(5); // the adapters (and the base) can be told apart
    // Nothing is loaded at start-up: no replica reports models before a request names an adapter.
    expect(held().every((m) => m === undefined)).toBe(true);
    const first = await complete('a0');
    expect(first.model).toBe('a0');
    expect(first.choices[0]!.text).toBe(expected.get('a0'));
    // From the first report on, the routers route by adapter.
    await eventually(() => held().some((m) => m?.ids.includes('a0')), 10_000, 'a0 reported');
    // Each first load is reported before the next adapter is asked for, as the routers learn holders from
    // the replicas' reports (about once a second).
    for (const name of ADAPTERS.slice(1)) {
      expect((await complete(name)).choices[0]!.text).toBe(expected.get(name));
      await eventually(() => held().some((m) => m?.ids.includes(name)), 10_000, `${name} reported`).catch(withHeld);
    }

    const loadsBefore = held().reduce((n, m) => n + (m?.loads ?? 0), 0);
    for (let round = 0; round < 2; round++)
      for (const name of ADAPTERS) {
        const c = await complete(name);
        expect(c.model).toBe(name);
        expect(c.choices[0]!.text).toBe(expected.get(name));
      }
    await eventually(() => held().reduce((n, m) => n + (m?.hits ?? 0), 0) >= 8, 10_000, 'the repeats reported').catch(
      withHeld,
    );
    const after = held();
    // Every repeat was a hit on a replica already holding its adapter: no load, no eviction.
    expect(after.reduce((n, m) => n + (m?.loads ?? 0), 0)).toBe(loadsBefore);
    expect(after.reduce((n, m) => n + (m?.evictions ?? 0), 0)).toBe(0);
    for (const m of after) if (m) expect(m.capacity).toBe(2); // the engine's LoRA slots
    // Each adapter is held once across the replicas, none over its two slots: not all four everywhere.
    const ids = after.flatMap((m) => m?.ids ?? []);
    expect([...ids].sort()).toEqual([...ADAPTERS].sort());
    expect(after.every((m) => (m?.ids.length ?? 0) <= 2)).toBe(true);
  });

  it('serves the base model by its name, and answers an unknown adapter with 404 model_not_found', async () => {
    expect((await complete('stories')).choices[0]!.text).toBe(expected.get('stories'));
    const err = await complete('a9').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
  });

  it('reads the model a call names from OpenAI, TGI and gRPC requests', () => {
    const http = (p: string, body: unknown) => ['handleHttp', [{ method: 'POST', path: p, body }]] as const;
    expect(requestModelId(...http('/v1/chat/completions', { model: 'a1', messages: [] }))).toBe('a1');
    expect(requestModelId(...http('/generate', { inputs: 'x', parameters: { adapter_id: 'a2' } }))).toBe('a2');
    expect(requestModelId(...http('/generate', { inputs: 'x' }))).toBeUndefined();
    expect(requestModelId(...http('/health', { model: 'a1' }))).toBeUndefined();
    expect(requestModelId('grpcGenerateStream', [{ model: 'a3', prompt: 'x' }])).toBe('a3');
    expect(requestModelId('handleHttp', [{ method: 'GET', path: '/v1/models' }])).toBeUndefined();
    expect(requestModelId('grpcGenerate', ['not an object'])).toBeUndefined();
  });
});
