/**
 * HybridRouter's pure parts: the default classifier, reading prompts and token counts out of requests and
 * replies (OpenAI, TGI, llm.proto, graph prompts), cost estimates, and opening a stream as far as its first
 * item so that a failure to start can fall back. No I/O.
 */
import type { GraphPrompt } from './graph.js';

export type ModelChoice = 'small' | 'large';

export interface HeuristicOptions {
  /** Prompts longer than this (characters) go to the large model. Default 600. */
  maxSmallChars?: number;
  /** Words that mark a hard request (reasoning, code, math), case-insensitive. Default a short English list. */
  hardWords?: string[];
}

export const DEFAULT_COST_PER_1K_TOKENS: Readonly<Record<ModelChoice, number>> = { small: 0.0001, large: 0.001 };

const DEFAULT_HARD_WORDS = [
  'explain',
  'why',
  'prove',
  'step by step',
  'code',
  'function',
  'analyze',
  'analyse',
  'compare',
  'calculate',
  'translate',
];

/** The default classifier: long prompts or hard-sounding ones go to the large model. Pure. */
export function heuristicChoice(prompt: string, opts: HeuristicOptions = {}): ModelChoice {
  if (prompt.length > (opts.maxSmallChars ?? 600)) return 'large';
  const lower = prompt.toLowerCase();
  return (opts.hardWords ?? DEFAULT_HARD_WORDS).some((w) => lower.includes(w.toLowerCase())) ? 'large' : 'small';
}

/** The prompt text of a request (OpenAI/llm.proto prompt, the messages' contents joined, or TGI's inputs). */
export function promptText(req: Record<string, unknown>): string {
  if (typeof req.prompt === 'string') return req.prompt;
  if (Array.isArray(req.prompt) && req.prompt.every((p) => typeof p === 'string')) return req.prompt.join('\n');
  if (Array.isArray(req.messages))
    return req.messages
      .map((m: { content?: unknown }) =>
        typeof m?.content === 'string'
          ? m.content
          : Array.isArray(m?.content)
            ? m.content.map((p: { text?: unknown }) => (typeof p?.text === 'string' ? p.text : '')).join(' ')
            : '',
      )
      .join('\n');
  if (typeof req.inputs === 'string') return req.inputs;
  return '';
}

/** Tokens a reply reports (OpenAI and llm.proto `usage`, TGI `details`), or undefined when it reports none. */
export function reportedTokens(reply: unknown): number | undefined {
  const r = reply as {
    usage?: { prompt_tokens?: unknown; completion_tokens?: unknown };
    details?: { generated_tokens?: unknown; prefill?: unknown[] };
  } | null;
  const u = r?.usage;
  if (u && typeof u.prompt_tokens === 'number' && typeof u.completion_tokens === 'number')
    return u.prompt_tokens + u.completion_tokens;
  return undefined;
}

/** A stream opened as far as its first item (so that failing to start counts before anything is sent). */
export async function openStream<T>(
  stream: AsyncIterable<T>,
): Promise<{ first: T | undefined; value: AsyncIterable<T> }> {
  const it = stream[Symbol.asyncIterator]();
  const first = await it.next();
  let taken = false;
  const value: AsyncIterable<T> = {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        if (!taken) {
          taken = true;
          return first;
        }
        return it.next();
      },
      return: async (v?: unknown) => (it.return ? it.return(v) : { done: true, value: undefined }),
    }),
  };
  return { first: first.done ? undefined : first.value, value };
}

/** Tokens in an OpenAI stream's usage chunk (stream_options.include_usage), if this SSE text has one. */
export function sseUsageTokens(chunk: string): number | undefined {
  if (!chunk.includes('"usage"')) return undefined;
  let found: number | undefined;
  for (const event of chunk.split('\n\n')) {
    if (!event.startsWith('data: {')) continue;
    try {
      found = reportedTokens(JSON.parse(event.slice(6))) ?? found;
    } catch {
      /* not JSON: not a usage chunk */
    }
  }
  return found;
}

/** Tokens of a request before it ran: its prompt at about 4 characters a token, plus max_tokens (default 16). */
export function estimatedTokens(req: Record<string, unknown>): number {
  const max =
    req.max_tokens ?? req.max_completion_tokens ?? (req.parameters as { max_new_tokens?: unknown })?.max_new_tokens;
  return Math.ceil(promptText(req).length / 4) + (typeof max === 'number' ? max : 16);
}

/** Dollars for a request before it ran: estimatedTokens × per1k / 1000. */
export function estimatedCost(req: Record<string, unknown>, per1k: number): number {
  return (estimatedTokens(req) * per1k) / 1000;
}

/** A graph prompt as the request body classify() reads (prompt text or messages). */
export function bodyOf(prompt: GraphPrompt): Record<string, unknown> {
  if ('text' in prompt) return { prompt: prompt.text };
  if ('messages' in prompt) return { messages: prompt.messages };
  return { prompt: '' };
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A 4xx by shape (core errors carry httpStatus, registered package errors status): the caller's fault. */
export function isClientError(err: unknown): boolean {
  const e = err as { httpStatus?: unknown; status?: unknown } | null;
  const status = typeof e?.httpStatus === 'number' ? e.httpStatus : typeof e?.status === 'number' ? e.status : 0;
  return status >= 400 && status < 500 && status !== 408;
}
