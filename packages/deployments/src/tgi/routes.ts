/**
 * The TGI-compatible routes: POST /generate, POST /generate_stream (one SSE event per token; the last
 * one carries generated_text and details), GET /info, and TGI's error shape `{ error, error_type }`.
 */
import type { HttpRequestLike, HttpResponseLike } from '@flotilla/core';
import type { RequestOutput, TokenLogprob } from '@flotilla/engine';
import {
  InvalidJsonError,
  InvalidParameterError,
  LLMApiError,
  MalformedRequestError,
  RateLimitError,
} from '../errors.js';
import { collectGeneration, type PreparedGeneration } from '../generation.js';
import { asClientError } from '../malformed-body.js';
import { SSE_HEADERS, sse, type GenerationContext, type HttpChunk, type TokenTable } from '../handler-context.js';
import { tokenText } from '../openai/logprobs.js';
import { parseTgiRequest, type TgiRequest } from './params.js';

export const FLOTILLA_VERSION = '0.1.0';

interface TgiToken {
  id: number;
  text: string;
  logprob: number;
  special: boolean;
}

export async function* generate(req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  const r = parseTgiRequest(req.body, ctx.limits);
  if (r.stream) return yield* streamTokens(r, ctx);
  const { prepared, stream } = await start(r, ctx);
  const { samples, usage } = await collectGeneration(stream, 1);
  Object.assign(ctx.usage, usage);
  const s = samples[0]!;
  const body: Record<string, unknown> = { generated_text: (r.returnFullText ? prepared.promptText : '') + s.text };
  if (r.details) {
    body.details = {
      finish_reason: tgiFinishReason(s.finishReason, s.stopReason, ctx.backend.tokens),
      generated_tokens: s.tokenIds.length,
      seed: r.seed,
      prefill: r.decoderInputDetails ? prefill(ctx.backend.tokens, prepared.tokenIds, s.promptLogprobs) : [],
      tokens: s.tokenIds.map((id, i) => token(ctx.backend.tokens, id, s.logprobs[i])),
      ...(r.topNTokens > 0 ? { top_tokens: s.logprobs.map((lp) => topTokens(ctx.backend.tokens, lp)) } : {}),
    };
  }
  yield { status: 200, body };
}

export async function* generateStream(req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  yield* streamTokens(parseTgiRequest(req.body, ctx.limits), ctx);
}

export async function* info(_req: HttpRequestLike, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  const e = ctx.backend;
  yield {
    status: 200,
    body: {
      model_id: ctx.model.name,
      model_sha: null,
      model_dtype: 'float32',
      model_device_type: 'cpu',
      model_pipeline_tag: 'text-generation',
      max_concurrent_requests: e.maxConcurrentRequests,
      max_best_of: 1,
      max_stop_sequences: ctx.limits.maxStop,
      max_input_tokens: ctx.limits.maxPromptTokens,
      max_input_length: ctx.limits.maxPromptTokens,
      max_total_tokens: e.maxModelLen,
      max_client_batch_size: 1,
      validation_workers: 1,
      router: 'flotilla',
      version: FLOTILLA_VERSION,
      sha: null,
      docker_label: null,
      random_weights: ctx.model.randomWeights,
      model_path: ctx.model.path,
    },
  };
}

async function start(
  r: TgiRequest,
  ctx: GenerationContext,
): Promise<{ prepared: PreparedGeneration; stream: AsyncIterable<RequestOutput> }> {
  const prepared = await ctx.backend.prepare(r.spec);
  ctx.promptText = prepared.promptText;
  await ctx.admit(prepared);
  return { prepared, stream: ctx.backend.start(prepared, r.spec.names) };
}

async function* streamTokens(r: TgiRequest, ctx: GenerationContext): AsyncGenerator<HttpChunk> {
  const { prepared, stream } = await start(r, ctx);
  const tok = ctx.backend.tokens;
  // A failure the replica cannot report (its death) is written by the proxy, in this protocol's shape.
  yield { status: 200, headers: SSE_HEADERS, streamErrorFormat: 'tgi-sse' };
  let text = '';
  let index = 0;
  let last: TgiToken | null = null;
  try {
    for await (const out of stream) {
      ctx.usage.promptTokens = out.usage.promptTokens;
      ctx.usage.completionTokens = out.usage.completionTokens;
      text += out.text;
      for (let i = 0; i < out.tokenIds.length; i++) {
        last = token(tok, out.tokenIds[i]!, out.logprobs?.[i]);
        const final = out.finished && i === out.tokenIds.length - 1;
        yield sse(
          event(index++, last, out, r, final ? (r.returnFullText ? prepared.promptText : '') + text : null, tok, i),
        );
      }
    }
  } catch (err) {
    yield sse(tgiError(err).body);
  }
}

function event(
  index: number,
  tk: TgiToken,
  out: RequestOutput,
  r: TgiRequest,
  generatedText: string | null,
  tok: TokenTable,
  i: number,
) {
  const lp = out.logprobs?.[i];
  return {
    index,
    token: tk,
    top_tokens: r.topNTokens > 0 && lp ? topTokens(tok, lp) : null,
    generated_text: generatedText,
    details:
      generatedText === null
        ? null
        : {
            finish_reason: tgiFinishReason(out.finishReason ?? 'stop', out.stopReason, tok),
            generated_tokens: out.usage.completionTokens,
            seed: r.seed,
            input_length: out.usage.promptTokens,
          },
  };
}

function token(tok: TokenTable, id: number, lp: TokenLogprob | undefined): TgiToken {
  return { id, text: tokenText(tok, id), logprob: lp?.logprob ?? 0, special: tok.isSpecial(id) };
}

/** details.prefill: the input tokens, each with its logprob given those before it (null for the first), as TGI returns them. */
function prefill(tok: TokenTable, ids: readonly number[], lps: ReadonlyArray<TokenLogprob | null> | null) {
  return ids.map((id, i) => ({ id, text: tokenText(tok, id), logprob: lps?.[i]?.logprob ?? null }));
}

function topTokens(tok: TokenTable, lp: TokenLogprob): TgiToken[] {
  return lp.top.map((t) => ({
    id: t.tokenId,
    text: tokenText(tok, t.tokenId),
    logprob: t.logprob,
    special: tok.isSpecial(t.tokenId),
  }));
}

/** TGI's finish reasons: 'length', 'eos_token' (the model's end token), 'stop_sequence' (a stop string or stop token id). */
export function tgiFinishReason(reason: string, stopReason: number | string | null, tok: TokenTable): string {
  if (reason === 'length') return 'length';
  if (typeof stopReason === 'number' && (stopReason === tok.eosId || tok.isSpecial(stopReason))) return 'eos_token';
  return 'stop_sequence';
}

/**
 * Any error as TGI's `{ error, error_type }`. As in TGI, a request that fails validation (a parameter,
 * the prompt's length, the body's shape) is 422 Unprocessable Entity with error_type 'validation' (the
 * OpenAI routes answer the same errors with 400, as OpenAI does); a body that is not JSON at all is 400.
 */
export function tgiError(thrown: unknown): HttpResponseLike & { body: { error: string; error_type: string } } {
  const err = asClientError(thrown);
  if (err instanceof LLMApiError) {
    const headers: Record<string, string> =
      err instanceof RateLimitError ? { 'retry-after': String(err.retryAfterS) } : {};
    // Unparsable JSON keeps its 400, as TGI's router answers a syntax error (422 is for a body of the wrong shape).
    const validation =
      (err instanceof InvalidParameterError || err instanceof MalformedRequestError) &&
      !(err instanceof InvalidJsonError);
    const type =
      validation || err instanceof InvalidJsonError || err.status === 413
        ? 'validation'
        : err.status === 429
          ? 'overloaded'
          : err.status === 401
            ? 'authentication'
            : err.status === 404
              ? 'not_found'
              : 'generation';
    return { status: validation ? 422 : err.status, headers, body: { error: err.message, error_type: type } };
  }
  return { status: 500, body: { error: err instanceof Error ? err.message : String(err), error_type: 'generation' } };
}
