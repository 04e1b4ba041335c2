/**
 * What a prefill engine hands a decode engine (LLMEngine.prefill → LLMEngine.generateFromHandoff):
 * plain data and one Uint8Array, so it crosses threads, processes and gRPC as it is. Everything a
 * decode engine needs to continue exactly as one engine would: the prompt's ids, the resolved
 * parameters, the sample's seed (every draw is u(seed, position), so the seed is the whole sampling
 * state), the first sampled token, and the prompt's K/V.
 */
import type { RequestOutput } from '../request-output.js';
import type { ResolvedSamplingParams } from '../sampling-params.js';
import type { FinishReason, Sequence } from '../sequence.js';

export interface KvHandoff {
  requestId: string;
  promptTokenIds: number[];
  params: ResolvedSamplingParams;
  /** The sample's seed (params.seed, or the one the prefill engine drew). */
  seed: number;
  /** The first sampled token: generate()'s first output, as the prefill engine made it (send it as the time to first token). */
  firstOutput: RequestOutput;
  firstTokenId: number;
  /**
   * Set when the first token already ended the request (a stop token or string, maxTokens 1): there
   * is nothing to continue and `kv` is null.
   */
  finishReason: FinishReason | null;
  /** The prompt's K/V (kv-payload.ts): promptTokenIds.length tokens. Null when finished. */
  kv: Uint8Array | null;
}

export interface PrefillOptions {
  /** Id for abort() while it runs, and in the handoff. Default: a fresh 'req-N'. */
  requestId?: string;
  /** Aborting it rejects prefill() with PrefillAbortedError and frees its blocks. */
  signal?: AbortSignal;
}

export interface HandoffOptions {
  /** Id on this engine. Default: the handoff's requestId. */
  requestId?: string;
  /** Aborting it ends the request (finishReason 'abort') and frees its blocks, imported or not. */
  signal?: AbortSignal;
  /** Offer the imported full blocks to this engine's prefix cache (when it caches). Default true. */
  registerPrefix?: boolean;
}

/** A prefill() in flight: settled once, by the export, a first token that finished it, or an abort. */
export interface PrefillWaiter {
  resolve: (handoff: KvHandoff) => void;
  reject: (err: unknown) => void;
  /** The first output, kept while the export runs. */
  firstOutput: RequestOutput | null;
  firstTokenId: number;
}

/** The handoff of a prefilled sequence: its prompt, resolved parameters, seed and first output (finished when `finishReason`). */
export function handoffOf(
  requestId: string,
  seq: Sequence,
  firstOutput: RequestOutput,
  firstTokenId: number,
  finishReason: KvHandoff['finishReason'],
  kv: Uint8Array | null,
): KvHandoff {
  return {
    requestId,
    promptTokenIds: Array.from(seq.tokenIds.subarray(0, seq.promptLen)),
    params: seq.params,
    seed: seq.seed,
    firstOutput: finishReason
      ? { ...firstOutput, finished: true, finishReason, stopReason: seq.stopReason }
      : firstOutput,
    firstTokenId,
    finishReason,
    kv,
  };
}
