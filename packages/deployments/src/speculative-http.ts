/**
 * The OpenAI HTTP surface of a SpeculativePipeline: POST /v1/completions and /v1/chat/completions (whole,
 * or as server-sent events ending with `data: [DONE]`), GET /v1/models and /v1/models/{id}, GET /health.
 * Requests are parsed by the same readers as LLMServer's (openai/params.ts) and answered with the same
 * body builders (openai/responses.ts), so clients see one API whichever graph serves it.
 *
 * The pipeline generates one sample, with stop tokens but no stop strings, logprobs or logit bias: a
 * request asking for those gets 400 naming the field, never a silent difference.
 */
import type { HttpRequestLike } from '@flotilla/core';
import type { RequestOutput, Tokenizer } from '@flotilla/engine';
import {
  AuthenticationError,
  InvalidParameterError,
  MethodNotAllowedError,
  ModelNotFoundError,
  RouteNotFoundError,
} from './errors.js';
import { toApiError, type SampleResult } from './generation.js';
import { SSE_HEADERS, sse, type HttpChunk } from './handler-context.js';
import { resolveLimits } from './llm-server-options.js';
import { malformedBodyError } from './malformed-body.js';
import { parseChatRequest, parseCompletionRequest, type OpenAiRequest } from './openai/params.js';
import {
  chatBody,
  chatChunk,
  completionBody,
  completionChunk,
  usageChunk,
  type ResponseMeta,
} from './openai/responses.js';
import { modelList, openAiError } from './openai/routes.js';
import type { SpeculativeChunk, SpeculativeRequest } from './spec-session.js';

/** What the routes need from the pipeline. */
export interface SpeculativeBackend {
  /** The name clients send as `model` and see in /v1/models. */
  modelName: string;
  /** Unix seconds the pipeline was created (/v1/models' `created`). */
  createdS: number;
  /** The target's context length; rejects while the target cannot be reached or failed to load. */
  maxModelLen(): Promise<number>;
  generate(req: SpeculativeRequest): AsyncGenerator<SpeculativeChunk>;
}

export async function* speculativeHttp(req: HttpRequestLike, b: SpeculativeBackend): AsyncGenerator<HttpChunk> {
  const path = req.path.replace(/\/+$/, '') || '/';
  if (req.method === 'GET' && path === '/health') {
    try {
      await b.maxModelLen();
      yield { status: 200, body: {} };
    } catch (err) {
      yield { status: 503, body: { error: `not ready: ${(err as Error).message}`, error_type: 'unhealthy' } };
    }
    return;
  }
  try {
    if (req.authError !== undefined) throw new AuthenticationError(req.authError);
    const model = { name: b.modelName, path: b.modelName, randomWeights: false, createdS: b.createdS };
    if (req.method === 'GET' && path === '/v1/models') {
      yield { status: 200, body: modelList(model, await b.maxModelLen()) };
      return;
    }
    if (req.method === 'GET' && path.startsWith('/v1/models/')) {
      const id = decodeURIComponent(path.slice('/v1/models/'.length));
      if (id !== b.modelName)
        throw new ModelNotFoundError(`The model '${id}' does not exist; this server serves '${b.modelName}'.`, 'model');
      yield { status: 200, body: modelList(model, await b.maxModelLen()).data[0] };
      return;
    }
    const kind = path === '/v1/completions' ? 'completion' : path === '/v1/chat/completions' ? 'chat' : null;
    if (kind === null)
      throw new RouteNotFoundError(
        `No route ${req.method} ${path}. The speculative pipeline speaks OpenAI: POST /v1/completions, ` +
          'POST /v1/chat/completions, GET /v1/models, GET /health.',
      );
    if (req.method !== 'POST') throw new MethodNotAllowedError(`${req.method} is not allowed on ${path}; use POST.`);
    if (req.bodyError !== undefined) throw malformedBodyError(req.bodyError);
    const limits = resolveLimits(undefined, await b.maxModelLen());
    const r = kind === 'chat' ? parseChatRequest(req.body, limits) : parseCompletionRequest(req.body, limits);
    yield* serve(r, req.requestId, b);
  } catch (err) {
    yield openAiError(err);
  }
}

/** Refuses what the pipeline does not implement, naming the field as the request did. */
function checkSupported(r: OpenAiRequest): void {
  const p = r.spec.params;
  const name = (key: keyof typeof r.spec.names, dflt: string) => r.spec.names[key] ?? dflt;
  const no = (field: string) => new InvalidParameterError(field, 'is not supported by the speculative pipeline');
  if ((p.n ?? 1) !== 1) throw new InvalidParameterError(name('n', 'n'), 'must be 1 on the speculative pipeline');
  if (p.stop !== undefined && (typeof p.stop === 'string' || p.stop.length > 0)) throw no(name('stop', 'stop'));
  if (r.logprobs !== undefined) throw no(name('logprobs', 'logprobs'));
  if (r.echo) throw no('echo');
  if (p.logitBias !== undefined) throw no(name('logitBias', 'logit_bias'));
}

async function* serve(r: OpenAiRequest, requestId: string, b: SpeculativeBackend): AsyncGenerator<HttpChunk> {
  if (r.model !== undefined && r.model !== b.modelName)
    throw new ModelNotFoundError(
      `The model '${r.model}' does not exist; this server serves '${b.modelName}'.`,
      'model',
    );
  checkSupported(r);
  const params = { ...r.spec.params };
  if (params.maxTokens === undefined && r.spec.defaultMaxTokens !== undefined)
    params.maxTokens = r.spec.defaultMaxTokens;
  const prompt = r.spec.prompt;
  const chunks = b.generate({ prompt: 'text' in prompt ? prompt.text : prompt, params });
  try {
    yield* reply(r, requestId, b, chunks);
  } finally {
    // Ends the pipeline's rounds (and frees both sides' sessions) when the client left early.
    await chunks.return(undefined);
  }
}

async function* reply(
  r: OpenAiRequest,
  requestId: string,
  b: SpeculativeBackend,
  chunks: AsyncGenerator<SpeculativeChunk>,
): AsyncGenerator<HttpChunk> {
  const prompt = r.spec.prompt;
  const meta: ResponseMeta = {
    id: `${r.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${requestId}`,
    created: Math.floor(Date.now() / 1000),
    model: b.modelName,
    // Read only for logprobs, which checkSupported refused.
    tok: undefined as unknown as Tokenizer,
    req: r,
  };
  // The first round runs before any reply goes out, so that the target's checks of the prompt and the
  // parameters (context length, ranges) are answered as 400s rather than in-band.
  let first: IteratorResult<SpeculativeChunk>;
  try {
    first = await chunks.next();
  } catch (err) {
    throw toApiError(err, r.spec.names);
  }
  const sample: SampleResult = {
    index: 0,
    text: '',
    tokenIds: [],
    logprobs: [],
    promptLogprobs: null,
    finishReason: 'abort',
    stopReason: null,
  };
  const usage = { promptTokens: 0, completionTokens: 0 };
  const add = (c: SpeculativeChunk): RequestOutput => {
    sample.text += c.text;
    sample.tokenIds.push(...c.tokenIds);
    usage.promptTokens = c.promptTokens;
    usage.completionTokens = sample.tokenIds.length;
    const stopReason = c.finishReason === 'stop' ? (c.tokenIds.at(-1) ?? null) : null;
    if (c.finishReason) {
      sample.finishReason = c.finishReason;
      sample.stopReason = stopReason;
    }
    return {
      requestId,
      index: 0,
      text: c.text,
      tokenIds: c.tokenIds,
      cumulativeText: sample.text,
      finished: c.finished,
      finishReason: c.finishReason,
      stopReason,
      usage: { ...usage },
    };
  };
  if (!r.stream) {
    try {
      if (!first.done) add(first.value);
      for await (const c of iterate(chunks)) add(c);
    } catch (err) {
      throw toApiError(err, r.spec.names);
    }
    const promptText = 'text' in prompt ? prompt.text : '';
    yield {
      status: 200,
      body: r.kind === 'chat' ? chatBody(meta, [sample], usage) : completionBody(meta, [sample], usage, promptText),
    };
    return;
  }
  yield { status: 200, headers: SSE_HEADERS, streamErrorFormat: 'openai-sse' };
  const offsets: number[] = [];
  let opened = false;
  const write = (c: SpeculativeChunk): string => {
    const out = add(c);
    const chunk = r.kind === 'chat' ? chatChunk(meta, out, !opened) : completionChunk(meta, out, offsets);
    opened = true;
    return sse(chunk);
  };
  try {
    if (!first.done) yield write(first.value);
    for await (const c of iterate(chunks)) yield write(c);
  } catch (err) {
    // The status line is gone: report in-band, as OpenAI does, then end the stream.
    yield sse(openAiError(toApiError(err, r.spec.names)).body);
    return;
  }
  if (r.includeUsage) yield sse(usageChunk(meta, usage));
  yield sse('[DONE]');
}

/** The rest of a generator whose first item was taken with next(); closing the loop closes the generator. */
function iterate<T>(gen: AsyncGenerator<T>): AsyncIterable<T> {
  return { [Symbol.asyncIterator]: () => gen };
}
