/**
 * What DraftModel and TargetModel share: loading one model for per-request speculative sessions, and
 * the wire shapes of their calls (plain arrays and objects, so they cross thread, process and node
 * boundaries unchanged).
 */
import {
  loadModel,
  type ChatMessage,
  type NativeWeightFormat,
  type LoadedModel,
  type ResolvedSamplingParams,
  type SamplingParams,
} from '@flotilla/engine';
import { LLMServerConfigError } from './errors.js';

export interface SpecModelOptions {
  /** Model path (llama2.c .bin, GGUF, Hugging Face directory). Required. */
  model: string;
  /** Tokenizer file for checkpoints without one beside them. Default: found beside the model. */
  tokenizer?: string;
  /** CPU threads of the native backend. Default: the cores this process may use. */
  numThreads?: number;
  /** 'cpu', 'cuda' or 'auto'. Default 'auto'. */
  device?: 'auto' | 'cpu' | 'cuda';
  /** Most tokens one forward carries (the longest prompt prefilled at once). Default 2048. */
  maxNumBatchedTokens?: number;
  /** How the native side holds the weights (e.g. 'int8' for a draft). Default: as the file stores them. */
  weightFormat?: NativeWeightFormat;
}

/** One round's request to either side: the request's whole token ids so far. */
export interface SpecCall {
  requestId: string;
  tokenIds: number[];
  params: ResolvedSamplingParams;
  seed: number;
}

export function loadSpecModel(opts: SpecModelOptions): Promise<LoadedModel> {
  if (!opts || typeof opts.model !== 'string')
    throw new LLMServerConfigError('a speculative model deployment needs options.model (a path)');
  return loadModel(opts.model, {
    ...(opts.tokenizer !== undefined ? { tokenizerPath: opts.tokenizer } : {}),
    ...(opts.numThreads !== undefined ? { numThreads: opts.numThreads } : {}),
    ...(opts.device !== undefined ? { device: opts.device } : {}),
    ...(opts.weightFormat !== undefined ? { weightFormat: opts.weightFormat } : {}),
    maxBatchTokens: opts.maxNumBatchedTokens ?? 2048,
    maxBatchSeqs: 1,
  });
}

/** A SpeculativePipeline request (speculative.ts). */
export interface SpeculativeRequest {
  /** Text, chat messages (the target's chat template is applied), or token ids. */
  prompt: string | { messages: ChatMessage[] } | { tokenIds: number[] };
  /** Sampling parameters (temperature, topK, topP, minP, maxTokens, seed, penalties, stopTokenIds, ignoreEos). */
  params?: SamplingParams;
}

/** One streamed chunk: the tokens one round kept and their text. */
export interface SpeculativeChunk {
  tokenIds: number[];
  text: string;
  /** Of tokenIds, how many were the draft's accepted proposals. */
  accepted: number;
  finished: boolean;
  finishReason: 'stop' | 'length' | null;
  /** The prompt's length in tokens (the same on every chunk of a request). */
  promptTokens: number;
  /** Where the round's time went (milliseconds). */
  timing: RoundTiming;
}

/**
 * One round's time: `roundMs` is the pipeline's wall time from sending the draft call to receiving the
 * verification; `draftMs` and `verifyMs` are measured inside the draft and target replicas (their
 * method's time). What is left, roundMs − draftMs − verifyMs, is the crossings: messaging both ways
 * (serialization, sockets or ports, event-loop waits) and the pipeline's own work between the calls.
 */
export interface RoundTiming {
  roundMs: number;
  /** When `ahead`: the time the round waited for the call made ahead (its draft work ran during the last verification). */
  draftMs: number;
  verifyMs: number;
  /** The proposals came from a draft call made during the last round's verification (spec-lookahead.ts). */
  ahead: boolean;
}
