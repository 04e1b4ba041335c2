/**
 * The engine-level `speculative` option and how it turns into a SpecDecoder (loading the draft
 * model when given a path, with the target's load options).
 */
import type { LoadedModel, LoadModelOptions } from '../model-loader/load-model.js';
import { MAX_SPECULATIVE_K } from '../sampling-params.js';
import { DraftProposer } from './draft-proposer.js';
import { SpeculativeConfigError } from './errors.js';
import type { NgramOptions } from './ngram-proposer.js';
import { SpecDecoder, type SpeculativeMethod } from './spec-decoder.js';

export interface EngineSpeculativeOptions {
  /** Proposed tokens per step for requests that do not set speculative.k; 0 = only requests that ask speculate. Default 4. */
  k?: number;
  /** Method for requests that do not name one. Default 'draft' when draftModel is given, else 'ngram'. */
  method?: SpeculativeMethod;
  /** Draft model (a path, or a model already loaded, not disposed by the engine); must share the target's tokenizer. Default none. */
  draftModel?: string | LoadedModel;
  /** Tokenizer file for a draft checkpoint that has none beside it (llama2.c .bin). Default: the target's tokenizerPath. */
  draftTokenizerPath?: string;
  /** N-gram lookup bounds. Default { maxN: 4, minN: 1 }. */
  ngram?: NgramOptions;
  /**
   * Steps running at least this many decodes do not speculate (vLLM's speculative_disable_by_batch_size):
   * a large batch already reads each weight once for many tokens, so proposals cost more than they
   * save. Default: never disabled.
   */
  disableByBatchSize?: number;
}

export interface SpecDecoderSetup {
  decoder: SpecDecoder;
  /** The draft model, when the engine loaded it (disposed with the engine). */
  ownedDraft: LoadedModel | null;
}

export async function createSpecDecoder(
  opts: EngineSpeculativeOptions,
  target: LoadedModel,
  sizes: { maxNumBatchedTokens: number; maxNumSeqs: number; maxModelLen: number },
  loadOptions: LoadModelOptions,
): Promise<SpecDecoderSetup> {
  const k = opts.k ?? 4;
  if (!Number.isInteger(k) || k < 0 || k > MAX_SPECULATIVE_K)
    throw new SpeculativeConfigError(`speculative.k must be an integer in [0, ${MAX_SPECULATIVE_K}], got ${k}`);
  const disableByBatchSize = opts.disableByBatchSize ?? Infinity;
  if (!(disableByBatchSize >= 1))
    throw new SpeculativeConfigError(
      `speculative.disableByBatchSize must be at least 1, got ${opts.disableByBatchSize}`,
    );
  let ownedDraft: LoadedModel | null = null;
  let draft: LoadedModel | null = null;
  if (opts.draftModel !== undefined) {
    if (typeof opts.draftModel === 'string') {
      const { loadModel } = await import('../model-loader/load-model.js');
      // the draft reads its own quantization_config: the target's `quantization` does not bind it
      const { tokenizerPath, quantization: _targetQuantization, ...rest } = loadOptions;
      const tok = opts.draftTokenizerPath ?? tokenizerPath;
      draft = ownedDraft = await loadModel(opts.draftModel, {
        ...rest,
        ...(tok !== undefined ? { tokenizerPath: tok } : {}),
        maxBatchTokens: sizes.maxNumBatchedTokens,
        maxBatchSeqs: sizes.maxNumSeqs,
      });
    } else {
      draft = opts.draftModel;
    }
  }
  try {
    if (draft && draft.model.config.vocabSize !== target.model.config.vocabSize) {
      throw new SpeculativeConfigError(
        `the draft model's vocabulary (${draft.model.config.vocabSize}) differs from the target's (${target.model.config.vocabSize})`,
        { draftVocab: draft.model.config.vocabSize, targetVocab: target.model.config.vocabSize },
      );
    }
    const method = opts.method ?? (draft ? 'draft' : 'ngram');
    if (method === 'draft' && !draft)
      throw new SpeculativeConfigError("speculative.method 'draft' needs speculative.draftModel");
    const decoder = new SpecDecoder({
      k,
      method,
      ngram: opts.ngram ?? {},
      maxNumBatchedTokens: sizes.maxNumBatchedTokens,
      maxModelLen: sizes.maxModelLen,
      disableByBatchSize,
      draft: draft ? new DraftProposer(draft.model, sizes) : null,
    });
    return { decoder, ownedDraft };
  } catch (err) {
    ownedDraft?.dispose();
    throw err;
  }
}
