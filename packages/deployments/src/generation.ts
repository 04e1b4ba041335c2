/**
 * The protocol-neutral half of a generation request, shared by the OpenAI, TGI and gRPC front ends.
 * The engine is the one validator of engine-level parameters (prompt, max_tokens against the context,
 * sampling parameters): the front ends translate their field names into SamplingParams, call
 * `checkParams` as they parse (the engine's checks that need no model) and `prepareGeneration` (the
 * engine's prepare(): tokenize, check against the model), and `toApiError` — the one place engine errors
 * become API errors — puts each protocol's name for the field back on the error. The server's own
 * limits (limits.maxTokens, maxN, maxPromptTokens) are checked here too.
 */
import {
  checkSamplingParams,
  type ChatMessage,
  type LLMEngine,
  type PreparedRequest,
  type PromptInput,
  type RequestOutput,
  type RequestStream,
  type SamplingParams,
  type TokenLogprob,
  type ToolDefinition,
} from '@flotilla/engine';
import { ContextLimitError, InvalidParameterError, MalformedRequestError } from './errors.js';
import type { ResolvedLimits } from './llm-server-options.js';

export type PromptSource =
  | { text: string }
  | { messages: ChatMessage[]; tools?: readonly ToolDefinition[] }
  | { tokenIds: number[] };

/** Wire names of the request fields, for error messages: SamplingParams field (camelCase) → API name. */
export type ParamNames = Partial<Record<keyof SamplingParams | 'prompt', string>>;

export interface GenerationSpec {
  prompt: PromptSource;
  params: SamplingParams;
  names: ParamNames;
  /** max_tokens when the request gives none. Default: what is left of the context (capped by limits.maxTokens). */
  defaultMaxTokens?: number;
  /**
   * The prompt's text when `prompt` holds token ids the front end encoded from it (off the event loop):
   * used as PreparedGeneration.promptText instead of decoding the ids. Default: the ids decoded, if read.
   */
  promptText?: string;
}

/** A request the engine checked, as the front ends and the guard read it. */
export interface PreparedGeneration {
  tokenIds: readonly number[];
  /** The resolved parameters (maxTokens and n filled in). */
  params: Readonly<Pick<SamplingParams, 'maxTokens' | 'n'>>;
  /** The prompt as text (after the chat template), for echo and for audit logs that ask for it. */
  promptText: string;
  /** What LLMEngine.prepare() returned; startGeneration starts it. Absent on admission-only placeholders. */
  request?: PreparedRequest;
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

/**
 * The engine's checks of `params` that need no model (types, ranges, token-id shapes), as a request is
 * parsed; errors name the field as `names` say. prepareGeneration runs the rest.
 */
export function checkParams(params: SamplingParams, names: ParamNames): void {
  try {
    checkSamplingParams(params);
  } catch (err) {
    throw toApiError(err, names);
  }
}

/**
 * The server's limits on max_tokens and n, then the engine's prepare() (tokenize, check every parameter
 * against the model's context and vocabulary), then the server's limit on the prompt's length.
 */
export function prepareGeneration(engine: LLMEngine, spec: GenerationSpec, limits: ResolvedLimits): PreparedGeneration {
  const { params, names } = spec;
  checkParamLimits(spec, limits);
  let request: PreparedRequest;
  try {
    request = engine.prepare(promptInput(spec.prompt), params, {
      defaultMaxTokens: Math.min(spec.defaultMaxTokens ?? Number.POSITIVE_INFINITY, limits.maxTokens),
    });
  } catch (err) {
    throw toApiError(err, names);
  }
  checkPromptTokens(request.tokenIds.length, names, limits);
  const { promptText } = spec;
  return {
    tokenIds: request.tokenIds,
    params: request.params,
    // Token-id prompts are decoded only if someone reads the text (echo, audit logs).
    get promptText() {
      return promptText ?? request.promptText;
    },
    request,
  };
}

/** The server's limits on max_tokens and n (limits.maxTokens, limits.maxN), before anything tokenizes. */
export function checkParamLimits(spec: Pick<GenerationSpec, 'params' | 'names'>, limits: ResolvedLimits): void {
  const { params, names } = spec;
  if (params.maxTokens !== undefined && params.maxTokens > limits.maxTokens) {
    throw new InvalidParameterError(
      name(names, 'maxTokens'),
      `must be <= ${limits.maxTokens} (limits.maxTokens), got ${params.maxTokens}`,
    );
  }
  if (params.n !== undefined && params.n > limits.maxN) {
    throw new InvalidParameterError(name(names, 'n'), `must be <= ${limits.maxN} (limits.maxN), got ${params.n}`);
  }
}

/** The server's limit on the tokenized prompt (limits.maxPromptTokens). */
export function checkPromptTokens(count: number, names: ParamNames, limits: ResolvedLimits): void {
  if (count > limits.maxPromptTokens) {
    throw new ContextLimitError(
      name(names, 'prompt'),
      `is ${count} tokens; the limit is ${limits.maxPromptTokens} tokens (limits.maxPromptTokens)`,
    );
  }
}

function promptInput(prompt: PromptSource): PromptInput {
  if ('text' in prompt) return prompt.text;
  if ('tokenIds' in prompt) return { tokenIds: prompt.tokenIds };
  return { messages: prompt.messages, addGenerationPrompt: true, ...(prompt.tools ? { tools: prompt.tools } : {}) };
}

/** Starts a prepared request; the engine's synchronous errors (a duplicate request id, ...) come back as API errors. */
export function startGeneration(
  engine: LLMEngine,
  prepared: PreparedGeneration,
  names: ParamNames,
  opts: { requestId: string; signal?: AbortSignal },
): RequestStream {
  if (!prepared.request) throw new TypeError('startGeneration needs what prepareGeneration returned');
  try {
    return engine.generate(prepared.request, {
      requestId: opts.requestId,
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (err) {
    throw toApiError(err, names);
  }
}

/**
 * Engine errors → API errors naming the field as the API does (`names`); the protocol routes render
 * those in their own shape (OpenAI JSON, TGI JSON, gRPC status). Matched by code, not class: the engine
 * may be another copy of the module. Anything else is returned as it is.
 */
export function toApiError(err: unknown, names: ParamNames): unknown {
  const e = err as { code?: string; param?: string; problem?: string; message?: string };
  const apiName = (param: string) => names[param as keyof ParamNames] ?? param;
  const problemOf = (param: string) => e.problem ?? (e.message ?? '').replace(`${param}: `, '');
  switch (e.code) {
    case 'E_SAMPLING_PARAMS': {
      const param = e.param ?? 'samplingParams';
      return new InvalidParameterError(apiName(param), problemOf(param));
    }
    case 'E_CONTEXT_LENGTH': {
      const param = e.param ?? 'prompt';
      return new ContextLimitError(apiName(param), problemOf(param));
    }
    case 'E_KV_CAPACITY':
      return new ContextLimitError(name(names, 'maxTokens'), e.message ?? 'the request does not fit the KV cache');
    case 'E_INVALID_PROMPT':
      return new InvalidParameterError(name(names, 'prompt'), (e.message ?? 'invalid').replace(/^prompt: /, ''));
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
