/**
 * Text Generation Inference's generation parameters on POST /v1/completions. Hugging Face's
 * InferenceClient (`textGeneration` / `textGenerationStream` with `endpointUrl`) posts there with TGI's
 * `parameters` flattened into the body (max_new_tokens renamed max_tokens), so TGI's names must not be
 * refused as unknown. TGI's own /v1/completions takes them and answers in OpenAI's shape; so does this
 * server:
 *
 *  - details, decoder_input_details, top_n_tokens: checked and ignored (that answer has no TGI details);
 *  - return_full_text: the prompt before the completion, i.e. OpenAI's echo (when echo is not given);
 *  - do_sample: false means greedy (temperature 0) unless a temperature is given; true changes nothing;
 *  - watermark false, typical_p 1, truncate and adapter_id null: accepted; any other value is refused
 *    (this server cannot honour it) rather than silently ignored.
 *
 * TGI's other parameters (temperature, top_k, top_p, seed, stop, best_of, repetition_penalty,
 * frequency_penalty) share OpenAI's or vLLM's names and meanings and are read as those.
 */
import type { SamplingParams } from '@flotilla/engine';
import type { BodyReader } from '../validate.js';

export interface TgiCompletionParams {
  /** return_full_text, when given: the default for echo. */
  returnFullText: boolean | undefined;
}

/** Reads TGI's parameters from a /v1/completions body; call after the sampling parameters were read into `params`. */
export function readTgiCompletionParams(r: BodyReader, params: SamplingParams): TgiCompletionParams {
  r.boolean('details');
  r.boolean('decoder_input_details');
  r.integer('top_n_tokens', { min: 0 });
  const doSample = r.boolean('do_sample');
  if (doSample === false && params.temperature === undefined) params.temperature = 0;
  r.unsupported('watermark', (v) => v === false);
  r.unsupported('typical_p', (v) => v === 1);
  r.unsupported('truncate');
  r.unsupported('adapter_id');
  return { returnFullText: r.boolean('return_full_text') };
}
