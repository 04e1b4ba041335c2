/**
 * Prefix-aware routing end to end: an LLMServer deployment with routing 'prefix-aware' and three thread
 * replicas on stories260K with prefix caching, behind the real HTTP and gRPC proxies (startServe, real
 * sockets). The routing key is LLMServer's static routingKey (the prompt's first characters), computed
 * by the callers' routers in this process: requests sharing a ~256-token prefix, over OpenAI completions,
 * TGI, gRPC Generate and a handle call, all land on one replica and hit its prefix cache; a chat
 * conversation's turns stay together; unrelated prompts spread over the replicas. Which replica served
 * what is read from each replica's own engine counters (LLMServer.collectMetrics through
 * ServeInstance.replicaMetrics): flotilla_llm_request_success_total and flotilla_llm_prefix_cache_hits_total.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLM_GRPC_SERVICE } from '../../packages/deployments/src/index.js';
import { describeWithModels, models } from '../helpers/models.js';
import { eventually, serveForTest, type Served } from '../helpers/ingress.js';
import { prefixRoutedApp } from '../fixtures/apps/prefix-routing.js';

const APP = 'prefix';
let served: Served;
let client: grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/** A shared ~256-token preamble (stories260K's 512-token vocabulary spends about 2.5 characters a token). */
const SHARED = [
  'Once upon a time, there was a little girl named Lily. She loved to play in the park with her big red ball.',
  'One day, she saw a small dog under a tall tree. The dog was sad because it could not find its way home.',
  'Lily wanted to help the dog, so she gave it some water and a piece of her bread. The dog wagged its tail.',
  'They walked together along the river to look for its house. On the way they met a wise old owl in a tree.',
  'The owl said, "I know where the dog lives. It is the blue house next to the big garden with many flowers."',
  'Lily and the dog ran to the blue house. A kind old man opened the door and smiled at them.',
].join(' ');

interface Counters {
  served: number;
  hits: number;
}

/** Each replica's engine counters, by replica id (each replica reports its own registry). */
async function counters(): Promise<Map<string, Counters>> {
  const out = new Map<string, Counters>();
  for (const r of await served.instance.replicaMetrics()) {
    if (r.app !== APP) continue;
    const metrics = r.metrics as Array<{ name: string; values: Array<{ value: number }> }>;
    const total = (name: string) =>
      metrics.find((m) => m.name === name)?.values.reduce((sum, v) => sum + v.value, 0) ?? 0;
    out.set(r.replica, {
      served: total('flotilla_llm_request_success_total'),
      hits: total('flotilla_llm_prefix_cache_hits_total'),
    });
  }
  return out;
}

/** What each replica did between two readings. */
function delta(before: Map<string, Counters>, after: Map<string, Counters>): Map<string, Counters> {
  const out = new Map<string, Counters>();
  for (const [id, a] of after) {
    const b = before.get(id) ?? { served: 0, hits: 0 };
    out.set(id, { served: a.served - b.served, hits: a.hits - b.hits });
  }
  return out;
}

/** Runs `requests` one after another (so that load never outweighs affinity) and returns what each replica did. */
async function measure(requests: Array<() => Promise<void>>): Promise<Map<string, Counters>> {
  const before = await counters();
  for (const send of requests) await send();
  return delta(before, await counters());
}

const servedBy = (d: Map<string, Counters>) => [...d].filter(([, c]) => c.served > 0).map(([id]) => id);

async function post(path: string, body: unknown): Promise<void> {
  const res = await fetch(`${served.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  await res.arrayBuffer();
}

const grpcGenerate = (req: Record<string, unknown>) =>
  new Promise<void>((resolve, reject) =>
    client.Generate!(req, (err: grpc.ServiceError | null) => (err ? reject(err) : resolve())),
  );

describeWithModels('prefix-aware routing of LLMServer through the proxies (3 replicas, stories260K)', () => {
  beforeAll(async () => {
    served = await serveForTest([{ name: APP, routePrefix: '/', app: prefixRoutedApp(models.stories260K) }], {
      grpcServices: [{ ...LLM_GRPC_SERVICE, app: APP }],
    });
    // Every replica reports engine counters once its model is loaded.
    await eventually(async () => (await counters()).size === 3, 90_000, 'three replicas with a loaded model');
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

  it('sends requests sharing a ~256-token prefix (OpenAI, TGI, gRPC, a handle) to one replica, which hits its prefix cache', async () => {
    const tokenized = await fetch(`${served.url}/tokenize`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ prompt: SHARED }),
    });
    const prefixTokens = ((await tokenized.json()) as { count: number }).count;
    expect(prefixTokens).toBeGreaterThanOrEqual(220);
    expect(prefixTokens).toBeLessThanOrEqual(300);

    const endings = ['The man', 'Then the dog', 'Lily said', 'After that', 'The owl', 'In the end', 'So they'];
    const handle = served.instance.getHandle(APP);
    const requests: Array<() => Promise<void>> = [
      ...endings
        .slice(0, 4)
        .map((end) => () => post('/v1/completions', { prompt: `${SHARED} ${end}`, max_tokens: 4, temperature: 0 })),
      () => post('/generate', { inputs: `${SHARED} ${endings[4]}`, parameters: { max_new_tokens: 4 } }),
      () => grpcGenerate({ prompt: `${SHARED} ${endings[5]}`, max_tokens: 4, temperature: 0 }),
      async () => {
        await handle.remote('grpcGenerate', [{ prompt: `${SHARED} ${endings[6]}`, max_tokens: 4, temperature: 0 }]);
      },
    ];
    const d = await measure(requests);
    const [replica, ...others] = servedBy(d);
    expect(others, JSON.stringify([...d])).toEqual([]);
    expect(d.get(replica!)!.served).toBe(requests.length);
    // The first request filled the cache; each later one found (nearly) the whole shared prefix there.
    expect(d.get(replica!)!.hits).toBeGreaterThanOrEqual((requests.length - 1) * (prefixTokens - 32));
    for (const [id, c] of d) if (id !== replica) expect(c.hits).toBe(0);
  });

  it("keeps a chat conversation's turns on one replica, where the later turns hit the earlier ones' cache", async () => {
    const system = { role: 'system', content: SHARED };
    const questions = [
      'Who was Lily?',
      'What did the dog lose?',
      'Where was the house?',
      'Who opened the door?',
      'What did the owl say?',
      'What color was the ball?',
    ];
    const d = await measure(
      questions.map(
        (content) => () =>
          post('/v1/chat/completions', { messages: [system, { role: 'user', content }], max_tokens: 3 }),
      ),
    );
    const [replica, ...others] = servedBy(d);
    expect(others, JSON.stringify([...d])).toEqual([]);
    expect(d.get(replica!)!.served).toBe(questions.length);
    expect(d.get(replica!)!.hits).toBeGreaterThanOrEqual((questions.length - 1) * 200);
  });

  it('spreads unrelated prompts over more than one replica', async () => {
    const openings = [
      'Tom had a red car',
      'The sun was hot',
      'A big fish swam',
      'Sue liked cake',
      'Ben found a box',
      'The cat sat on a mat',
      'It was a rainy day',
      'Max and Mia went to school',
      'A bird sang a song',
      'The boy had a toy',
      'Mom baked a pie',
      'There was a tall tree',
    ];
    const d = await measure(
      openings.map((prompt) => () => post('/v1/completions', { prompt, max_tokens: 2, temperature: 0 })),
    );
    expect([...d.values()].reduce((n, c) => n + c.served, 0)).toBe(openings.length);
    // 12 keys on 3 replicas by rendezvous hashing: all on one replica would happen once in ~177,000 runs.
    expect(servedBy(d).length, JSON.stringify([...d])).toBeGreaterThan(1);
  });
});
