/**
 * OpenAI request bodies → GenerationSpec. Every field is checked and named in OpenAI's spelling: the
 * engine's parameters are renamed into SamplingParams and checked by the engine's own validator
 * (checkParams); what is OpenAI's alone is checked here (temperature <= 2, max_tokens 0 for scoring,
 * echo, stream_options, the server's limit on stop strings). Fields OpenAI has but this server cannot
 * honour (...) are refused rather than ignored; structured output (response_format, guided_*) is read by
 * guided-params.ts; tools are read by tools.ts. vLLM's extensions (top_k,
 * min_p, repetition_penalty, min_tokens, ignore_eos, stop_token_ids, include_stop_str_in_output) are
 * accepted too.
 */
import type { ChatMessage, SamplingParams } from '@flotilla/engine';
import { InvalidParameterError } from '../errors.js';
import { checkParams, type GenerationSpec, type ParamNames } from '../generation.js';
import type { ResolvedLimits } from '../llm-server-options.js';
import { BodyReader } from '../validate.js';
import { readGuided, readIgnoredFields } from './guided-params.js';
import { readToolCalls, readToolConfig, type ToolConfig, toolGuidedSpec, toolMode } from './tools.js';
import { readTgiCompletionParams } from './tgi-params.js';

export interface OpenAiRequest {
  kind: 'completion' | 'chat';
  model: string | undefined;
  spec: GenerationSpec;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with usage and no choices. */
  includeUsage: boolean;
  /** stream_options.continuous_usage_stats (vLLM's, with include_usage): usage so far in every chunk too. */
  continuousUsage: boolean;
  /** completions: put the prompt before the completion (with logprobs: the prompt tokens' logprobs too). */
  echo: boolean;
  /** completions: max_tokens 0 with echo — score the prompt, generate nothing (one token runs and is dropped). */
  scoreOnly: boolean;
  /** Top alternatives per token when logprobs were asked for; undefined: none. */
  logprobs: number | undefined;
  /** chat: tools, tool_choice and parallel_tool_calls (openai/tools.ts); undefined without tools. */
  tools?: ToolConfig;
}

/** OpenAI's default max_tokens for /v1/completions (chat's default is the rest of the context). */
export const COMPLETIONS_DEFAULT_MAX_TOKENS = 16;
const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool']);

const BASE_NAMES: ParamNames = {
  temperature: 'temperature',
  topP: 'top_p',
  topK: 'top_k',
  minP: 'min_p',
  maxTokens: 'max_tokens',
  minTokens: 'min_tokens',
  n: 'n',
  seed: 'seed',
  stop: 'stop',
  stopTokenIds: 'stop_token_ids',
  ignoreEos: 'ignore_eos',
  includeStopStrInOutput: 'include_stop_str_in_output',
  repetitionPenalty: 'repetition_penalty',
  presencePenalty: 'presence_penalty',
  frequencyPenalty: 'frequency_penalty',
  logitBias: 'logit_bias',
};

export function parseCompletionRequest(body: unknown, limits: ResolvedLimits): OpenAiRequest {
  const r = BodyReader.of(body);
  const prompt = readPrompt(r);
  const params = readSampling(r, limits);
  const tgi = readTgiCompletionParams(r, params); // Hugging Face's clients post TGI's parameters here
  const names: ParamNames = { ...BASE_NAMES, prompt: 'prompt', promptLogprobs: 'echo' };
  const guided = readGuided(r); // vLLM takes response_format and guided_* on completions too
  if (guided) {
    params.guided = guided.spec;
    names.guided = guided.name;
  }
  // max_tokens 0 is OpenAI's "score the prompt" (with echo); any other value is the engine's maxTokens.
  const maxTokens = r.raw('max_tokens');
  const scoreOnly = maxTokens === 0;
  if (maxTokens !== undefined && !scoreOnly) params.maxTokens = maxTokens as number;
  const rawLogprobs = r.raw('logprobs');
  if (rawLogprobs !== undefined) params.logprobs = rawLogprobs as number;
  checkParams(params, names);
  const logprobs = params.logprobs;
  const echo = r.boolean('echo') ?? tgi.returnFullText ?? false;
  if (scoreOnly && !echo)
    throw new InvalidParameterError('max_tokens', 'must be >= 1 (0 only with echo: true, to score the prompt)');
  if (scoreOnly && r.boolean('stream'))
    throw new InvalidParameterError('max_tokens', '0 is not streamed on this server; send stream: false');
  if (scoreOnly) params.maxTokens = 1;
  if (echo && logprobs !== undefined) {
    // The prompt's own logprobs (engine promptLogprobs): computed whole, for one choice, returned whole.
    if ((params.n ?? 1) !== 1) throw new InvalidParameterError('n', 'echo with logprobs supports n = 1');
    if (r.boolean('stream'))
      throw new InvalidParameterError('echo', 'echo with logprobs is not streamed on this server; send stream: false');
    params.promptLogprobs = logprobs;
  }
  r.unsupported('suffix', (v) => v === '');
  const bestOf = r.integer('best_of', { min: 1 });
  if (bestOf !== undefined && bestOf !== (params.n ?? 1))
    throw new InvalidParameterError('best_of', 'must equal n (best_of > n is not supported)');
  const common = readCommon(r);
  r.rejectUnknown();
  return {
    kind: 'completion',
    model: common.model,
    stream: common.stream,
    includeUsage: common.includeUsage,
    continuousUsage: common.continuousUsage,
    echo,
    scoreOnly,
    logprobs,
    spec: { prompt, params, names, defaultMaxTokens: COMPLETIONS_DEFAULT_MAX_TOKENS },
  };
}

export function parseChatRequest(body: unknown, limits: ResolvedLimits): OpenAiRequest {
  const r = BodyReader.of(body);
  const messages = readMessages(r);
  const params = readSampling(r, limits);
  // Two names for the engine's maxTokens; max_completion_tokens wins, and errors name the one given.
  const maxTokens = r.raw('max_tokens');
  const maxCompletion = r.raw('max_completion_tokens');
  const maxName = maxCompletion !== undefined ? 'max_completion_tokens' : 'max_tokens';
  const names: ParamNames = { ...BASE_NAMES, maxTokens: maxName, prompt: 'messages', logprobs: 'top_logprobs' };
  if (maxTokens !== undefined && maxCompletion !== undefined)
    checkParams({ maxTokens: maxTokens as number }, { maxTokens: 'max_tokens' }); // the one not used is checked too
  if (maxTokens !== undefined || maxCompletion !== undefined) params.maxTokens = (maxCompletion ?? maxTokens) as number;
  const wantLogprobs = r.boolean('logprobs') ?? false;
  const top = r.raw('top_logprobs');
  if (top !== undefined && !wantLogprobs) throw new InvalidParameterError('top_logprobs', 'requires logprobs: true');
  if (wantLogprobs) params.logprobs = (top ?? 0) as number;
  // tool_choice 'required' or a named function: the call is generated under its JSON schema
  const tools = readToolConfig(r);
  const toolGrammar = toolGuidedSpec(tools);
  if (toolGrammar) params.guided = toolGrammar;
  const guided = readGuided(r);
  if (guided && toolGrammar)
    throw new InvalidParameterError(guided.name, 'cannot be combined with a tool_choice that forces a tool call');
  if (guided) params.guided = guided.spec;
  const guidedName = guided?.name ?? 'tool_choice';
  checkParams(params, { ...names, guided: guidedName });
  const logprobs = params.logprobs;
  const common = readCommon(r);
  r.rejectUnknown();
  return {
    kind: 'chat',
    model: common.model,
    stream: common.stream,
    includeUsage: common.includeUsage,
    continuousUsage: common.continuousUsage,
    echo: false,
    scoreOnly: false,
    logprobs,
    ...(tools ? { tools } : {}),
    spec: {
      // with tool_choice 'none' the tools stay out of the prompt
      prompt: tools && toolMode(tools) !== null ? { messages, tools: tools.tools } : { messages },
      params,
      names: { ...names, guided: guidedName },
    },
  };
}

function readCommon(r: BodyReader): {
  model: string | undefined;
  stream: boolean;
  includeUsage: boolean;
  continuousUsage: boolean;
} {
  const model = r.string('model');
  const stream = r.boolean('stream') ?? false;
  const opts = r.object('stream_options');
  let includeUsage = false;
  let continuousUsage = false;
  if (opts) {
    if (!stream) throw new InvalidParameterError('stream_options', 'is only allowed with stream: true');
    includeUsage = opts.boolean('include_usage') ?? false;
    continuousUsage = includeUsage && (opts.boolean('continuous_usage_stats') ?? false);
    opts.rejectUnknown();
  }
  readIgnoredFields(r);
  return { model, stream, includeUsage, continuousUsage };
}

/** BASE_NAMES backwards: OpenAI field → SamplingParams field, for the fields passed to the engine as they are. */
const ENGINE_FIELDS = Object.entries(BASE_NAMES).filter(
  ([key]) => key !== 'temperature' && key !== 'stop' && key !== 'maxTokens',
) as Array<[keyof SamplingParams, string]>;

/**
 * The sampling fields both endpoints share, renamed; the caller checks them with checkParams. OpenAI's
 * own rules are checked here: temperature in [0, 2] (the engine takes any >= 0), at most limits.maxStop
 * stop strings.
 */
function readSampling(r: BodyReader, limits: ResolvedLimits): SamplingParams {
  const p: Record<string, unknown> = {};
  const temperature = r.number('temperature', { min: 0, max: 2 });
  if (temperature !== undefined) p.temperature = temperature;
  const stop = r.strings('stop', limits.maxStop);
  if (stop !== undefined) p.stop = stop;
  for (const [key, field] of ENGINE_FIELDS) {
    const v = r.raw(field);
    if (v !== undefined) p[key] = v;
  }
  return p as SamplingParams;
}

function readPrompt(r: BodyReader): GenerationSpec['prompt'] {
  const v = r.raw('prompt');
  if (v === undefined) throw new InvalidParameterError('prompt', 'is required');
  if (typeof v === 'string') return { text: v };
  if (Array.isArray(v) && v.length === 1 && typeof v[0] === 'string') return { text: v[0] };
  if (Array.isArray(v) && v.length > 0 && v.every((x) => Number.isInteger(x) && x >= 0))
    return { tokenIds: v as number[] };
  if (Array.isArray(v) && v.length === 1 && Array.isArray(v[0])) {
    const ids = v[0] as unknown[];
    if (ids.length > 0 && ids.every((x) => Number.isInteger(x) && (x as number) >= 0))
      return { tokenIds: ids as number[] };
  }
  if (Array.isArray(v) && v.length > 1)
    throw new InvalidParameterError('prompt', 'one prompt per request is supported; send several requests');
  throw new InvalidParameterError('prompt', 'must be a string, or an array of token ids');
}

export function readMessages(r: BodyReader): ChatMessage[] {
  const v = r.raw('messages');
  if (!Array.isArray(v) || v.length === 0)
    throw new InvalidParameterError('messages', 'must be a non-empty array of { role, content }');
  return v.map((m: unknown, i) => {
    const where = `messages[${i}]`;
    const mr = BodyReader.of(m, where, `${where}.`);
    const role = mr.string('role');
    if (role === undefined || !CHAT_ROLES.has(role))
      throw new InvalidParameterError(`${where}.role`, `must be one of ${[...CHAT_ROLES].join(', ')}`);
    const content = mr.raw('content');
    const name = mr.string('name');
    const toolCallId = mr.string('tool_call_id');
    const toolCalls = role === 'assistant' ? readToolCalls(mr.raw('tool_calls'), where) : undefined;
    if (role !== 'assistant') mr.unsupported('tool_calls');
    mr.rejectUnknown();
    if (role === 'tool' && toolCallId === undefined)
      throw new InvalidParameterError(`${where}.tool_call_id`, "is required on a 'tool' message");
    const callsOnly = toolCalls !== undefined && toolCalls.length > 0 && content === undefined;
    if (typeof content !== 'string' && !Array.isArray(content) && !callsOnly) {
      throw new InvalidParameterError(`${where}.content`, 'must be a string or an array of text parts');
    }
    const msg: ChatMessage = { role, content: callsOnly ? null : (content as ChatMessage['content']) };
    if (name !== undefined) msg.name = name;
    if (toolCalls && toolCalls.length > 0) msg.tool_calls = toolCalls;
    if (toolCallId !== undefined) msg.tool_call_id = toolCallId;
    return msg;
  });
}
