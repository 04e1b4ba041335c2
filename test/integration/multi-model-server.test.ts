/**
 * MultiModelServer on the real runtime (startServe, two thread replicas holding two models each, the HTTP
 * proxy), called with the official openai client: a catalogue of five base models (the bundled
 * stories260K, its Hugging Face copy, llama2xs-260K, and two random models written here). Each answer
 * equals the same model's served alone by an in-process LLMServer (greedy); the replicas load only what
 * is routed to them and repeats hit the holder (their /-/status `models`); under concurrent streams over
 * all five (more than the four slots) models are evicted and every request still ends with its model's
 * text; /v1/models lists the catalogue, an unknown name is 404 model_not_found (gRPC NOT_FOUND), TGI picks
 * by the header, llm.proto by the request's `model`.
 * Behind an LLMFront, the request's `model` reaches the graph's router: each model is loaded once; the
 * front's embeddings and /tokenize run on the model named, equal to the fleet's own answers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import type { HttpRequestLike, ServeStatus } from '@flotilla/core';
import { makeRandomModel } from '@flotilla/engine';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLM_GRPC_SERVICE } from '../../packages/deployments/src/grpc/llm-grpc.js';
import { LLMServer } from '../../packages/deployments/src/llm-server.js';
import { catalogueModelId } from '../../packages/deployments/src/multi-model-server.js';
import { fleetFrontApp, fleetOptions, multiModelApp } from '../fixtures/apps/multi-model.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { describeWithModels, models } from '../helpers/models.js';

const PROMPT = 'Once upon a time';
const TOKENS = 32; // stories260K and llama2xs-260K agree on their first dozen tokens
const RANDOM = { dim: 64, hiddenDim: 128, nLayers: 2, nHeads: 4, nKvHeads: 4, vocabSize: 512, maxSeqLen: 256 };

function replicasOf(status: ServeStatus, app: string, deployment = 'ModelFleet') {
  const d = status.applications.find((a) => a.name === app)?.deployments.find((x) => x.name === deployment);
  return d?.replicas ?? [];
}

describeWithModels('MultiModelServer (2 thread replicas x 2 models, 5 base models)', { timeout: 240_000 }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'flotilla-multi-model-'));
  const expected = new Map<string, string>();
  let catalogue: Record<string, string | { model: string; tokenizer: string }>;
  let served: Served;
  let client: OpenAI;

  beforeAll(async () => {
    catalogue = {
      stories: models.stories260K,
      xs: { model: models.llama2xs260K, tokenizer: models.tok512 },
      hf: models.stories260KHf,
      rand1: await makeRandomModel(RANDOM, { format: 'llama2c', dir: path.join(dir, 'r1'), seed: 11, std: 0.5 }),
      rand2: await makeRandomModel(RANDOM, { format: 'llama2c', dir: path.join(dir, 'r2'), seed: 12, std: 0.5 }),
    };
    // The reference: each model served alone by LLMServer, with the fleet's engine options.
    const { models: _catalogue, maxModelsPerReplica: _cap, ...engineOptions } = fleetOptions(catalogue);
    for (const [name, entry] of Object.entries(catalogue)) {
      const single = new LLMServer({
        ...engineOptions,
        ...(typeof entry === 'string' ? { model: entry } : entry),
        servedModelName: name,
      });
      try {
        const head = (await single.handleHttp(completionRequest(name)).next()).value as { status: number; body: any };
        expect(head.status).toBe(200);
        expected.set(name, head.body.choices[0].text);
      } finally {
        await single.dispose();
      }
    }
    served = await serveForTest(
      [
        { name: 'fleet', routePrefix: '/', app: multiModelApp(catalogue) },
        { name: 'front', routePrefix: '/front', app: fleetFrontApp(catalogue) },
      ],
      { grpcServices: [{ ...LLM_GRPC_SERVICE, app: 'fleet' }] },
    );
    await eventually(
      () => replicasOf(served.instance.status(), 'fleet').filter((r) => r.state === 'RUNNING').length === 2,
      90_000,
      'two RUNNING replicas',
    );
    client = new OpenAI({ baseURL: `${served.url}/v1`, apiKey: 'none', maxRetries: 0 });
  }, 240_000);
  afterAll(async () => {
    await served?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const complete = (model: string, c = client) =>
    c.completions.create({ model, prompt: PROMPT, max_tokens: TOKENS, temperature: 0 });
  const held = (app = 'fleet') => replicasOf(served.instance.status(), app).map((r) => r.models);
  const sum = (key: 'loads' | 'hits' | 'evictions', app = 'fleet') =>
    held(app).reduce((n, m) => n + (m?.[key] ?? 0), 0);
  const withHeld = (e: Error) => {
    throw new Error(`${e.message}; replicas' models: ${JSON.stringify(held())}`);
  };

  it('answers each model as served alone, loads it where routed, and hits the holder on repeats', async () => {
    // The models can be told apart (stories and hf are one model in two layouts).
    expect(new Set(expected.values()).size).toBe(4);
    expect(held().every((m) => m === undefined)).toBe(true); // nothing loads at start-up
    const names = ['stories', 'xs', 'rand1', 'rand2'];
    for (const name of names) {
      const c = await complete(name);
      expect(c.model).toBe(name);
      expect(c.choices[0]!.text).toBe(expected.get(name));
      // The routers learn holders from the replicas' reports (about once a second).
      await eventually(() => held().some((m) => m?.ids.includes(name)), 10_000, `${name} reported`).catch(withHeld);
    }
    const loadsBefore = sum('loads');
    expect(loadsBefore).toBe(4);
    for (let round = 0; round < 2; round++)
      for (const name of names) expect((await complete(name)).choices[0]!.text).toBe(expected.get(name));
    await eventually(() => sum('hits') >= 8, 10_000, 'the repeats reported').catch(withHeld);
    // Every repeat landed on the replica holding its model: no load, no eviction, each model held once.
    expect(sum('loads')).toBe(loadsBefore);
    expect(sum('evictions')).toBe(0);
    const after = held();
    for (const m of after) expect(m?.capacity).toBe(2);
    expect(after.flatMap((m) => m?.ids ?? []).sort()).toEqual([...names].sort());
    // /metrics: each loaded model's engine series by its name, and core's multiplexing gauges.
    const metrics = await (await fetch(`${served.url}/metrics`)).text();
    for (const name of names) {
      expect(metrics).toMatch(new RegExp(`vllm:generation_tokens_total\\{[^}]*model_name="${name}"`));
      expect(metrics).toMatch(new RegExp(`flotilla_replica_multiplexed_model_loaded\\{[^}]*model="${name}"`));
    }
  });

  it('evicts under pressure without failing a running request', async () => {
    // Five models over four slots, three concurrent streams each: some replica must load past its two,
    // and its idle models go while the pinned ones finish.
    const evictionsBefore = sum('evictions');
    const runs = Object.keys(catalogue).flatMap((name) =>
      [0, 1, 2].map(async () => {
        const stream = await client.completions.create({
          model: name,
          prompt: PROMPT,
          max_tokens: TOKENS,
          temperature: 0,
          stream: true,
        });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
        return [name, text] as const;
      }),
    );
    for (const [name, text] of await Promise.all(runs)) expect(text, name).toBe(expected.get(name));
    await eventually(() => sum('evictions') > evictionsBefore, 10_000, 'evictions reported').catch(withHeld);
    // Once the pins are gone, each replica is back within its capacity.
    await eventually(() => held().every((m) => (m?.ids.length ?? 0) <= 2), 10_000, 'within capacity').catch(withHeld);
  });

  it('lists the catalogue, answers an unknown model with 404, TGI by the header, gRPC by `model`', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual(Object.keys(catalogue));
    const err = await complete('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    const tgi = await fetch(`${served.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', serve_multiplexed_model_id: 'xs' },
      body: JSON.stringify({ inputs: PROMPT, parameters: { max_new_tokens: TOKENS } }),
    });
    expect(tgi.status).toBe(200);
    expect(((await tgi.json()) as { generated_text: string }).generated_text).toBe(expected.get('xs'));
    const unknown = await fetch(`${served.url}/generate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', serve_multiplexed_model_id: 'nope' },
      body: JSON.stringify({ inputs: PROMPT }),
    });
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { error_type: string }).error_type).toBeTruthy(); // TGI's shape
    const reply = (await grpcGenerate({ model: 'rand1', prompt: PROMPT, max_tokens: TOKENS, temperature: 0 })) as {
      model: string;
      choices: Array<{ text: string }>;
    };
    expect(reply.model).toBe('rand1');
    expect(reply.choices[0]!.text).toBe(expected.get('rand1'));
    const missing = await grpcGenerate({ model: 'nope', prompt: PROMPT, max_tokens: 4 }).catch((e: unknown) => e);
    expect((missing as grpc.ServiceError).code).toBe(grpc.status.NOT_FOUND);
  });

  /** llm.proto's Generate on the proxy's gRPC port. */
  const grpcGenerate = (req: Record<string, unknown>): Promise<unknown> => {
    const def = protoLoader.loadSync(LLM_GRPC_SERVICE.protoPath, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    const c = new pkg.flotilla.llm.v1.Llm(served.grpcAddress, grpc.credentials.createInsecure()) as grpc.Client &
      Record<string, (...args: unknown[]) => unknown>;
    return new Promise((resolve, reject) =>
      c.Generate!(req, (err: grpc.ServiceError | null, reply: unknown) => {
        c.close();
        if (err) reject(err);
        else resolve(reply);
      }),
    );
  };

  it("behind an LLMFront, routes a request's model to the graph replica that holds it", async () => {
    const front = new OpenAI({ baseURL: `${served.url}/front/v1`, apiKey: 'none', maxRetries: 0 });
    expect((await front.models.list()).data.map((m) => m.id)).toEqual(['fleet', ...Object.keys(catalogue)]);
    for (let round = 0; round < 3; round++)
      for (const name of ['xs', 'rand1']) {
        const c = await complete(name, front);
        expect(c.model).toBe(name);
        expect(c.choices[0]!.text).toBe(expected.get(name));
      }
    await eventually(() => sum('hits', 'front') >= 10, 10_000, 'the front graph reported').catch(withHeld);
    // The front names the model on its calls (tokenizePrompt and generateStream): each model was loaded
    // once, on one replica, though the routers had no report of any holder when the first calls went out.
    expect(sum('loads', 'front')).toBe(2);
    expect(
      held('front')
        .flatMap((m) => m?.ids ?? [])
        .sort(),
    ).toEqual(['rand1', 'xs']);
  });

  it('behind an LLMFront, embeddings and /tokenize run on the model the request names, as the fleet answers', async () => {
    const front = new OpenAI({ baseURL: `${served.url}/front/v1`, apiKey: 'none', maxRetries: 0 });
    const bits = (v: ArrayLike<number>) => Buffer.from(Float32Array.from(v).buffer).toString('hex');
    const post = async (base: string, route: string, body: unknown) =>
      (await fetch(`${served.url}${base}${route}`, { method: 'POST', body: JSON.stringify(body) })).json();
    const vectors: string[] = [];
    for (const name of ['xs', 'rand1']) {
      const viaFront = await front.embeddings.create({ model: name, input: PROMPT });
      const direct = await client.embeddings.create({ model: name, input: PROMPT });
      expect(viaFront.model).toBe(name);
      expect(bits(viaFront.data[0]!.embedding)).toBe(bits(direct.data[0]!.embedding));
      vectors.push(bits(viaFront.data[0]!.embedding));
      const body = { model: name, prompt: PROMPT };
      expect(await post('/front', '/tokenize', body)).toEqual(await post('', '/tokenize', body));
    }
    expect(vectors[0]).not.toBe(vectors[1]); // two models, two answers
  });

  it('reads the model a call names: OpenAI and /tokenize bodies, gRPC and graph requests, not TGI bodies', () => {
    const http = (p: string, body: unknown) => ['handleHttp', [{ method: 'POST', path: p, body }]] as const;
    expect(catalogueModelId(...http('/v1/chat/completions', { model: 'xs', messages: [] }))).toBe('xs');
    expect(catalogueModelId(...http('/tokenize', { model: 'xs', prompt: 'x' }))).toBe('xs');
    expect(catalogueModelId(...http('/generate', { inputs: 'x', parameters: { adapter_id: 'xs' } }))).toBeUndefined();
    expect(catalogueModelId('grpcGenerate', [{ model: 'xs', prompt: 'x' }])).toBe('xs');
    expect(catalogueModelId('generateStream', [{ model: 'xs', requestId: 'r' }])).toBe('xs');
    for (const method of ['tokenizeEmbeddingInputs', 'embedTokens', 'tokenizeText', 'detokenizeTokens'])
      expect(catalogueModelId(method, [{ model: 'xs', requestId: 'r' }])).toBe('xs');
    expect(catalogueModelId('graphInfo', [])).toBeUndefined();
  });
});

function completionRequest(model: string): HttpRequestLike {
  return {
    method: 'POST',
    path: '/v1/completions',
    query: {},
    headers: { 'content-type': 'application/json' },
    body: { model, prompt: PROMPT, max_tokens: TOKENS, temperature: 0 },
    requestId: `ref-${model}`,
    clientIp: '127.0.0.1',
  };
}
