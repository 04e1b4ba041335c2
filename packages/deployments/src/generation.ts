/**
 * The protocol-neutral half of a generation request, shared by the OpenAI, TGI and gRPC front ends:
 * turn the prompt into token ids under the server's limits, start it on the engine (mapping the engine's
 * typed errors to API errors that name the field in the caller's spelling), and collect whole results.
 */
import type {
  ChatMessage,
  LLMEngine,
  RequestOutput,
  RequestStream,
  SamplingParams,
  TokenLogprob,
} from '@flotilla/engine';
import { ContextLimitError, InvalidParameterError, MalformedRequestError } from './errors.js';
import type { ResolvedLimits } from './llm-server-options.js';

export type PromptSource = { text: string } | { messages: ChatMessage[] } | { tokenIds: number[] };

/** Wire names of the request fields, for error messages: SamplingParams field (camelCase) → API name. */
export type ParamNames = Partial<Record<keyof SamplingParams | 'prompt', string>>;

export interface GenerationSpec {
  prompt: PromptSource;
  params: SamplingParams;
  names: ParamNames;
  /** max_tokens when the request gives none. Default: what is left of the context (capped by limits.maxTokens). */
  defaultMaxTokens?: number;
}

export interface PreparedGeneration {
  tokenIds: number[];
  /** Sampling parameters with maxTokens filled in. */
  params: SamplingParams;
  /** The prompt as text (after the chat template), for echo and for audit logs that ask for it. */
  promptText: string;
}

export interface SampleResult {
  index: number;
  text: string;
  tokenIds: number[];
  logprobs: TokenLogprob[];
  /** SamplingParams.promptLogprobs' result: per prompt token, null for the first. */
  promptLogprobs: Array<TokenLogprob | null> | null;
  finishReason: 'stop' | 'length' | 'abort';
  stopReason: number | string | null;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

const name = (names: ParamNames, key: keyof ParamNames): string => names[key] ?? key;

/** Tokenizes the prompt and checks it and max_tokens / n against the limits and the model's context. */
export function prepareGeneration(engine: LLMEngine, spec: GenerationSpec, limits: ResolvedLimits): PreparedGeneration {
  const { tokenIds, promptText } = promptTokens(engine, spec.prompt, name(spec.names, 'prompt'));
  const promptName = name(spec.names, 'prompt');
  if (tokenIds.length === 0) throw new InvalidParameterError(promptName, 'is empty (no tokens)');
  if (tokenIds.length > limits.maxPromptTokens) {
    throw new ContextLimitError(
      promptName,
      `is ${tokenIds.length} tokens; the limit is ${limits.maxPromptTokens} tokens (limits.maxPromptTokens)`,
    );
  }
  const params = { ...spec.params };
  const maxName = name(spec.names, 'maxTokens');
  const room = engine.maxModelLen - tokenIds.length;
  if (params.maxTokens === undefined) {
    params.maxTokens = Math.max(1, Math.min(spec.defaultMaxTokens ?? Infinity, limits.maxTokens, room));
  } else if (params.maxTokens > limits.maxTokens) {
    throw new InvalidParameterError(
      maxName,
      `must be <= ${limits.maxTokens} (limits.maxTokens), got ${params.maxTokens}`,
    );
  } else if (params.maxTokens > room) {
    throw new ContextLimitError(
      maxName,
      `the prompt (${tokenIds.length} tokens) + ${maxName} (${params.maxTokens}) exceeds ` +
        `the model's context of ${engine.maxModelLen} tokens`,
    );
  }
  if (params.n !== undefined && params.n > limits.maxN) {
    throw new InvalidParameterError(name(spec.names, 'n'), `must be <= ${limits.maxN} (limits.maxN), got ${params.n}`);
  }
  return { tokenIds, params, promptText };
}

function promptTokens(
  engine: LLMEngine,
  prompt: PromptSource,
  promptName: string,
): { tokenIds: number[]; promptText: string } {
  const tok = engine.tokenizer;
  if ('tokenIds' in prompt) {
    const bad = prompt.tokenIds.findIndex((id) => id >= tok.vocabSize);
    if (bad >= 0)
      throw new InvalidParameterError(
        promptName,
        `token ${bad} (${prompt.tokenIds[bad]}) is outside the vocabulary [0, ${tok.vocabSize})`,
      );
    return { tokenIds: prompt.tokenIds, promptText: tok.decode(prompt.tokenIds) };
  }
  if ('text' in prompt) return { tokenIds: tok.encode(prompt.text), promptText: prompt.text };
  let text: string;
  try {
    text = engine.chatTemplate.render(prompt.messages, { addGenerationPrompt: true });
  } catch (err) {
    throw new InvalidParameterError('messages', (err as Error).message);
  }
  // A template that spells out BOS: let the tokenizer add the real token instead (as the engine does).
  const bos = engine.chatTemplate.bosToken;
  const body = bos && text.startsWith(bos) ? text.slice(bos.length) : text;
  return { tokenIds: tok.encode(body), promptText: text };
}

/** Starts the request; the engine's synchronous validation errors come back as API errors. */
export function startGeneration(
  engine: LLMEngine,
  prepared: PreparedGeneration,
  names: ParamNames,
  opts: { requestId: string; signal?: AbortSignal },
): RequestStream {
  try {
    return engine.generate({ tokenIds: prepared.tokenIds }, prepared.params, {
      requestId: opts.requestId,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    throw toApiError(err, names);
  }
}

/** Engine errors (matched by code: they may come from another copy of the module) → API errors. */
export function toApiError(err: unknown, names: ParamNames): unknown {
  const e = err as { code?: string; param?: string; message?: string };
  const problemOf = (param: string) => (e.message ?? '').replace(`${param}: `, '');
  switch (e.code) {
    case 'E_SAMPLING_PARAMS': {
      const param = e.param ?? 'samplingParams';
      return new InvalidParameterError(names[param as keyof ParamNames] ?? param, problemOf(param));
    }
    case 'E_CONTEXT_LENGTH': {
      const param = e.param ?? 'prompt';
      return new ContextLimitError(names[param as keyof ParamNames] ?? param, problemOf(param));
    }
    case 'E_KV_CAPACITY':
      return new ContextLimitError(name(names, 'maxTokens'), e.message ?? 'the request does not fit the KV cache');
    case 'E_INVALID_PROMPT':
      return new InvalidParameterError(name(names, 'prompt'), e.message ?? 'invalid');
    case 'E_CHAT_TEMPLATE':
      return new InvalidParameterError('messages', e.message ?? 'the chat template failed');
    case 'E_DUPLICATE_REQUEST':
      return new MalformedRequestError(`${e.message}; send a unique x-request-id`);
    default:
      return err;
  }
}

/** Runs a request to the end and returns its samples by index, plus usage. */
export async function collectGeneration(
  stream: AsyncIterable<RequestOutput>,
  n: number,
): Promise<{ samples: SampleResult[]; usage: Usage }> {
  const samples: SampleResult[] = Array.from({ length: n }, (_, index) => ({
    index,
    text: '',
    tokenIds: [],
    logprobs: [],
    promptLogprobs: null,
    finishReason: 'abort',
    stopReason: null,
  }));
  const usage: Usage = { promptTokens: 0, completionTokens: 0 };
  const completion = new Array<number>(n).fill(0);
  for await (const out of stream) {
    const s = samples[out.index]!;
    s.text += out.text;
    for (const id of out.tokenIds) s.tokenIds.push(id);
    if (out.logprobs) for (const lp of out.logprobs) s.logprobs.push(lp);
    if (out.promptLogprobs) s.promptLogprobs = out.promptLogprobs;
    if (out.finished) {
      s.finishReason = out.finishReason ?? 'stop';
      s.stopReason = out.stopReason;
    }
    usage.promptTokens = out.usage.promptTokens;
    completion[out.index] = out.usage.completionTokens;
  }
  usage.completionTokens = completion.reduce((a, b) => a + b, 0);
  return { samples, usage };
}

/** Tracks usage across the samples of a streaming request. */
export class UsageTracker {
  promptTokens = 0;
  private readonly perSample: number[] = [];

  add(out: RequestOutput): void {
    this.promptTokens = out.usage.promptTokens;
    this.perSample[out.index] = out.usage.completionTokens;
  }

  get completionTokens(): number {
    let sum = 0;
    for (const c of this.perSample) sum += c ?? 0;
    return sum;
  }
}
