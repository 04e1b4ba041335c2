/**
 * LLMServer's speculative-decoding options (vLLM's names: speculative_model, num_speculative_tokens,
 * speculative method, prompt_lookup_max/min, speculative_disable_by_batch_size) → the engine's
 * `speculative` option (EngineSpeculativeOptions). Checked when the server is constructed, so that a bad
 * value stops the deployment at once rather than failing the model's load.
 */
import { existsSync } from 'node:fs';
import { MAX_SPECULATIVE_K, type EngineSpeculativeOptions } from '@flotilla/engine';
import { LLMServerConfigError } from './errors.js';
import type { LLMServerOptions } from './llm-server-options.js';

type SpeculativeFields = Pick<
  LLMServerOptions,
  | 'speculativeModel'
  | 'numSpeculativeTokens'
  | 'speculativeMethod'
  | 'promptLookupMax'
  | 'promptLookupMin'
  | 'speculativeDisableByBatchSize'
>;

/** Proposed tokens per step when speculation is on and numSpeculativeTokens is not given. */
export const DEFAULT_NUM_SPECULATIVE_TOKENS = 4;

/**
 * The engine's `speculative` option, or undefined when speculation is off (none of speculativeModel,
 * numSpeculativeTokens, speculativeMethod given). Throws LLMServerConfigError for a bad combination. The
 * engine loads the draft with the model's own load options (device, threads, quantization, KV pool size)
 * and, for a draft without a tokenizer beside it, the model's tokenizer.
 */
export function engineSpeculation(o: SpeculativeFields): EngineSpeculativeOptions | undefined {
  const on =
    o.speculativeModel !== undefined || o.numSpeculativeTokens !== undefined || o.speculativeMethod !== undefined;
  if (!on) {
    for (const key of ['promptLookupMax', 'promptLookupMin', 'speculativeDisableByBatchSize'] as const)
      if (o[key] !== undefined)
        throw new LLMServerConfigError(
          `${key} needs speculation on (speculativeModel, numSpeculativeTokens or speculativeMethod)`,
        );
    return undefined;
  }
  const k = o.numSpeculativeTokens ?? DEFAULT_NUM_SPECULATIVE_TOKENS;
  if (!Number.isInteger(k) || k < 1 || k > MAX_SPECULATIVE_K)
    throw new LLMServerConfigError(`numSpeculativeTokens must be an integer in [1, ${MAX_SPECULATIVE_K}], got ${k}`);
  const method = o.speculativeMethod ?? (o.speculativeModel !== undefined ? 'draft' : 'ngram');
  if (method !== 'draft' && method !== 'ngram')
    throw new LLMServerConfigError(`speculativeMethod must be 'draft' or 'ngram', got ${JSON.stringify(method)}`);
  if (method === 'draft' && o.speculativeModel === undefined)
    throw new LLMServerConfigError("speculativeMethod 'draft' needs speculativeModel (a draft model's path)");
  if (method === 'ngram' && o.speculativeModel !== undefined)
    throw new LLMServerConfigError(
      "speculativeModel is not used with speculativeMethod 'ngram'; give one or the other",
    );
  if (o.speculativeModel !== undefined && !existsSync(o.speculativeModel))
    throw new LLMServerConfigError(`speculativeModel ${o.speculativeModel} does not exist`);
  const maxN = positiveInt(o.promptLookupMax, 'promptLookupMax');
  const minN = positiveInt(o.promptLookupMin, 'promptLookupMin');
  if ((maxN !== undefined || minN !== undefined) && method !== 'ngram')
    throw new LLMServerConfigError("promptLookupMax and promptLookupMin apply to speculativeMethod 'ngram'");
  if (minN !== undefined && maxN !== undefined && minN > maxN)
    throw new LLMServerConfigError(`promptLookupMin (${minN}) must not exceed promptLookupMax (${maxN})`);
  const byBatch = positiveInt(o.speculativeDisableByBatchSize, 'speculativeDisableByBatchSize');
  return {
    k,
    method,
    ...(o.speculativeModel !== undefined ? { draftModel: o.speculativeModel } : {}),
    ...(maxN !== undefined || minN !== undefined
      ? { ngram: { ...(maxN !== undefined ? { maxN } : {}), ...(minN !== undefined ? { minN } : {}) } }
      : {}),
    // vLLM turns speculation off when more than N requests run; the engine's threshold is "at least".
    ...(byBatch !== undefined ? { disableByBatchSize: byBatch + 1 } : {}),
  };
}

function positiveInt(v: number | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < 1) throw new LLMServerConfigError(`${name} must be an integer >= 1, got ${v}`);
  return v;
}

/** One line for the server's log saying how the engine speculates. */
export function speculationBanner(s: EngineSpeculativeOptions): string {
  const how = s.method === 'draft' ? `draft model ${String(s.draftModel)}` : 'n-gram prompt lookup';
  const cut = s.disableByBatchSize !== undefined ? `, off when more than ${s.disableByBatchSize - 1} decodes run` : '';
  return `[flotilla] LLMServer: speculative decoding with ${how}, ${s.k} tokens per step${cut}\n`;
}
