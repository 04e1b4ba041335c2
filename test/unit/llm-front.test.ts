/**
 * FrontServer (LLMFront's serving half) over a user's own GenerationGraph: a fake that "generates" the
 * prompt's characters back one token at a time, with no engine. The same route handlers as LLMServer
 * parse and answer; the graph is picked by `model`; errors keep each API's shape.
 */
import type { HttpRequestLike } from '@flotilla/core';
import { describe, expect, it } from 'vitest';
import { InvalidParameterError } from '../../packages/deployments/src/errors.js';
import { FrontServer } from '../../packages/deployments/src/front-server.js';
import { localClient } from '../../packages/deployments/src/graph-client.js';
import type {
  GenerationGraph,
  GraphDelta,
  GraphInfo,
  GraphPrepared,
  GraphRequest,
} from '../../packages/deployments/src/graph.js';
import type { HttpChunk } from '../../packages/deployments/src/handler-context.js';
import { RequestGate } from '../../packages/deployments/src/request-gate.js';

/** Echoes the prompt text's characters as tokens (id = char code); refuses logprobs by the API's name. */
class EchoGraph implements GenerationGraph {
  readonly seen: GraphRequest[] = [];
  constructor(private readonly name: string) {}
  graphInfo(): GraphInfo {
    return { name: this.name, maxModelLen: 64, createdS: 1 };
  }
  tokenizePrompt(req: GraphRequest): GraphPrepared {
    if (req.params.logprobs !== undefined)
      throw new InvalidParameterError(req.names.logprobs ?? 'logprobs', 'not here');
    const text =
      'text' in req.prompt
        ? req.prompt.text
        : 'messages' in req.prompt
          ? req.prompt.messages.map((m) => m.content).join('|')
          : '';
    const maxTokens = req.params.maxTokens ?? req.defaultMaxTokens ?? 8;
    return {
      tokenIds: [...text].map((c) => c.charCodeAt(0)),
      promptTokens: text.length,
      maxTokens,
      n: 1,
      promptText: text,
    };
  }
  async *generateStream(req: GraphRequest): AsyncGenerator<GraphDelta> {
    this.seen.push(req);
    const ids = (req.prepared?.tokenIds ?? []).slice(0, req.prepared?.maxTokens);
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      const last = i === ids.length - 1;
      yield {
        index: 0,
        text: String.fromCharCode(id),
        tokenIds: [id],
        finished: last,
        finishReason: last ? 'length' : null,
        stopReason: null,
        usage: { promptTokens: req.prepared?.promptTokens ?? 0, completionTokens: i + 1 },
        ...(req.tokenInfo ? { tokens: [{ id, bytes: [id], special: false }] } : {}),
      };
    }
  }
}

function request(method: string, path: string, body?: unknown): HttpRequestLike {
  return { method, path, query: {}, headers: {}, body, requestId: `r-${Math.random()}`, clientIp: '127.0.0.1' };
}

async function call(
  front: FrontServer,
  req: HttpRequestLike,
): Promise<{ status: number; body: any; text: string; headers: Record<string, string> }> {
  let status = 0;
  let body: unknown;
  let headers: Record<string, string> = {};
  let text = '';
  for await (const c of front.http(req) as AsyncIterable<HttpChunk>) {
    if (typeof c === 'string') text += c;
    else if (status === 0) {
      status = c.status;
      body = c.body;
      headers = c.headers ?? {};
    }
  }
  return { status, body, text, headers };
}

const gate = () => new RequestGate({ auditLog: 'none' });

describe('FrontServer over a user-defined GenerationGraph', () => {
  it('picks the graph by model, lists both, and answers 404 model_not_found for another name', async () => {
    const a = new EchoGraph('a');
    const b = new EchoGraph('b');
    const front = new FrontServer({ first: localClient(a), second: localClient(b) }, gate());
    const models = await call(front, request('GET', '/v1/models'));
    expect(models.body.data.map((m: { id: string }) => m.id)).toEqual(['first', 'second']);
    const r = await call(
      front,
      request('POST', '/v1/completions', { model: 'second', prompt: 'hello', max_tokens: 3 }),
    );
    expect(r.status).toBe(200);
    expect(r.body.model).toBe('second');
    expect(r.body.choices[0].text).toBe('hel');
    expect(r.body.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    expect([a.seen.length, b.seen.length]).toEqual([0, 1]);
    const missing = await call(front, request('POST', '/v1/completions', { model: 'third', prompt: 'x' }));
    expect(missing.status).toBe(404);
    expect(missing.body.error).toMatchObject({ code: 'model_not_found', param: 'model' });
  });

  it('with one graph takes any model name, unless strictModelName', async () => {
    const loose = new FrontServer({ only: localClient(new EchoGraph('g')) }, gate());
    expect((await call(loose, request('POST', '/v1/completions', { model: 'tgi', prompt: 'hi' }))).status).toBe(200);
    const strict = new FrontServer({ only: localClient(new EchoGraph('g')) }, gate(), { strictModelName: true });
    expect((await call(strict, request('POST', '/v1/completions', { model: 'tgi', prompt: 'hi' }))).status).toBe(404);
  });

  it("streams chat through LLMServer's chunk writer, ending with [DONE]", async () => {
    const front = new FrontServer({ g: localClient(new EchoGraph('g')) }, gate());
    const r = await call(
      front,
      request('POST', '/v1/chat/completions', { messages: [{ role: 'user', content: 'abc' }], stream: true }),
    );
    const events = r.text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    const content = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.slice(6)).choices[0].delta.content)
      .join('');
    expect(content).toBe('abc');
  });

  it("a graph's refusal keeps the API's name and shape: OpenAI 400 on logprobs, TGI 422 with the token texts it learnt", async () => {
    const g = new EchoGraph('g');
    const front = new FrontServer({ g: localClient(g) }, gate());
    const openai = await call(front, request('POST', '/v1/completions', { prompt: 'hi', logprobs: 1 }));
    expect(openai.status).toBe(400);
    expect(openai.body.error.param).toBe('logprobs');
    const tgiRefused = await call(
      front,
      request('POST', '/generate', { inputs: 'hi', parameters: { top_n_tokens: 2 } }),
    );
    expect(tgiRefused.status).toBe(422);
    expect(tgiRefused.body).toMatchObject({ error_type: 'validation' });
    // TGI's own per-token logprobs are optional for a graph that has none; token texts come from the deltas.
    const tgi = await call(
      front,
      request('POST', '/generate', { inputs: 'hey', parameters: { max_new_tokens: 2, details: true } }),
    );
    expect(tgi.status).toBe(200);
    expect(tgi.body.generated_text).toBe('he');
    expect(tgi.body.details.tokens.map((t: { text: string }) => t.text)).toEqual(['h', 'e']);
    expect(g.seen.at(-1)).toMatchObject({ optionalLogprobs: 0, tokenInfo: true });
  });
});

describe("FrontServer through LLMServer's RequestGate", () => {
  it('rate limits per key (OpenAI 429 with retry-after, TGI 429 overloaded) and writes one audit line per request', async () => {
    const lines: string[] = [];
    const g = new RequestGate({ rateLimits: { requests: { perMinute: 2 } }, auditLog: (l) => lines.push(l) });
    const front = new FrontServer({ g: localClient(new EchoGraph('g')) }, g);
    expect((await call(front, request('POST', '/v1/completions', { prompt: 'hello', max_tokens: 2 }))).status).toBe(
      200,
    );
    expect((await call(front, request('POST', '/generate', { inputs: 'hello' }))).status).toBe(200);
    const limited = await call(front, request('POST', '/v1/completions', { prompt: 'hello' }));
    expect(limited.status).toBe(429);
    expect(limited.body.error.type).toBe('rate_limit_error');
    expect(Number(limited.headers['retry-after'])).toBeGreaterThan(0);
    const tgi = await call(front, request('POST', '/generate', { inputs: 'hello' }));
    expect([tgi.status, tgi.body.error_type]).toEqual([429, 'overloaded']);
    const audit = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.map((a) => [a.route, a.status])).toEqual([
      ['POST /v1/completions', 200],
      ['POST /generate', 200],
      ['POST /v1/completions', 429],
      ['POST /generate', 429],
    ]);
    expect(audit[0]).toMatchObject({ promptTokens: 5, completionTokens: 2, keyId: 'ip-127.0.0.1' });
  });

  it('checks API keys and runs the PII guard before the graph sees the prompt', async () => {
    const graph = new EchoGraph('g');
    const front = new FrontServer(
      { g: localClient(graph) },
      new RequestGate({ apiKeys: ['sk-unit-0001'], pii: { mode: 'redact' }, auditLog: 'none' }),
    );
    const denied = await call(front, request('POST', '/v1/completions', { prompt: 'hi' }));
    expect([denied.status, denied.body.error.code]).toEqual([401, 'invalid_api_key']);
    const req = request('POST', '/v1/completions', { prompt: 'mail bob@example.com', max_tokens: 40 });
    req.headers.authorization = 'Bearer sk-unit-0001';
    const r = await call(front, req);
    expect(r.status).toBe(200);
    expect(graph.seen).toHaveLength(1);
    const sent = graph.seen[0]!.prompt as { text: string };
    expect(sent.text).not.toContain('bob@example.com');
    expect(r.body.choices[0].text).not.toContain('bob@example.com');
  });
});
