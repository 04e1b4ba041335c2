/**
 * Sampling parameters of one request: what the caller may pass, their defaults, and validation into a
 * fully resolved object the scheduler and the model runner read without further checks. This is the one
 * validator of them: the engine runs it (LLMEngine.prepare), and the API layers (OpenAI, TGI, gRPC) call
 * checkSamplingParams with their fields renamed, then put their own names back on the errors.
 */
import { ContextLengthError, SamplingParamsError } from './errors.js';
import { checkGuidedSpec, type GuidedSpec } from './guided/guided-spec.js';

export type { GuidedSpec } from './guided/guided-spec.js';

export interface SamplingParams {
  /** Softmax temperature; 0 samples greedily. Default 1. */
  temperature?: number;
  /** Nucleus sampling: keep the smallest set of tokens whose probability sums to topP, in (0, 1]. Default 1 (off). */
  topP?: number;
  /** Keep only the k most likely tokens; 0 or -1 turns it off. Default 0 (off). */
  topK?: number;
  /** Drop tokens whose probability is below minP times the best one's, in [0, 1]. Default 0 (off). */
  minP?: number;
  /** Most tokens to generate, at least 1. Default: what is left of the model's context after the prompt. */
  maxTokens?: number;
  /** Stop tokens and stop strings are ignored until this many tokens have been generated. Default 0. */
  minTokens?: number;
  /** Independent samples generated from the same prompt (sharing its KV blocks). Default 1. */
  n?: number;
  /**
   * Seed for reproducible sampling; sample i of a request uses seed + i. Without one each sample
   * draws a random seed at admission. Default undefined.
   */
  seed?: number;
  /** Strings that end generation; the output stops before them. Default []. */
  stop?: string | string[];
  /** Token ids that end generation, besides the model's own EOS / stop tokens. Default []. */
  stopTokenIds?: number[];
  /** Keep generating past EOS and the model's stop tokens (stopTokenIds still apply). Default false. */
  ignoreEos?: boolean;
  /** Keep the stop string that ended generation at the end of the text. Default false. */
  includeStopStrInOutput?: boolean;
  /** Return the sampled token's logprob and this many top alternatives per token, 0..20; undefined = none. Default undefined. */
  logprobs?: number;
  /**
   * Return each prompt token's logprob under the model (the first token has none) and this many top
   * alternatives, 0..20 — vLLM's prompt_logprobs, what scoring a text needs. The prompt is then
   * computed whole in one step (no prefix-cache hits, no chunks), so it may be at most the engine's
   * maxNumBatchedTokens; n must be 1. Default undefined (none).
   */
  promptLogprobs?: number;
  /** Divides logits of tokens already in the prompt or output (>1 discourages repeats), > 0. Default 1 (off). */
  repetitionPenalty?: number;
  /** Subtracted once from logits of tokens already generated, in [-2, 2]. Default 0 (off). */
  presencePenalty?: number;
  /** Subtracted per occurrence from logits of tokens already generated, in [-2, 2]. Default 0 (off). */
  frequencyPenalty?: number;
  /**
   * Added to the logits of these token ids before penalties and sampling (OpenAI's logit_bias): an object
   * from token id (a number or its decimal string) to a bias in [-100, 100]; -100 all but bans a token,
   * 100 all but forces it. Default none.
   */
  logitBias?: Record<string | number, number>;
  /**
   * Speculative decoding for this request: proposed tokens per step (k, 0..16) and how they are
   * proposed ('draft' needs an engine with a draft model); false turns it off. Output is distributed
   * exactly as without it (identical when greedy). Default: the engine's `speculative` option.
   */
  speculative?: SpeculativeParams | false;
  /**
   * Guided decoding (structured output): every token is sampled from those that keep the output a
   * prefix of a sentence of this grammar (a JSON schema, any JSON object, a regex, one of some choices,
   * an EBNF grammar), and the output ends only when the sentence is complete (or at maxTokens, then
   * incomplete, finish reason 'length'). Compiled when the request is prepared: a bad schema, regex or
   * grammar throws SamplingParamsError naming 'guided'. Guided sequences do not speculate. Not with
   * minTokens or promptLogprobs. Default none.
   */
  guided?: GuidedSpec;
}

export interface SpeculativeParams {
  /** Proposed tokens per step. Default: the engine's. */
  k?: number;
  /** 'ngram' (prompt lookup, no model) or 'draft' (the engine's draft model). Default: the engine's. */
  method?: 'ngram' | 'draft';
}

/** Most tokens one speculative step may propose. */
export const MAX_SPECULATIVE_K = 16;

/** Every field present and checked. */
export interface ResolvedSamplingParams {
  temperature: number;
  topP: number;
  topK: number;
  minP: number;
  maxTokens: number;
  minTokens: number;
  n: number;
  seed: number | undefined;
  stop: string[];
  stopTokenIds: number[];
  ignoreEos: boolean;
  includeStopStrInOutput: boolean;
  logprobs: number | undefined;
  promptLogprobs: number | undefined;
  repetitionPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** (token id, bias) pairs in id order, each id once; empty when none. */
  logitBias: ReadonlyArray<readonly [number, number]>;
  /** Undefined: the engine's default. */
  speculative?: SpeculativeParams | false;
  /** Undefined: unconstrained. */
  guided?: GuidedSpec;
}

/** What validation needs to know about the model and the prompt. */
export interface SamplingContext {
  /** Longest sequence (prompt + output) the model serves. */
  maxModelLen: number;
  vocabSize: number;
  promptLen: number;
  /** maxTokens when the request gives none (capped by the room the prompt leaves). Default: that room. */
  defaultMaxTokens?: number;
}

/** Most top logprobs one token may ask for. */
export const MAX_LOGPROBS = 20;

const KNOWN = new Set<string>([
  'temperature',
  'topP',
  'topK',
  'minP',
  'maxTokens',
  'minTokens',
  'n',
  'seed',
  'stop',
  'stopTokenIds',
  'ignoreEos',
  'includeStopStrInOutput',
  'logprobs',
  'promptLogprobs',
  'repetitionPenalty',
  'presencePenalty',
  'frequencyPenalty',
  'logitBias',
  'speculative',
  'guided',
]);

/** The range of one logit bias, OpenAI's. */
export const MAX_LOGIT_BIAS = 100;

/**
 * Checks `input` (anything: it may come straight from a request body) and fills the defaults.
 * Throws SamplingParamsError (code E_SAMPLING_PARAMS, `param` naming the field) or ContextLengthError.
 */
export function resolveSamplingParams(input: unknown, ctx: SamplingContext): ResolvedSamplingParams {
  if (input === undefined || input === null) input = {};
  if (typeof input !== 'object' || Array.isArray(input)) {
    throw new SamplingParamsError('samplingParams', 'must be an object');
  }
  const p = input as Record<string, unknown>;
  for (const key of Object.keys(p)) {
    if (!KNOWN.has(key)) throw new SamplingParamsError(key, 'unknown sampling parameter');
  }
  const temperature = num(p, 'temperature', 1, (v) => v >= 0, 'must be >= 0');
  const topP = num(p, 'topP', 1, (v) => v > 0 && v <= 1, 'must be > 0 and <= 1');
  const topK = int(p, 'topK', 0, (v) => v >= -1, 'must be -1, 0 (off) or a positive integer');
  const minP = num(p, 'minP', 0, (v) => v >= 0 && v <= 1, 'must be >= 0 and <= 1');
  const n = int(p, 'n', 1, (v) => v >= 1, 'must be >= 1');
  const minTokens = int(p, 'minTokens', 0, (v) => v >= 0, 'must be >= 0');
  const room = ctx.maxModelLen - ctx.promptLen;
  if (room < 1) {
    throw new ContextLengthError(
      'prompt',
      `is ${ctx.promptLen} tokens, which leaves no room in the model's context of ${ctx.maxModelLen} tokens`,
      { promptLen: ctx.promptLen, maxModelLen: ctx.maxModelLen },
    );
  }
  const dflt = Math.max(1, Math.min(ctx.defaultMaxTokens ?? room, room));
  const maxTokens = int(p, 'maxTokens', dflt, (v) => v >= 1, 'must be >= 1');
  if (ctx.promptLen + maxTokens > ctx.maxModelLen) {
    // The problem does not name maxTokens itself: API layers prefix their own name for it.
    throw new ContextLengthError(
      'maxTokens',
      `the prompt (${ctx.promptLen} tokens) + ${maxTokens} tokens to generate exceed the model's context of ${ctx.maxModelLen} tokens`,
      { promptLen: ctx.promptLen, maxTokens, maxModelLen: ctx.maxModelLen },
    );
  }
  if (minTokens > maxTokens) throw new SamplingParamsError('minTokens', `must be <= maxTokens (${maxTokens})`);
  const seed =
    p.seed === undefined || p.seed === null
      ? undefined
      : int(p, 'seed', 0, (v) => v >= 0 && v <= 0xffffffff, 'must be an integer in [0, 2^32)');
  const logprobs =
    p.logprobs === undefined || p.logprobs === null
      ? undefined
      : int(p, 'logprobs', 0, (v) => v >= 0 && v <= MAX_LOGPROBS, `must be >= 0 and <= ${MAX_LOGPROBS}`);
  const promptLogprobs =
    p.promptLogprobs === undefined || p.promptLogprobs === null
      ? undefined
      : int(p, 'promptLogprobs', 0, (v) => v >= 0 && v <= MAX_LOGPROBS, `must be >= 0 and <= ${MAX_LOGPROBS}`);
  if (promptLogprobs !== undefined && n !== 1)
    throw new SamplingParamsError('promptLogprobs', `needs n = 1, got n = ${n}`);
  const speculative = speculativeParams(p.speculative);
  const guided = p.guided === undefined || p.guided === null ? undefined : checkGuidedSpec(p.guided);
  if (guided && promptLogprobs !== undefined)
    throw new SamplingParamsError('promptLogprobs', 'cannot be combined with guided decoding');
  if (guided && minTokens > 0) throw new SamplingParamsError('minTokens', 'cannot be combined with guided decoding');
  return {
    ...(speculative !== undefined ? { speculative } : {}),
    ...(guided !== undefined ? { guided } : {}),
    temperature,
    topP,
    topK,
    minP,
    maxTokens,
    minTokens,
    n,
    seed,
    logprobs,
    promptLogprobs,
    stop: stopStrings(p.stop),
    stopTokenIds: tokenIds(p.stopTokenIds, ctx.vocabSize),
    ignoreEos: bool(p, 'ignoreEos', false),
    includeStopStrInOutput: bool(p, 'includeStopStrInOutput', false),
    repetitionPenalty: num(p, 'repetitionPenalty', 1, (v) => v > 0, 'must be > 0'),
    presencePenalty: num(p, 'presencePenalty', 0, (v) => v >= -2 && v <= 2, 'must be >= -2 and <= 2'),
    frequencyPenalty: num(p, 'frequencyPenalty', 0, (v) => v >= -2 && v <= 2, 'must be >= -2 and <= 2'),
    logitBias: logitBias(p.logitBias, ctx.vocabSize),
  };
}

/**
 * The checks of resolveSamplingParams that need no model: types, ranges, unknown fields, minTokens <=
 * maxTokens, stop strings, token ids (non-negative integers), logit bias keys and values. For API layers
 * that check a request as it is parsed; the engine checks the rest (context, vocabulary) when it
 * prepares the request. Throws SamplingParamsError.
 */
export function checkSamplingParams(input: unknown): void {
  resolveSamplingParams(input, {
    maxModelLen: Number.POSITIVE_INFINITY,
    vocabSize: Number.POSITIVE_INFINITY,
    promptLen: 0,
  });
}

function logitBias(v: unknown, vocabSize: number): Array<[number, number]> {
  if (v === undefined || v === null) return [];
  if (typeof v !== 'object' || Array.isArray(v) || v instanceof Map) {
    throw new SamplingParamsError('logitBias', 'must be an object from token id to bias');
  }
  const out: Array<[number, number]> = [];
  for (const [key, bias] of Object.entries(v as Record<string, unknown>)) {
    const id = /^(0|[1-9][0-9]*)$/.test(key) ? Number(key) : NaN;
    if (!Number.isSafeInteger(id))
      throw new SamplingParamsError('logitBias', `key ${JSON.stringify(key)} is not a token id`);
    if (id >= vocabSize) {
      throw new SamplingParamsError(
        'logitBias',
        `key ${JSON.stringify(key)} is not a token id in the vocabulary [0, ${vocabSize})`,
      );
    }
    if (typeof bias !== 'number' || !Number.isFinite(bias) || bias < -MAX_LOGIT_BIAS || bias > MAX_LOGIT_BIAS) {
      throw new SamplingParamsError(
        'logitBias',
        `bias of token ${id} must be a number in [-${MAX_LOGIT_BIAS}, ${MAX_LOGIT_BIAS}], got ${describe(bias)}`,
      );
    }
    out.push([id, bias]);
  }
  return out.sort((a, b) => a[0] - b[0]);
}

function num(p: Record<string, unknown>, key: string, dflt: number, ok: (v: number) => boolean, rule: string): number {
  const v = p[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v))
    throw new SamplingParamsError(key, `must be a number, got ${describe(v)}`);
  if (!ok(v)) throw new SamplingParamsError(key, `${rule}, got ${v}`);
  return v;
}

function int(p: Record<string, unknown>, key: string, dflt: number, ok: (v: number) => boolean, rule: string): number {
  const v = p[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new SamplingParamsError(key, `must be an integer, got ${describe(v)}`);
  if (!ok(v)) throw new SamplingParamsError(key, `${rule}, got ${v}`);
  return v;
}

function bool(p: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = p[key];
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'boolean') throw new SamplingParamsError(key, `must be a boolean, got ${describe(v)}`);
  return v;
}

function stopStrings(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string')) {
    throw new SamplingParamsError('stop', 'must be a string or an array of strings');
  }
  if (list.some((s) => s.length === 0)) throw new SamplingParamsError('stop', 'stop strings must not be empty');
  return [...list];
}

function tokenIds(v: unknown, vocabSize: number): number[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new SamplingParamsError('stopTokenIds', 'must be an array of token ids');
  for (const id of v) {
    if (!Number.isInteger(id) || id < 0)
      throw new SamplingParamsError('stopTokenIds', `${describe(id)} is not a token id (a non-negative integer)`);
    if (id >= vocabSize) {
      throw new SamplingParamsError(
        'stopTokenIds',
        `token id ${describe(id)} is outside the vocabulary [0, ${vocabSize})`,
      );
    }
  }
  return [...(v as number[])];
}

function speculativeParams(v: unknown): SpeculativeParams | false | undefined {
  if (v === undefined || v === null || v === false) return v === false ? false : undefined;
  if (typeof v !== 'object' || Array.isArray(v))
    throw new SamplingParamsError('speculative', 'must be an object { k, method } or false');
  const o = v as Record<string, unknown>;
  for (const key of Object.keys(o))
    if (key !== 'k' && key !== 'method') throw new SamplingParamsError(`speculative.${key}`, 'unknown option');
  const out: SpeculativeParams = {};
  if (o.k !== undefined) {
    if (!Number.isInteger(o.k) || (o.k as number) < 0 || (o.k as number) > MAX_SPECULATIVE_K) {
      throw new SamplingParamsError(
        'speculative.k',
        `must be an integer in [0, ${MAX_SPECULATIVE_K}], got ${describe(o.k)}`,
      );
    }
    out.k = o.k as number;
  }
  if (o.method !== undefined) {
    if (o.method !== 'ngram' && o.method !== 'draft')
      throw new SamplingParamsError('speculative.method', `must be 'ngram' or 'draft', got ${describe(o.method)}`);
    out.method = o.method;
  }
  return out;
}

/** A value as error messages show it (long strings cut, objects not dumped). */
function describe(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : String(v);
}
