/**
 * The options LLMEngine takes (create, prepare, generate, embed), which of create()'s go to the model
 * loader, and the shape of its stats().
 */
import type { PoolingType } from './embeddings.js';
import type { EngineStats } from './engine-metrics.js';
import type { LoadedModel, LoadModelOptions } from './model-loader/load-model.js';
import type { SpecDecodeStats } from './spec-decode/spec-metrics.js';
import type { EngineSpeculativeOptions } from './spec-decode/speculative-options.js';

export interface LLMEngineOptions extends Omit<LoadModelOptions, 'maxBatchTokens' | 'maxBatchSeqs'> {
  /** A model path (llama2.c .bin, GGUF file, Hugging Face directory), or a model already loaded (not disposed by the engine; one engine at a time may use it). */
  model: string | LoadedModel;
  /** Most tokens in one step; a loaded model must have been loaded with maxBatchTokens at least this. Default 2048. */
  maxNumBatchedTokens?: number;
  /** Most sequences running at once; a loaded model must allow maxBatchSeqs at least this. Default 256. */
  maxNumSeqs?: number;
  /** Split long prompts across steps. Default true. */
  enableChunkedPrefill?: boolean;
  /** Reuse KV blocks of earlier requests with the same prefix. Default true. */
  enablePrefixCaching?: boolean;
  /** Longest prompt + output served, at most the model's maxSeqLen. Default the model's maxSeqLen. */
  maxModelLen?: number;
  /** Jinja chat template overriding the model's. Default: the model's, else DEFAULT_CHAT_TEMPLATE. */
  chatTemplate?: string;
  /** Texts the chat template writes for bos_token / eos_token. Default ''. */
  bosToken?: string;
  eosToken?: string;
  /** Speculative decoding (n-gram lookup or a draft model); requests tune it with SamplingParams.speculative. Default none. */
  speculative?: EngineSpeculativeOptions;
  /**
   * Guided decoding (SamplingParams.guided): XGrammar starts with the engine (a few hundred ms) so that
   * prepare() can compile grammars. false: requests with `guided` are refused. Default true.
   */
  guidedDecoding?: boolean;
  /** How embed() pools hidden states. Default: the model's pooling config (sentence-transformers 1_Pooling), else 'last'. */
  pooling?: PoolingType;
}

/** stats() with the speculative-decoding counters when the engine speculates. */
export type LLMEngineStats = EngineStats & { speculative?: SpecDecodeStats };

export interface PrepareOptions {
  /** maxTokens when the parameters give none, capped by the room the prompt leaves. Default: that room. */
  defaultMaxTokens?: number;
  /** A LoRA adapter loaded with loadAdapter() to run the request with (AdapterNotFoundError otherwise). Default: the base model. */
  adapter?: string;
}

export interface EmbedOptions {
  /** Aborting it rejects the embeddings not yet computed (an AbortError). Default none. */
  signal?: AbortSignal;
}

export interface GenerateOptions {
  /** Id for abort() and in outputs. Default: a fresh 'req-N'. */
  requestId?: string;
  /** Aborting it ends the request (a final output with finishReason 'abort') and frees its blocks. Default none. */
  signal?: AbortSignal;
  /** LoRA adapter, as PrepareOptions.adapter, when generate() is given a prompt (a prepared request carries its own). */
  adapter?: string;
}

/** The options of LLMEngine.create() that loadModel() takes (the batch limits aside: create() passes them as maxBatch*). */
export function loadOptionsOf(options: LLMEngineOptions): LoadModelOptions {
  const {
    model: _model,
    maxNumBatchedTokens: _bt,
    maxNumSeqs: _ns,
    enableChunkedPrefill: _c,
    enablePrefixCaching: _p,
    maxModelLen: _m,
    chatTemplate: _t,
    bosToken: _b,
    eosToken: _e,
    speculative: _s,
    pooling: _pl,
    guidedDecoding: _gd,
    ...loadOptions
  } = options;
  return loadOptions;
}
