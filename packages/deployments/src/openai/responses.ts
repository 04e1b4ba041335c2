/**
 * OpenAI response bodies: whole completions and chat completions, their streaming chunks, and the
 * final usage chunk of stream_options.include_usage.
 */
import type { RequestOutput } from '@flotilla/engine';
import type { TokenTable } from '../handler-context.js';
import type { SampleResult, Usage } from '../generation.js';
import { sse } from '../handler-context.js';
import { chatLogprobs, completionLogprobs, echoLogprobs } from './logprobs.js';
import type { OpenAiRequest } from './params.js';

export interface ResponseMeta {
  id: string;
  created: number;
  model: string;
  tok: TokenTable;
  req: OpenAiRequest;
}

/** OpenAI's finish reasons: a stop string or stop token is 'stop', the length limit is 'length'. */
export function finishReasonOf(reason: string | null): 'stop' | 'length' | null {
  if (reason === null) return null;
  return reason === 'length' ? 'length' : 'stop';
}

export function usageBody(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
  };
}

/**
 * `promptTokenIds` go with echo + logprobs (the prompt's logprobs come first). With scoreOnly
 * (max_tokens 0) the one token generated is dropped: the choice is the prompt alone, 0 completion tokens.
 */
export function completionBody(
  m: ResponseMeta,
  samples: SampleResult[],
  usage: Usage,
  promptText: string,
  promptTokenIds: readonly number[] = [],
) {
  const withTop = (m.req.logprobs ?? 0) > 0;
  const score = m.req.scoreOnly;
  const logprobs = (s: SampleResult) => {
    if (m.req.logprobs === undefined) return null;
    const own = score ? [] : s.logprobs;
    return m.req.echo && s.promptLogprobs
      ? echoLogprobs(m.tok, promptTokenIds, s.promptLogprobs, own, withTop)
      : completionLogprobs(m.tok, own, 0, withTop);
  };
  return {
    id: m.id,
    object: 'text_completion',
    created: m.created,
    model: m.model,
    system_fingerprint: null,
    choices: samples.map((s) => ({
      index: s.index,
      text: m.req.echo ? promptText + (score ? '' : s.text) : s.text,
      logprobs: logprobs(s),
      finish_reason: score ? 'length' : finishReasonOf(s.finishReason),
      stop_reason: score ? null : s.stopReason,
    })),
    usage: usageBody(score ? { ...usage, completionTokens: 0 } : usage),
  };
}

export function chatBody(m: ResponseMeta, samples: SampleResult[], usage: Usage) {
  return {
    id: m.id,
    object: 'chat.completion',
    created: m.created,
    model: m.model,
    system_fingerprint: null,
    choices: samples.map((s) => ({
      index: s.index,
      message: { role: 'assistant', content: s.text, refusal: null, tool_calls: [] },
      logprobs: m.req.logprobs !== undefined ? chatLogprobs(m.tok, s.logprobs) : null,
      finish_reason: finishReasonOf(s.finishReason),
      stop_reason: s.stopReason,
    })),
    usage: usageBody(usage),
  };
}

/** One streamed output of one choice. `offsets` carries each choice's text offset for completion logprobs. */
export function completionChunk(m: ResponseMeta, out: RequestOutput, offsets: number[]) {
  const at = offsets[out.index] ?? 0;
  offsets[out.index] = at + out.text.length;
  const logprobs =
    m.req.logprobs !== undefined ? completionLogprobs(m.tok, out.logprobs ?? [], at, (m.req.logprobs ?? 0) > 0) : null;
  return {
    id: m.id,
    object: 'text_completion',
    created: m.created,
    model: m.model,
    choices: [
      {
        index: out.index,
        text: out.text,
        logprobs,
        finish_reason: out.finished ? finishReasonOf(out.finishReason) : null,
        ...(out.finished ? { stop_reason: out.stopReason } : {}),
      },
    ],
  };
}

export function chatChunk(m: ResponseMeta, out: RequestOutput, first: boolean) {
  const delta: Record<string, unknown> = first ? { role: 'assistant', content: out.text } : { content: out.text };
  return {
    id: m.id,
    object: 'chat.completion.chunk',
    created: m.created,
    model: m.model,
    choices: [
      {
        index: out.index,
        delta,
        logprobs: m.req.logprobs !== undefined ? chatLogprobs(m.tok, out.logprobs ?? []) : null,
        finish_reason: out.finished ? finishReasonOf(out.finishReason) : null,
        ...(out.finished ? { stop_reason: out.stopReason } : {}),
      },
    ],
  };
}

/** The last chunk with include_usage: no choices, the whole request's usage. */
export function usageChunk(m: ResponseMeta, usage: Usage) {
  const object = m.req.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
  return { id: m.id, object, created: m.created, model: m.model, choices: [], usage: usageBody(usage) };
}

/** The echo chunk that opens a streamed completion with echo: true. */
export function echoChunk(m: ResponseMeta, n: number, promptText: string) {
  return {
    id: m.id,
    object: 'text_completion',
    created: m.created,
    model: m.model,
    choices: Array.from({ length: n }, (_, index) => ({
      index,
      text: promptText,
      logprobs: null,
      finish_reason: null,
    })),
  };
}

/**
 * The SSE lines of one streamed response. A chunk is written once per token per stream, so the common
 * one — new text of one choice, no logprobs, not the first chat delta, not finished — is spliced into
 * JSON prebuilt at the start of the request: the same bytes as `sse(completionChunk(...))` /
 * `sse(chatChunk(...))` (test/unit/deploy-sse-chunks.test.ts compares them), without building and
 * stringifying an object per token. Every other chunk goes through those functions.
 */
export class ChunkWriter {
  /** `data: {"id":…,"object":…,"created":…,"model":…,"choices":[{"index":` */
  private readonly head: string;
  private readonly plain: boolean;

  constructor(private readonly m: ResponseMeta) {
    const object = m.req.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion';
    this.head =
      `data: {"id":${JSON.stringify(m.id)},"object":"${object}","created":${JSON.stringify(m.created)},` +
      `"model":${JSON.stringify(m.model)},"choices":[{"index":`;
    this.plain = m.req.logprobs === undefined;
  }

  /** A completion chunk; `offsets` carries each choice's text offset (completion logprobs). */
  completion(out: RequestOutput, offsets: number[]): string {
    if (!this.plain || out.finished) return sse(completionChunk(this.m, out, offsets));
    offsets[out.index] = (offsets[out.index] ?? 0) + out.text.length;
    return `${this.head}${out.index},"text":${JSON.stringify(out.text)},"logprobs":null,"finish_reason":null}]}\n\n`;
  }

  /** A chat chunk; the first of each choice also carries the role. */
  chat(out: RequestOutput, first: boolean): string {
    if (!this.plain || first || out.finished) return sse(chatChunk(this.m, out, first));
    return `${this.head}${out.index},"delta":{"content":${JSON.stringify(out.text)}},"logprobs":null,"finish_reason":null}]}\n\n`;
  }
}
