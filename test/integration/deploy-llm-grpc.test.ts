/**
 * protos/llm.proto's Llm service through a real `serve run` on stories260K, with @grpc/grpc-js:
 * Generate (unary) and GenerateStream (server streaming), with the same parameters as HTTP, and errors.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeWithModels, models, repoRoot } from '../helpers/models.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';

const KEY = 'grpc-test-key-0001';
let server: ServeRun;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

interface Choice {
  index: number;
  text: string;
  token_ids: number[];
  finish_reason: string;
  logprobs: Array<{ top: unknown[] }>;
}
interface Reply {
  choices: Choice[];
  usage: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
}
interface StreamMsg {
  index: number;
  text: string;
  finished: boolean;
  finish_reason: string;
  usage: Reply['usage'] | null;
}

function unary(req: Record<string, unknown>, metadata = new grpc.Metadata()): Promise<Reply> {
  return new Promise((resolve, reject) =>
    client.Generate!(req, metadata, (err: grpc.ServiceError | null, reply: Reply) =>
      err ? reject(err) : resolve(reply),
    ),
  );
}

function stream(req: Record<string, unknown>, metadata = new grpc.Metadata()): Promise<StreamMsg[]> {
  return new Promise((resolve, reject) => {
    const call = client.GenerateStream!(req, metadata) as grpc.ClientReadableStream<StreamMsg>;
    const got: StreamMsg[] = [];
    call.on('data', (m: StreamMsg) => got.push(m));
    call.on('error', reject);
    call.on('end', () => resolve(got));
  });
}

describeWithModels('LLMServer: gRPC (protos/llm.proto) through serve run (stories260K)', () => {
  beforeAll(async () => {
    server = await serveRun(['examples/llm-server.ts:app', `model=${models.stories260K}`, `api_keys=${KEY}`]);
    const def = protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), {
      keepCase: true,
      longs: Number,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    client = new pkg.flotilla.llm.v1.Llm(server.grpcAddress, grpc.credentials.createInsecure()) as typeof client;
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await server?.stop();
  });

  it('Generate: greedy completion with usage and logprobs', async () => {
    const r = await unary({ api_key: KEY, prompt: 'Once upon a time', max_tokens: 10, temperature: 0, logprobs: 2 });
    expect(r.choices[0]!.text).toBe(', there was a little girl named Lily');
    expect(r.choices[0]!.finish_reason).toBe('length');
    expect(r.choices[0]!.token_ids).toHaveLength(10);
    expect(r.choices[0]!.logprobs[0]!.top).toHaveLength(2);
    expect(r.usage).toEqual({ prompt_tokens: 5, completion_tokens: 10, total_tokens: 15 });
  });

  it('Generate: chat messages, n and seed', async () => {
    const req = {
      api_key: KEY,
      messages: [{ role: 'user', content: 'Hi' }],
      max_tokens: 6,
      temperature: 1,
      n: 2,
      seed: 3,
    };
    const [a, b] = [await unary(req), await unary(req)];
    expect(a.choices).toHaveLength(2);
    expect(a.choices.map((c) => c.text)).toEqual(b.choices.map((c) => c.text));
  });

  it('GenerateStream: the pieces add up to the unary text; the last message has usage', async () => {
    const msgs = await stream({
      api_key: KEY,
      prompt: 'Once upon a time',
      max_tokens: 10,
      temperature: 0,
      stop: [' named'],
    });
    expect(msgs.map((m) => m.text).join('')).toBe(', there was a little girl');
    const last = msgs.at(-1)!;
    expect(last.finished).toBe(true);
    expect(last.finish_reason).toBe('stop');
    expect(last.usage?.prompt_tokens).toBe(5);
  });

  it('Generate: logit_bias, min_tokens and stop_token_ids, as on HTTP', async () => {
    const base = { api_key: KEY, prompt: 'Once upon a time', max_tokens: 6, temperature: 0 };
    const ref = await unary(base);
    const ids = ref.choices[0]!.token_ids;
    const forced = await unary({ ...base, logit_bias: { 407: 100 } });
    expect(forced.choices[0]!.token_ids).toEqual(new Array(6).fill(407));
    const stopped = await unary({ ...base, stop_token_ids: [ids[2]] });
    expect(stopped.choices[0]!.token_ids).toEqual(ids.slice(0, 3));
    expect(stopped.choices[0]!.finish_reason).toBe('stop');
    const held = await unary({ ...base, stop_token_ids: [ids[2]], min_tokens: 4 }); // ids[2] cannot be sampled at index 2 now
    expect(held.choices[0]!.token_ids.slice(0, 2)).toEqual(ids.slice(0, 2));
    expect(held.choices[0]!.token_ids.slice(0, 4)).not.toContain(ids[2]);
    const bad = await unary({ ...base, logit_bias: { 99999: 1 } }).catch((e: grpc.ServiceError) => e);
    expect((bad as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((bad as grpc.ServiceError).details).toContain('logit_bias');
  });

  it('maps errors to gRPC status codes', async () => {
    const bad = await unary({ api_key: KEY, prompt: 'x', temperature: 9 }).catch((e: grpc.ServiceError) => e);
    expect((bad as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    expect((bad as grpc.ServiceError).details).toContain('temperature');
    const denied = await unary({ api_key: 'wrong-key-000', prompt: 'x' }).catch((e: grpc.ServiceError) => e);
    expect((denied as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((denied as grpc.ServiceError).details).toContain('Invalid API key');
    const keyless = await unary({ prompt: 'x' }).catch((e: grpc.ServiceError) => e);
    expect((keyless as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    const none = await unary({ api_key: KEY }).catch((e: grpc.ServiceError) => e);
    expect((none as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
    const streamed = await stream({ api_key: KEY, prompt: 'x', top_p: 0 }).catch((e: grpc.ServiceError) => e);
    expect((streamed as grpc.ServiceError).code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('takes the API key from authorization metadata, as HTTP takes the header', async () => {
    const bearer = (key: string) => {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${key}`);
      return md;
    };
    const req = { prompt: 'Once upon a time', max_tokens: 4, temperature: 0 };
    expect((await unary(req, bearer(KEY))).usage.completion_tokens).toBe(4);
    expect((await stream(req, bearer(KEY))).at(-1)!.usage?.completion_tokens).toBe(4);
    const wrong = await unary(req, bearer('wrong-key-000')).catch((e: grpc.ServiceError) => e);
    expect((wrong as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((wrong as grpc.ServiceError).details).toContain('Invalid API key');
    const wrongStream = await stream(req, bearer('wrong-key-000')).catch((e: grpc.ServiceError) => e);
    expect((wrongStream as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    const none = await unary(req).catch((e: grpc.ServiceError) => e);
    expect((none as grpc.ServiceError).code).toBe(grpc.status.UNAUTHENTICATED);
    expect((none as grpc.ServiceError).details).toContain('Missing API key');
    const notBearer = new grpc.Metadata();
    notBearer.set('authorization', KEY);
    expect(((await unary(req, notBearer).catch((e: grpc.ServiceError) => e)) as grpc.ServiceError).code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
  });
});
