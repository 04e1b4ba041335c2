/**
 * LLMFront's /v1/embeddings, llm.proto Embed, /tokenize and /detokenize over a graph that can (an LLMServer)
 * and one that cannot (a ResponseCache): through real `serve run` processes, with the official openai client
 * (base64, which it asks for and decodes, and float) and @grpc/grpc-js. The front's answers equal those of
 * the same LLMServer served alone, bit for bit; the cache is refused with 400 unsupported_task naming its
 * model (vLLM's answer for a model that does not serve the API); an unknown model is 404 model_not_found;
 * the front's key, rate limit (admitted by prompt tokens before the graph embeds) and audit lines apply.
 */
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import OpenAI from 'openai';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { EMBED_KEY, EMBED_TOKEN_BURST } from '../fixtures/apps/front-embed-apps.js';
import { serveRun, type ServeRun } from '../fixtures/apps/deploy-llm-harness.js';
import { eventually } from '../helpers/eventually.js';
import { describeWithModels, repoRoot } from '../helpers/models.js';

let front: ServeRun;
let direct: ServeRun;
let viaFront: OpenAI;
let alone: OpenAI;

interface AuditLine {
  route: string;
  status: number;
  promptTokens: number;
  error?: string;
}

/** The front's audit lines for `route` so far. */
function audit(route: string): AuditLine[] {
  return front
    .output()
    .split('\n')
    .filter((l) => l.includes('"audit":"llm-request"'))
    .map((l) => JSON.parse(l.slice(l.indexOf('{'))) as AuditLine)
    .filter((l) => l.route === route);
}

const bits = (v: ArrayLike<number>) => Buffer.from(Float32Array.from(v).buffer).toString('hex');

async function post(base: string, route: string, body: unknown, key = EMBED_KEY) {
  const res = await fetch(`${base}${route}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
    body: JSON.stringify(body),
  });
  return { status: res.status, json: (await res.json()) as any };
}

interface EmbedReply {
  model: string;
  data: Array<{ index: number; embedding: number[] }>;
  usage: { prompt_tokens: number };
}

function grpcEmbed(address: string, req: Record<string, unknown>): Promise<EmbedReply> {
  const def = protoLoader.loadSync(path.join(repoRoot, 'protos/llm.proto'), {
    keepCase: true,
    longs: Number,
    defaults: true,
  });
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    flotilla: { llm: { v1: { Llm: grpc.ServiceClientConstructor } } };
  };
  const c = new pkg.flotilla.llm.v1.Llm(address, grpc.credentials.createInsecure()) as grpc.Client &
    Record<string, (...args: unknown[]) => unknown>;
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${EMBED_KEY}`);
  return new Promise((resolve, reject) =>
    c.Embed!(req, md, (err: grpc.ServiceError | null, reply: EmbedReply) => {
      c.close();
      if (err) reject(err);
      else resolve(reply);
    }),
  );
}

describeWithModels('LLMFront: embeddings, tokenize and detokenize over a graph', () => {
  beforeAll(async () => {
    [front, direct] = await Promise.all([
      serveRun(['test/fixtures/apps/front-embed-apps.ts:front'], 180_000),
      serveRun(['test/fixtures/apps/front-embed-apps.ts:direct'], 180_000),
    ]);
    viaFront = new OpenAI({ baseURL: `${front.url}/v1`, apiKey: EMBED_KEY, maxRetries: 0 });
    alone = new OpenAI({ baseURL: `${direct.url}/v1`, apiKey: EMBED_KEY, maxRetries: 0 });
  }, 200_000);
  afterAll(async () => {
    await Promise.all([front?.stop(), direct?.stop()]);
  });

  it('embeddings.create through the front equals the LLMServer alone, base64 and float', async () => {
    const input = ['Once upon a time', 'The cat sat on the mat', 'Sara had a red ball'];
    for (const format of ['base64', 'float'] as const) {
      const a = await viaFront.embeddings.create({ model: 'stories', input, encoding_format: format });
      const b = await alone.embeddings.create({ model: 'stories', input, encoding_format: format });
      expect(a.model).toBe('stories');
      expect(a.data.map((d) => d.index)).toEqual([0, 1, 2]);
      expect(a.data[0]!.embedding.length).toBeGreaterThan(8);
      expect(a.data.map((d) => bits(d.embedding))).toEqual(b.data.map((d) => bits(d.embedding)));
      expect(a.usage).toEqual(b.usage);
      expect(a.usage.prompt_tokens).toBeGreaterThan(input.length);
    }
    // Token-id input and gRPC Embed: the same vectors again.
    const ids = (await post(front.url, '/tokenize', { prompt: 'Once upon a time' })).json.tokens as number[];
    const byIds = await viaFront.embeddings.create({ model: 'stories', input: [ids] });
    const byText = await viaFront.embeddings.create({ model: 'stories', input: 'Once upon a time' });
    expect(bits(byIds.data[0]!.embedding)).toBe(bits(byText.data[0]!.embedding));
    const g = await grpcEmbed(front.grpcAddress, { model: 'stories', input: ['Once upon a time'] });
    const h = await grpcEmbed(direct.grpcAddress, { model: 'stories', input: ['Once upon a time'] });
    expect(g.model).toBe('stories');
    expect(bits(g.data[0]!.embedding)).toBe(bits(h.data[0]!.embedding));
    expect(bits(g.data[0]!.embedding)).toBe(bits(byText.data[0]!.embedding));
    // One audit line per request, with the prompt tokens charged.
    await eventually(
      () => audit('grpc Embed').length,
      (n) => n >= 1,
    );
    expect(audit('grpc Embed')[0]).toMatchObject({ status: 200, promptTokens: g.usage.prompt_tokens });
    const lines = await eventually(
      () => audit('POST /v1/embeddings'),
      (l) => l.length >= 4,
    );
    expect(lines).toHaveLength(4);
    expect(lines.every((l) => l.status === 200)).toBe(true);
    expect(lines.at(-1)!.promptTokens).toBe(byText.usage.prompt_tokens);
  }, 60_000);

  it('a graph that cannot embed is 400 unsupported_task naming it; an unknown model 404; bad input 400 by field', async () => {
    const refused = await viaFront.embeddings.create({ model: 'cached', input: 'Hi' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(OpenAI.BadRequestError);
    expect((refused as InstanceType<typeof OpenAI.BadRequestError>).code).toBe('unsupported_task');
    expect((refused as Error).message).toContain("'cached'");
    const grpcRefused = (await grpcEmbed(front.grpcAddress, { model: 'cached', input: ['Hi'] }).catch(
      (e: unknown) => e,
    )) as grpc.ServiceError;
    expect(grpcRefused.code).toBe(grpc.status.INVALID_ARGUMENT);
    const unknown = await viaFront.embeddings.create({ model: 'nope', input: 'Hi' }).catch((e: unknown) => e);
    expect(unknown).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknown as InstanceType<typeof OpenAI.NotFoundError>).code).toBe('model_not_found');
    // The graph's own checks, named as LLMServer names them.
    for (const base of [front.url, direct.url]) {
      const dims = await post(base, '/v1/embeddings', { model: 'stories', input: 'Hi', dimensions: 3 });
      expect(dims.status).toBe(400);
      expect(dims.json.error.param).toBe('dimensions');
      const ids = await post(base, '/v1/embeddings', { model: 'stories', input: [[1, 2], [999_999]] });
      expect(ids.status).toBe(400);
      expect(ids.json.error.param).toBe('input[1]');
    }
    const noKey = await post(front.url, '/v1/embeddings', { model: 'stories', input: 'Hi' }, 'sk-wrong');
    expect(noKey.status).toBe(401);
  }, 60_000);

  it('/tokenize and /detokenize through the front equal the LLMServer alone; the cache is refused', async () => {
    const bodies = [
      { model: 'stories', prompt: 'Once upon a time' },
      { model: 'stories', prompt: 'Once upon a time', add_special_tokens: false },
      { model: 'stories', messages: [{ role: 'user', content: 'Hello there' }] },
    ];
    for (const body of bodies) {
      const a = await post(front.url, '/tokenize', body);
      const b = await post(direct.url, '/tokenize', body);
      expect(a.status).toBe(200);
      expect(a.json).toEqual(b.json);
      expect(a.json.count).toBe(a.json.tokens.length);
      const da = await post(front.url, '/detokenize', { model: 'stories', tokens: a.json.tokens });
      const db = await post(direct.url, '/detokenize', { model: 'stories', tokens: a.json.tokens });
      expect(da.status).toBe(200);
      expect(da.json).toEqual(db.json);
    }
    const text = await post(front.url, '/detokenize', {
      model: 'stories',
      tokens: (await post(front.url, '/tokenize', { model: 'stories', prompt: 'The cat', add_special_tokens: false }))
        .json.tokens,
    });
    expect(text.json.prompt).toBe('The cat');
    const outOfVocab = await post(front.url, '/detokenize', { model: 'stories', tokens: [1, 999_999] });
    expect(outOfVocab.status).toBe(400);
    expect(outOfVocab.json.error.param).toBe('tokens');
    for (const route of ['/tokenize', '/detokenize']) {
      const r = await post(front.url, route, {
        model: 'cached',
        ...(route === '/tokenize' ? { prompt: 'Hi' } : { tokens: [1] }),
      });
      expect(r.status).toBe(400);
      expect(r.json.error.code).toBe('unsupported_task');
      expect(r.json.error.message).toContain("'cached'");
    }
    const unknown = await post(front.url, '/tokenize', { model: 'nope', prompt: 'Hi' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.error.code).toBe('model_not_found');
  }, 60_000);

  // Last: it leaves the key's token bucket empty for a while.
  it("the key's token bucket is charged the prompt tokens; once spent, a request is 429 before the graph embeds", async () => {
    const big = Array.from({ length: 5 }, () => new Array<number>(EMBED_TOKEN_BURST / 4).fill(100));
    const ok = await viaFront.embeddings.create({ model: 'stories', input: big });
    expect(ok.usage.prompt_tokens).toBe(5 * (EMBED_TOKEN_BURST / 4)); // more than the burst: the bucket is in debt
    const err = await viaFront.embeddings.create({ model: 'stories', input: 'Hi' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.RateLimitError);
    const refused = await eventually(
      () => audit('POST /v1/embeddings').filter((l) => l.status === 429),
      (lines) => lines.length === 1,
    );
    expect(refused[0]).toMatchObject({ promptTokens: 0, error: 'E_RATE_LIMITED' });
  }, 60_000);
});
