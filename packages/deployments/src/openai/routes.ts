/**
 * The OpenAI-compatible routes: POST /v1/completions, POST /v1/chat/completions (whole or as server-sent
 * events ending with `data: [DONE]`), GET /v1/models and /v1/models/{id}, and errors in OpenAI's shape.
 */
import type { HttpRequestLike, HttpResponseLike } from '@flotilla/core';
import { LLMApiError, ModelNotFoundError, openAiCodeOf, RateLimitError } from '../errors.js';
import { collectGeneration, UsageTracker } from '../generation.js';
import { asClientError } from '../malformed-body.js';
import { adapterModels, resolveAdapter } from './lora-routes.js';
import { SSE_HEADERS, sse, type GenerationContext, type HttpChunk, type ModelInfo } from '../handler-context.js';
import {
  chatBody,
  chatChunk,
  ChunkWriter,
  completionBody,
  completionChunk,
  echoChunk,
  usageBody,
  usageChunk,
  type ResponseMeta,
} from './responses.js';
import { parseChatRequest, parseCompletionRequest, type OpenAiRequest } from './params.js';
import { ToolChunkWriter, toolMode, withToolCalls } from './tools.js';

// Not generators themselves: one generator less for every chunk to pass through (a parse error
// thrown here is caught by the caller's loop all the same).
export function completions(req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  return serve(parseCompletionRequest(req.body, ctx.limits), ctx);
}

export function chatCompletions(req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  return serve(parseChatRequest(req.body, ctx.limits), ctx);
}

export async function* models(_req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  const list = modelList(ctx.model, ctx.backend.maxModelLen);
  yield { status: 200, body: { ...list, data: [...list.data, ...adapterModels(ctx, ctx.backend.maxModelLen)] } };
}

/** GET /v1/models/{id}: the served model's entry, or 404 model_not_found. */
export async function* model(req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  const id = decodeURIComponent(req.path.replace(/\/+$/, '').slice('/v1/models/'.length));
  const adapter = adapterModels(ctx, ctx.backend.maxModelLen).find((a) => a.id === id);
  if (adapter) {
    yield { status: 200, body: adapter };
    return;
  }
  if (id !== ctx.model.name)
    throw new ModelNotFoundError(`The model '${id}' does not exist; this server serves '${ctx.model.name}'.`, 'model');
  yield { status: 200, body: modelList(ctx.model, ctx.backend.maxModelLen).data[0] };
}

export function modelList(model: ModelInfo, maxModelLen: number | null) {
  return {
    object: 'list',
    data: [
      {
        id: model.name,
        object: 'model',
        created: model.createdS,
        owned_by: 'flotilla',
        root: model.path,
        max_model_len: maxModelLen,
        random_weights: model.randomWeights,
        ...(model.randomWeights
          ? {
              description:
                'RANDOM WEIGHTS: no model was given, so this server generates noise. Start it with model=PATH.',
            }
          : {}),
      },
    ],
  };
}

async function* serve(r: OpenAiRequest, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  const adapter = resolveAdapter(r.model, ctx);
  const prepared = await ctx.backend.prepare(adapter ? { ...r.spec, adapter } : r.spec);
  ctx.promptText = prepared.promptText;
  await ctx.admit(prepared);
  const stream = ctx.backend.start(prepared, r.spec.names);
  const meta: ResponseMeta = {
    id: `${r.kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${ctx.requestId}`,
    created: Math.floor(Date.now() / 1000),
    model: adapter ?? ctx.model.name,
    tok: ctx.backend.tokens,
    req: r,
  };
  const n = prepared.params.n ?? 1;
  const toolsMode = toolMode(r.tools); // null: no tool calls to read
  if (!r.stream) {
    const { samples, usage } = await collectGeneration(stream, n);
    Object.assign(ctx.usage, usage);
    const body =
      r.kind === 'chat'
        ? toolsMode
          ? withToolCalls(chatBody(meta, samples, usage), samples, toolsMode, r.tools!)
          : chatBody(meta, samples, usage)
        : completionBody(meta, samples, usage, prepared.promptText, prepared.tokenIds);
    yield { status: 200, body };
    return;
  }
  // A failure the replica cannot report (its death) is written by the proxy, in this protocol's shape.
  yield { status: 200, headers: SSE_HEADERS, streamErrorFormat: 'openai-sse' };
  if (r.echo) yield sse(echoChunk(meta, n, prepared.promptText));
  const usage = new UsageTracker();
  const chunks = new ChunkWriter(meta);
  const toolChunks = toolsMode ? new ToolChunkWriter(meta, toolsMode, r.tools!) : null;
  const offsets: number[] = [];
  const started = new Set<number>();
  try {
    for await (const out of stream) {
      // One engine step wakes every stream before the step loop's own continuation, which launches the
      // next native step: letting it run first keeps this chunk's formatting and sending (and the hops
      // through the replica to the proxy) off the step loop's critical path, overlapping the native step.
      await undefined;
      usage.add(out);
      ctx.usage.promptTokens = usage.promptTokens;
      ctx.usage.completionTokens = usage.completionTokens;
      const first = r.kind === 'chat' && !started.has(out.index);
      if (first) started.add(out.index);
      if (toolChunks) {
        for (const c of toolChunks.chunks(out, first))
          yield sse(r.continuousUsage ? { ...c, usage: usageBody(ctx.usage) } : c);
      } else if (r.continuousUsage) {
        // the object path, with the usage so far
        const chunk = r.kind === 'chat' ? chatChunk(meta, out, first) : completionChunk(meta, out, offsets);
        yield sse({ ...chunk, usage: usageBody(ctx.usage) });
      } else {
        yield r.kind === 'chat' ? chunks.chat(out, first) : chunks.completion(out, offsets);
      }
    }
  } catch (err) {
    // The status line is gone: report in-band, as OpenAI does, then end the stream.
    yield sse(openAiError(err).body);
    return;
  }
  if (r.includeUsage) yield sse(usageChunk(meta, ctx.usage));
  yield sse('[DONE]');
}

/** Any error as OpenAI's `{ error: { message, type, param, code } }`, with Retry-After on 429. */
export function openAiError(thrown: unknown): HttpResponseLike & { body: { error: Record<string, unknown> } } {
  const err = asClientError(thrown);
  if (err instanceof LLMApiError) {
    const headers: Record<string, string> =
      err instanceof RateLimitError ? { 'retry-after': String(err.retryAfterS) } : {};
    return {
      status: err.status,
      headers,
      body: { error: { message: err.message, type: err.type, param: err.param, code: openAiCodeOf(err) } },
    };
  }
  const message = err instanceof Error ? err.message : String(err);
  return { status: 500, body: { error: { message, type: 'server_error', param: null, code: 'internal_error' } } };
}
