/**
 * Per-key limits across replicas, and gRPC's status codes for the guard: an LLM deployment of two
 * thread replicas sharing one RateLimiter deployment (startServe, real sockets, stories260K), reached
 * over HTTP and over protos/llm.proto with @grpc/grpc-js.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLM_GRPC_SERVICE } from '../../packages/deployments/src/index.js';
import { describeWithModels, models } from '../helpers/models.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { SHARED_REQUESTS_PER_MINUTE, sharedKeys, sharedLimitApp } from '../fixtures/apps/deploy-llm-apps.js';

let served: Served;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

const post = (body: unknown, key?: string) =>
  fetch(`${served.url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
  });

/** A counter of the LLM replicas' metrics on /metrics, per replica label. */
async function perReplica(name: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${served.url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(new RegExp(`^flotilla_llm_${name}\\{([^}]*)\\} (\\S+)$`, 'gm'))) {
    const replica = /replica="([^"]+)"/.exec(m[1]!)?.[1] ?? '';
    out.set(replica, (out.get(replica) ?? 0) + Number(m[2]));
  }
  return out;
}
const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

function unary(req: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) =>
    client.Generate!(req, (err: grpc.ServiceError | null, reply: unknown) => (err ? reject(err) : resolve(reply))),
  );
}
const failure = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the call to fail');
    },
    (e: grpc.ServiceError) => e,
  );

describeWithModels('LLMServer: per-key limits shared by 2 replicas, gRPC status codes (stories260K)', () => {
  beforeAll(async () => {
    served = await serveForTest([{ name: 'shared', routePrefix: '/', app: sharedLimitApp(models.stories260K) }], {
      grpcServices: [{ ...LLM_GRPC_SERVICE, app: 'shared' }],
    });
    await eventually(async () => (await fetch(`${served.url}/health`)).status === 200, 60_000, 'model loaded');
    const def = protoLoader.loadSync(LLM_GRPC_SERVICE.protoPath, { keepCase: true, longs: Number, defaults: true });
    const pkg = grpc.loadPackageDefinition(def) as unknown as {
      flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
    };
    client = new pkg.flotilla.llm.v1.Llm(served.grpcAddress, grpc.credentials.createInsecure()) as typeof client;
  }, 120_000);
  afterAll(async () => {
    client?.close();
    await served?.close();
  });

  it('holds a key to its request limit however the requests spread over the replicas', async () => {
    // Concurrent and long enough to overlap, so that the router (power of two choices) uses both replicas.
    const body = { prompt: 'Once upon a time', max_tokens: 64, ignore_eos: true };
    const first = await Promise.all(
      Array.from({ length: SHARED_REQUESTS_PER_MINUTE }, () => post(body, sharedKeys.http)),
    );
    expect(first.map((r) => r.status)).toEqual(Array(SHARED_REQUESTS_PER_MINUTE).fill(200));
    const served1 = await perReplica('request_success_total');
    expect([...served1.values()].filter((n) => n > 0)).toHaveLength(2);
    const prompts = sum(await perReplica('prompt_tokens_total'));

    // Each replica alone has seen fewer than the limit; together they have seen all of it.
    for (let i = 0; i < 3; i++) {
      const limited = await post(body, sharedKeys.http);
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect((await limited.json()).error.message).toMatch(/Request rate limit reached .*4 requests\/min/);
    }
    expect(sum(await perReplica('prompt_tokens_total'))).toBe(prompts);
    // Another key has its own buckets.
    expect((await post({ prompt: 'Hi', max_tokens: 2 }, sharedKeys.other)).status).toBe(200);
  });

  it('answers gRPC calls without a valid key with UNAUTHENTICATED', async () => {
    const none = await failure(unary({ prompt: 'x', max_tokens: 2 }));
    expect(none.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(none.details).toContain('Missing API key');
    const wrong = await failure(unary({ api_key: 'sk-not-a-key-0000', prompt: 'x', max_tokens: 2 }));
    expect(wrong.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(wrong.details).toContain('Invalid API key');
  });

  it('answers rate-limited gRPC calls with RESOURCE_EXHAUSTED and retry-after, bad parameters with INVALID_ARGUMENT', async () => {
    const ok = { api_key: sharedKeys.grpc, prompt: 'Once upon a time', max_tokens: 2 };
    const bad = await failure(unary({ ...ok, top_p: 0 }));
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(bad.details).toContain('top_p');
    for (let i = 0; i < SHARED_REQUESTS_PER_MINUTE; i++) await unary(ok);
    const limited = await failure(unary(ok));
    expect(limited.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(limited.details).toContain('Request rate limit reached');
    expect(Number(limited.metadata.get('retry-after')[0])).toBeGreaterThanOrEqual(1);
    const stream = client.GenerateStream!(ok) as grpc.ClientReadableStream<unknown>;
    const streamed = await new Promise<grpc.ServiceError>((resolve) => {
      stream.on('error', resolve);
      stream.on('data', () => {});
    });
    expect(streamed.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });
});
