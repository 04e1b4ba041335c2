/**
 * TGI request bodies (`{ inputs, parameters, stream }`) → GenerationSpec. As in TGI, sampling is off
 * (greedy) unless do_sample is set or a sampling parameter (temperature, top_k, top_p) is given. The
 * engine's parameters are renamed and checked by the engine's validator (checkParams); TGI's own rules
 * (temperature > 0, top_k >= 1, best_of, details) are checked here.
 */
import { checkGuidedSpec, type GuidedSpec, type SamplingParams } from '@flotilla/engine';
import { InvalidParameterError } from '../errors.js';
import { checkParams, type GenerationSpec, type ParamNames } from '../generation.js';
import type { ResolvedLimits } from '../llm-server-options.js';
import { BodyReader } from '../validate.js';

export interface TgiRequest {
  spec: GenerationSpec;
  /** /generate: include details (tokens, finish reason). Default false. */
  details: boolean;
  /** Prepend the prompt to generated_text. Default false. */
  returnFullText: boolean;
  /** Top alternatives per token (top_n_tokens). Default 0. */
  topNTokens: number;
  /** The request's seed, reported in details (null when sampling without one). */
  seed: number | null;
  /** POST / only: `stream` picks the response kind. */
  stream: boolean;
  /** details.prefill with the input tokens' logprobs (decoder_input_details, with details). Default false. */
  decoderInputDetails: boolean;
}

/** TGI's default max_new_tokens. */
export const TGI_DEFAULT_MAX_NEW_TOKENS = 100;

const NAMES: ParamNames = {
  temperature: 'parameters.temperature',
  topP: 'parameters.top_p',
  topK: 'parameters.top_k',
  maxTokens: 'parameters.max_new_tokens',
  seed: 'parameters.seed',
  stop: 'parameters.stop',
  repetitionPenalty: 'parameters.repetition_penalty',
  frequencyPenalty: 'parameters.frequency_penalty',
  logprobs: 'parameters.top_n_tokens',
  prompt: 'inputs',
  promptLogprobs: 'parameters.decoder_input_details',
  guided: 'parameters.grammar',
};

export function parseTgiRequest(body: unknown, limits: ResolvedLimits): TgiRequest {
  const r = BodyReader.of(body);
  const inputs = r.raw('inputs');
  if (typeof inputs !== 'string' || inputs.length === 0)
    throw new InvalidParameterError('inputs', 'must be a non-empty string');
  const stream = r.boolean('stream') ?? false;
  const p = r.object('parameters') ?? BodyReader.of({}, 'parameters', 'parameters.');
  const params: Record<string, unknown> = {};
  const set = (k: keyof SamplingParams, v: unknown) => {
    if (v !== undefined) params[k] = v;
  };
  // TGI's own ranges: temperature > 0 and top_k >= 1 (the engine also takes 0 for both, as "greedy" / "off").
  const temperature = p.number('temperature', { min: 0, aboveMin: true });
  const topK = p.integer('top_k', { min: 1 });
  const topP = p.raw('top_p');
  const doSample = p.boolean('do_sample') ?? false;
  const sampling = doSample || temperature !== undefined || topP !== undefined || topK !== undefined;
  set('temperature', sampling ? temperature : 0);
  set('topP', topP);
  set('topK', topK);
  set('maxTokens', p.raw('max_new_tokens'));
  set('repetitionPenalty', p.raw('repetition_penalty'));
  set('frequencyPenalty', p.raw('frequency_penalty'));
  set('stop', p.strings('stop', limits.maxStop));
  set('seed', p.raw('seed'));
  set('logprobs', p.raw('top_n_tokens') ?? 0);
  set('guided', readGrammar(p));
  checkParams(params, NAMES);
  const seed = params.seed as number | undefined;
  const topNTokens = params.logprobs as number;
  const bestOf = p.integer('best_of', { min: 1 });
  if (bestOf !== undefined && bestOf > 1)
    throw new InvalidParameterError('parameters.best_of', 'best_of > 1 is not supported');
  const details = p.boolean('details') ?? false;
  const returnFullText = p.boolean('return_full_text') ?? false;
  const decoderInputDetails = (p.boolean('decoder_input_details') ?? false) && details;
  if (decoderInputDetails && stream)
    throw new InvalidParameterError('parameters.decoder_input_details', 'is not supported when streaming tokens');
  if (decoderInputDetails) params.promptLogprobs = 0;
  p.unsupported('truncate');
  p.unsupported('typical_p');
  p.unsupported('watermark', (v) => v === false);
  // TGI's multi-LoRA: the adapter (a name loaded with lora_modules or /v1/load_lora_adapter) to run on.
  const adapterId = p.string('adapter_id');
  p.rejectUnknown();
  r.rejectUnknown();
  return {
    spec: {
      prompt: { text: inputs },
      params: params as SamplingParams,
      names: NAMES,
      defaultMaxTokens: TGI_DEFAULT_MAX_NEW_TOKENS,
      ...(adapterId ? { adapter: adapterId } : {}),
    },
    details,
    returnFullText,
    topNTokens,
    seed: seed ?? null,
    stream,
    decoderInputDetails,
  };
}

/**
 * TGI's grammar parameter: { type: 'json', value: JSON schema (object or text) }, { type: 'regex',
 * value: pattern }, or { type: 'json_object' } (any object) → the engine's GuidedSpec.
 */
function readGrammar(p: BodyReader): GuidedSpec | undefined {
  const name = 'parameters.grammar';
  if (p.raw('grammar') === undefined) return undefined;
  const g = p.object('grammar')!;
  const type = g.string('type');
  const value = g.raw('value');
  g.rejectUnknown();
  const spec =
    type === 'json'
      ? { kind: 'json_schema', schema: value }
      : type === 'regex'
        ? { kind: 'regex', pattern: value }
        : type === 'json_object'
          ? { kind: 'json_object' }
          : undefined;
  if (!spec)
    throw new InvalidParameterError(
      `${name}.type`,
      `must be 'json', 'regex' or 'json_object', got ${JSON.stringify(type) ?? 'nothing'}`,
    );
  try {
    return checkGuidedSpec(spec, name);
  } catch (err) {
    throw new InvalidParameterError(`${name}.value`, (err as { problem?: string }).problem ?? String(err));
  }
}
