/**
 * Embeddings through real `serve run` processes of examples/llm-server.ts on the bundled model
 * (models/flotilla-stories/target): POST /v1/embeddings with the official openai client (which asks for
 * base64 and decodes it) and raw HTTP (float), gRPC Embed with @grpc/grpc-js, and a server started with
 * task=embed that refuses generation (400 unsupported_task) while it embeds.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

const MODEL = path.join(repoRoot, 'models/flotilla-stories/target');
const NAME = 'target';
const KEY = 'sk-flotilla-embed-0001';
let server: ServeRun;
let embedOnly: ServeRun;
let client: OpenAI;
let grpcClient: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

const others = Array.from(
  { length: 63 },
  (_, i) =>
    `${['The cat sat', 'A boy ran home', 'Mom baked a cake', 'The dog barked'][i % 4]} ${'again '.repeat(i % 9)}(${i})`,
);

function bits(v: ArrayLike<number>): string {
  return Buffer.from(Float32Array.from(v).buffer).toString('hex');
}

function norm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i]! * v[i]!;
  return Math.sqrt(s);
}

async function post(base: string, route: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${base}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}

interface EmbedReply {
  model: string;
  data: Array<{ index: number; embedding: number[] }>;
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}

function grpcEmbed(req: Record<string, unknown>): Promise<EmbedReply> {
  return new Promise((resolve, reject) =>
    grpcClient.Embed!(req, new grpc.Metadata(), (err: grpc.ServiceError | null, reply: EmbedReply) =>
      err ? reject(err) : resolve(reply),
    ),
  );
}

describeWithModels('LLMServer: embeddings through serve run (bundled flotilla-stories)', () => {
  beforeAll(async () => {
    [server, embedOnly] = await Promise.all([
      serveRun(['examples/llm-server.ts:app', `model=${MODEL}`, `api_keys=${KEY}`]),
      serveRun(['examples/llm-server.ts:app', `model=${MODEL}`, `api_keys=${KEY}`, 'task=embed', 'pooling=mean']),
    ]);
    client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const def = protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), {
      keepCase: true,
      longs: Number,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    grpcClient = new pkg.flotilla.llm.v1.Llm(
      server.grpcAddress,
      grpc.credentials.createInsecure(),
    ) as typeof grpcClient;
  }, 180_000);
  afterAll(async () => {
    grpcClient?.close();
    await Promise.all([server?.stop(), embedOnly?.stop()]);
  });

  it('openai client: unit vectors of the hidden size, equal for equal texts and different for different', async () => {
    const r = await client.embeddings.create({
      model: NAME,
      input: ['Once upon a time', 'Once upon a time', 'The dog barked at the moon'],
    });
    expect(r.object).toBe('list');
    expect(r.model).toBe(NAME);
    expect(r.data.map((d) => d.index)).toEqual([0, 1, 2]);
    const [a, b, c] = r.data.map((d) => d.embedding);
    expect(a).toHaveLength(256);
    expect(norm(a!)).toBeCloseTo(1, 5);
    expect(bits(a!)).toBe(bits(b!));
    expect(bits(a!)).not.toBe(bits(c!));
    const single = await client.embeddings.create({ model: NAME, input: 'Once upon a time' });
    expect(bits(single.data[0]!.embedding)).toBe(bits(a!));
    // usage: the prompt tokens of every input, as /tokenize counts them
    const counts = await Promise.all(
      ['Once upon a time', 'Once upon a time', 'The dog barked at the moon'].map(
        async (prompt) => (await post(server.url, '/tokenize', { prompt })).json.count as number,
      ),
    );
    const total = counts.reduce((x, y) => x + y, 0);
    expect(r.usage).toEqual({ prompt_tokens: total, total_tokens: total });
  });

  it('base64 decodes to the float vector; token-id input equals text input', async () => {
    const text = 'Lily found a shiny stone';
    const asFloat = await post(server.url, '/v1/embeddings', { input: text, encoding_format: 'float' });
    const asBase64 = await post(server.url, '/v1/embeddings', { input: text, encoding_format: 'base64' });
    expect(asFloat.status).toBe(200);
    expect(typeof asBase64.json.data[0].embedding).toBe('string');
    const raw = Buffer.from(asBase64.json.data[0].embedding as string, 'base64');
    const decoded = new Float32Array(raw.buffer, raw.byteOffset, raw.length / 4);
    expect(bits(decoded)).toBe(bits(asFloat.json.data[0].embedding as number[]));
    const ids = (await post(server.url, '/tokenize', { prompt: text })).json.tokens as number[];
    const byIds = await client.embeddings.create({ model: NAME, input: ids, encoding_format: 'float' });
    expect(bits(byIds.data[0]!.embedding)).toBe(bits(asFloat.json.data[0].embedding as number[]));
    const byIdLists = await client.embeddings.create({ model: NAME, input: [ids, ids.slice(0, 3)] });
    expect(bits(byIdLists.data[0]!.embedding)).toBe(bits(asFloat.json.data[0].embedding as number[]));
    expect(byIdLists.usage.prompt_tokens).toBe(ids.length + 3);
  });

  it('is batch-invariant: a text alone and among 63 others gives identical bits', async () => {
    const text = 'Tom and his sister went to the sea';
    const alone = await client.embeddings.create({ model: NAME, input: text });
    const batch = await client.embeddings.create({
      model: NAME,
      input: [...others.slice(0, 20), text, ...others.slice(20)],
    });
    expect(batch.data).toHaveLength(64);
    expect(bits(batch.data[20]!.embedding)).toBe(bits(alone.data[0]!.embedding));
    // and concurrent requests, embedded in shared steps, too
    const concurrent = await Promise.all(
      others.slice(0, 8).map((t) => client.embeddings.create({ model: NAME, input: t })),
    );
    for (let i = 0; i < 8; i++) expect(bits(concurrent[i]!.data[0]!.embedding)).toBe(bits(batch.data[i]!.embedding));
  });

  it('refuses dimensions other than the model size, bad inputs and unknown fields with 400 in OpenAI shape', async () => {
    const ok = await client.embeddings.create({ model: NAME, input: 'hi', dimensions: 256 });
    expect(ok.data[0]!.embedding).toHaveLength(256);
    const dims = await client.embeddings.create({ model: NAME, input: 'hi', dimensions: 64 }).catch((e: unknown) => e);
    expect(dims).toBeInstanceOf(OpenAI.BadRequestError);
    expect((dims as InstanceType<typeof OpenAI.BadRequestError>).param).toBe('dimensions');
    for (const [body, param] of [
      [{ input: '' }, 'input'],
      [{ input: [] }, 'input'],
      [{ input: ['a', 3] }, 'input'],
      [{ input: [[1, 2], []] }, 'input[1]'],
      [{ input: [1, -2] }, 'input'],
      [{ input: 'x', encoding_format: 'int8' }, 'encoding_format'],
      [{ input: 'x', extra: 1 }, 'extra'],
      [{ input: [[1, 999999]] }, 'input'],
    ] as const) {
      const r = await post(server.url, '/v1/embeddings', body);
      expect([r.status, r.json.error.param], JSON.stringify(body)).toEqual([400, param]);
    }
    const long = await post(server.url, '/v1/embeddings', { input: 'once upon a time '.repeat(400) });
    expect([long.status, long.json.error.code]).toEqual([400, 'context_length_exceeded']);
    // any model name is the served model (strict_model_name=true: vLLM's 404, see deploy-llm-clients.test.ts)
    const other = await client.embeddings.create({ model: 'gpt-9', input: 'x' });
    expect(other.model).toBe(NAME);
  });

  it('gRPC Embed gives the same vectors as HTTP, with usage', async () => {
    const texts = ['Once upon a time', 'The dog barked at the moon'];
    const http = await client.embeddings.create({ model: NAME, input: texts, encoding_format: 'float' });
    const r = await grpcEmbed({ api_key: KEY, model: NAME, input: texts });
    expect(r.data.map((d) => d.index)).toEqual([0, 1]);
    for (let i = 0; i < 2; i++) expect(bits(r.data[i]!.embedding)).toBe(bits(http.data[i]!.embedding));
    expect(r.usage.prompt_tokens).toBe(http.usage.prompt_tokens);
    expect(r.usage.total_tokens).toBe(http.usage.prompt_tokens);
    const ids = (await post(server.url, '/tokenize', { prompt: texts[0] })).json.tokens as number[];
    const byIds = await grpcEmbed({ api_key: KEY, input_token_ids: [{ ids }] });
    expect(bits(byIds.data[0]!.embedding)).toBe(bits(http.data[0]!.embedding));
    const both = await grpcEmbed({ api_key: KEY, input: texts, input_token_ids: [{ ids }] }).catch((e: unknown) => e);
    expect((both as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const dims = await grpcEmbed({ api_key: KEY, input: texts, dimensions: 3 }).catch((e: unknown) => e);
    expect((dims as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const unauth = await grpcEmbed({ input: texts }).catch((e: unknown) => e);
    expect((unauth as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
  });

  it('a server with task=embed embeds (mean pooling here) and refuses generation routes with 400 unsupported_task', async () => {
    const embedClient = new OpenAI({ baseURL: `${embedOnly.url}/v1`, apiKey: KEY, maxRetries: 0 });
    const mean = await embedClient.embeddings.create({ model: NAME, input: 'Once upon a time there was a cat' });
    const last = await client.embeddings.create({ model: NAME, input: 'Once upon a time there was a cat' });
    expect(norm(mean.data[0]!.embedding)).toBeCloseTo(1, 5);
    expect(bits(mean.data[0]!.embedding)).not.toBe(bits(last.data[0]!.embedding));
    const completion = await embedClient.completions
      .create({ model: NAME, prompt: 'Hi', max_tokens: 3 })
      .catch((e: unknown) => e);
    expect(completion).toBeInstanceOf(OpenAI.BadRequestError);
    expect((completion as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('unsupported_task');
    expect((completion as Error).message).toMatch(/embeddings only/);
    const chat = await embedClient.chat.completions
      .create({ model: NAME, messages: [{ role: 'user', content: 'Hi' }] })
      .catch((e: unknown) => e);
    expect((chat as InstanceType<typeof OpenAI.BadRequestError>).status).toBe(400);
    const tgi = await post(embedOnly.url, '/generate', { inputs: 'Hi' });
    expect(tgi.status).toBe(400);
    // /tokenize and /v1/models still answer
    expect((await post(embedOnly.url, '/tokenize', { prompt: 'Hi' })).status).toBe(200);
    expect((await embedClient.models.list()).data[0]!.id).toBe(NAME);
  });
});
