/**
 * TGI request bodies (`{ inputs, parameters, stream }`) → GenerationSpec. As in TGI, sampling is off
 * (greedy) unless do_sample is set or a sampling parameter (temperature, top_k, top_p) is given.
 */
import type { SamplingParams } from '@flotilla/engine';
import { InvalidParameterError } from '../errors.js';
import type { GenerationSpec, ParamNames } from '../generation.js';
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
const MAX_SEED = 0xffffffff;

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
};

export function parseTgiRequest(body: unknown, limits: ResolvedLimits): TgiRequest {
  const r = BodyReader.of(body);
  const inputs = r.raw('inputs');
  if (typeof inputs !== 'string' || inputs.length === 0)
    throw new InvalidParameterError('inputs', 'must be a non-empty string');
  const stream = r.boolean('stream') ?? false;
  const p = r.object('parameters') ?? BodyReader.of({}, 'parameters', 'parameters.');
  const params: SamplingParams = {};
  const set = <K extends keyof SamplingParams>(k: K, v: SamplingParams[K] | undefined) => {
    if (v !== undefined) params[k] = v;
  };
  const temperature = p.number('temperature', { min: 0, aboveMin: true });
  const topP = p.number('top_p', { min: 0, max: 1, aboveMin: true });
  const topK = p.integer('top_k', { min: 1 });
  const doSample = p.boolean('do_sample') ?? false;
  const sampling = doSample || temperature !== undefined || topP !== undefined || topK !== undefined;
  set('temperature', sampling ? temperature : 0);
  set('topP', topP);
  set('topK', topK);
  set('maxTokens', p.integer('max_new_tokens', { min: 1 }));
  set('repetitionPenalty', p.number('repetition_penalty', { min: 0, aboveMin: true }));
  set('frequencyPenalty', p.number('frequency_penalty', { min: -2, max: 2 }));
  set('stop', p.strings('stop', limits.maxStop));
  const seed = p.integer('seed', { min: 0, max: MAX_SEED });
  set('seed', seed);
  const topNTokens = p.integer('top_n_tokens', { min: 0, max: 20 }) ?? 0;
  params.logprobs = topNTokens;
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
  p.unsupported('grammar');
  p.unsupported('adapter_id');
  p.rejectUnknown();
  r.rejectUnknown();
  return {
    spec: { prompt: { text: inputs }, params, names: NAMES, defaultMaxTokens: TGI_DEFAULT_MAX_NEW_TOKENS },
    details,
    returnFullText,
    topNTokens,
    seed: seed ?? null,
    stream,
    decoderInputDetails,
  };
}
