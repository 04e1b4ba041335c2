/**
 * What crosses between PdRouter, PrefillServer and DecodeServer (plain data: structured clone between
 * threads, the IPC codec to processes, gRPC to remote nodes).
 */
import type { KvHandoff, SamplingParams, TokenLogprob } from '@flotilla/engine';
import type { KvReport } from './decode-choice.js';

export type { KvReport };

/** One request as both sides run it: the prompt already tokenized and checked, the seed fixed. */
export interface PdRequest {
  requestId: string;
  tokenIds: number[];
  /** maxTokens resolved and seed set by the router, so that prefill, decode and a fallback draw alike. */
  params: SamplingParams & { maxTokens: number; seed: number };
  /** Put `tokens` (bytes, special flag) on the deltas, for a front without a tokenizer. */
  tokenInfo?: boolean;
}

/** One output of one sample, as LLMEngine's RequestOutput without what the router rebuilds. */
export interface PdDelta {
  index: number;
  text: string;
  tokenIds: number[];
  finished: boolean;
  finishReason: 'stop' | 'length' | 'abort' | null;
  stopReason: number | string | null;
  logprobs?: TokenLogprob[];
  usage: { promptTokens: number; completionTokens: number };
  tokens?: Array<{ id: number; bytes: number[]; special: boolean }>;
}

/** PrefillServer.prefill's answer: the first token's output and the engine's handoff (its `kv` null when it finished). */
export interface PrefillHandoff {
  first: PdDelta;
  /** What DecodeServer.decode continues from: prompt ids, resolved parameters, seed, first token, the prompt's KV payload. */
  handoff: KvHandoff;
  /** Milliseconds on the prefill replica: queue, the prompt's forward pass and the export. */
  prefillMs: number;
  report: KvReport;
}

/** What PrefillServer.prefillStream yields: the first token's output, then the rest of the handoff. */
export type PrefillItem = { first: PdDelta } | Omit<PrefillHandoff, 'first'>;

/** What DecodeServer.decode and generateLocal stream: a KV report (after import and at the end) or an output. */
export type DecodeItem = { report: KvReport } | { delta: PdDelta };
