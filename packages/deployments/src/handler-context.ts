/**
 * What a protocol route handler (OpenAI, TGI) gets from LLMServer for one request, and what it gives
 * back: the engine and limits, a way to pass the rate limiter before touching the engine, and the usage
 * it fills in for the audit log and the token bucket.
 */
import type { HttpResponseLike, HttpRequestLike } from '@flotilla/core';
import type { LLMEngine } from '@flotilla/engine';
import type { PreparedGeneration, Usage } from './generation.js';
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

export interface HandlerContext {
  engine: LLMEngine;
  limits: ResolvedLimits;
  model: ModelInfo;
  /** Tokenizes prompt text as engine.tokenizer does, long texts off the event loop (prepare-prompt.ts). */
  encoder: PromptEncoder;
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

export type HttpChunk = HttpResponseLike | string;
export type RouteHandler = (req: HttpRequestLike, ctx: HandlerContext) => AsyncGenerator<HttpChunk, void, undefined>;

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
