/**
 * What a protocol route handler (OpenAI, TGI) gets from LLMServer for one request, and what it gives
 * back: the engine and limits, a way to pass the rate limiter before touching the engine, and the usage
 * it fills in for the audit log and the token bucket.
 */
import type { HttpResponseLike, HttpRequestLike } from '@flotilla/core';
import type { LLMEngine, RequestOutput, Tokenizer } from '@flotilla/engine';
import type { GenerationSpec, ParamNames, PreparedGeneration, Usage } from './generation.js';
import type { ResolvedLimits } from './llm-server-options.js';
import type { PromptEncoder } from './off-loop-tokenizer.js';

export interface ModelInfo {
  /** The name clients use (`model`). */
  name: string;
  /** The file or directory served, or the generated random model's path. */
  path: string;
  /** True when no model was given and random weights are served. */
  randomWeights: boolean;
  /** Unix seconds at load. */
  createdS: number;
  /** Only `name` is accepted as a request's `model` (vLLM's 404 for others); otherwise any name is (model-name.ts). Default false. */
  strictName?: boolean;
}

/** What the response builders read of a tokenizer: a token's text bytes, whether it is special, EOS. */
export type TokenTable = Pick<Tokenizer, 'tokenBytes' | 'isSpecial' | 'eosId'>;

/**
 * What generates, as the generation routes (OpenAI completions and chat, TGI, llm.proto) see it: the
 * server's own engine (engine-backend.ts) or a generation graph behind a handle (graph-backend.ts).
 */
export interface GenerationBackend {
  /** Longest prompt + output of the model, in tokens. */
  readonly maxModelLen: number;
  /** Requests run at once (TGI /info). */
  readonly maxConcurrentRequests: number;
  /** Token texts for logprobs and TGI's tokens (for a graph: filled as its deltas arrive). */
  readonly tokens: TokenTable;
  /** Checks and tokenizes a request (limits, the model's context and vocabulary); generates nothing. */
  prepare(spec: GenerationSpec): Promise<PreparedGeneration>;
  /** Starts what prepare() returned; errors name fields as `names` says. */
  start(prepared: PreparedGeneration, names: ParamNames): AsyncIterable<RequestOutput>;
}

/** What a generation route handler gets for one request, whatever generates. */
export interface GenerationContext {
  backend: GenerationBackend;
  limits: ResolvedLimits;
  model: ModelInfo;
  requestId: string;
  /** Aborted when the client goes away. */
  signal: AbortSignal | undefined;
  /** Must be awaited after validation and before the engine sees the request: rejects with RateLimitError. */
  admit(prepared: PreparedGeneration): Promise<void>;
  /** Filled by the handler as tokens are counted. */
  usage: Usage;
  /** The prompt text, set by the handler (logged only with logPrompts). */
  promptText?: string;
  /** The caller holds an admin key (or the server has no keys): may load adapters and see paths. */
  admin?: boolean;
}

/** LLMServer's context: a generation context over its own engine, for the routes that need the engine itself. */
export interface HandlerContext extends GenerationContext {
  engine: LLMEngine;
  /** Tokenizes prompt text as engine.tokenizer does, long texts off the event loop (prepare-prompt.ts). */
  encoder: PromptEncoder;
}

export type HttpChunk = HttpResponseLike | string;
/** What the request gate reads of any route's context: the prompt, for audit lines (logPrompts). */
export interface RouteContext {
  promptText?: string;
}

export type RouteHandler<C extends RouteContext = HandlerContext> = (
  req: HttpRequestLike,
  ctx: C,
) => AsyncGenerator<HttpChunk, void, undefined>;

export const SSE_HEADERS: Record<string, string> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
};

export function sse(data: unknown): string {
  return `data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

/** Sampled tokens charged up front: prompt + max_tokens for each of the n samples. */
export function estimatedTokens(p: PreparedGeneration): number {
  return p.tokenIds.length + (p.params.maxTokens ?? 0) * (p.params.n ?? 1);
}
