/**
 * One sequence (one sample of one request) as counters. Everything the scheduler decides follows from
 * `numComputedTokens` catching up to `numTokens`: a prefill is a sequence far behind, a chunked prefill
 * one that catches up over several steps, a prefix-cache hit one that starts ahead, a preempted one
 * that fell back to zero, a decode one token behind (and a speculative verify, later, 1 + k behind).
 */
import type { GuidedMatcher } from './guided/guided-matcher.js';
import type { ResolvedSamplingParams } from './sampling-params.js';

export type SequenceStatus = 'waiting' | 'running' | 'preempted' | 'finished';
export type FinishReason = 'stop' | 'length' | 'abort';

export interface SequenceInit {
  seqId: number;
  requestId: string;
  /** Which of the request's n samples this is. */
  index: number;
  promptTokenIds: ArrayLike<number>;
  params: ResolvedSamplingParams;
  /** Seed of this sample's draws (uint32). */
  seed: number;
  /** Token ids that end this sequence (the user's plus, unless ignoreEos, the model's). */
  stopTokenIds: readonly number[];
  blockSize: number;
  /** Sample 0 of the same request: this one waits for its prompt blocks and shares them. */
  parent?: Sequence | null;
  /** When the request arrived, in ms (any clock; the engine uses performance.now()). */
  arrivalTime?: number;
}

export class Sequence {
  readonly seqId: number;
  readonly requestId: string;
  readonly index: number;
  readonly params: ResolvedSamplingParams;
  readonly seed: number;
  readonly stopTokenIds: readonly number[];
  readonly parent: Sequence | null;
  readonly arrivalTime: number;
  readonly promptLen: number;
  /** (promptLen + maxTokens) prompt then output tokens; the first numTokens are valid. */
  readonly tokenIds: Int32Array;
  numTokens: number;
  /** Tokens whose K/V are in this sequence's blocks. */
  numComputedTokens = 0;
  /** Tokens found in the prefix cache (or shared from the parent) at the latest admission. */
  numCachedTokens = 0;
  status: SequenceStatus = 'waiting';
  finishReason: FinishReason | null = null;
  /** The stop token id or stop string that finished it, if any. */
  stopReason: number | string | null = null;
  numPreemptions = 0;

  /** (maxBlocks) KV block ids; the first numBlocks are owned (one reference each). */
  readonly blockTable: Int32Array;
  numBlocks = 0;
  /** (maxBlocks) chained hashes of full blocks; tokens never change, so they stay valid across preemption. */
  readonly blockHashes: Float64Array;
  numHashedBlocks = 0;
  /** Full blocks already offered to the prefix cache since the latest admission. */
  numRegisteredBlocks = 0;
  /** The scheduler step that last scheduled it, so a step never schedules it twice. */
  scheduledStep = -1;
  /**
   * Prompt logprobs asked for and not yet computed: the prompt is then admitted whole, without prefix
   * hits, and its step returns logits for every prompt row (prompt-logprobs.ts).
   */
  promptLogprobsPending: boolean;
  /** Grammar state of a guided sequence (params.guided): advanced by each kept token, freed when it ends. */
  guided: GuidedMatcher | null = null;
  /** LoRA slot its rows run with (−1: the base model), from its request's adapter lease. */
  loraSlot = -1;
  /** Root of its prefix-cache hash chain: 0 for the base, one per adapter registration, so no KV is shared across adapters. */
  cacheRoot = 0;

  constructor(init: SequenceInit) {
    this.seqId = init.seqId;
    this.requestId = init.requestId;
    this.index = init.index;
    this.params = init.params;
    this.seed = init.seed >>> 0;
    this.stopTokenIds = init.stopTokenIds;
    this.parent = init.parent ?? null;
    this.arrivalTime = init.arrivalTime ?? 0;
    this.promptLen = init.promptTokenIds.length;
    const capacity = this.promptLen + init.params.maxTokens;
    this.tokenIds = new Int32Array(capacity);
    for (let i = 0; i < this.promptLen; i++) this.tokenIds[i] = init.promptTokenIds[i]!;
    this.numTokens = this.promptLen;
    this.promptLogprobsPending = init.params.promptLogprobs !== undefined;
    const maxBlocks = Math.ceil(capacity / init.blockSize);
    this.blockTable = new Int32Array(maxBlocks);
    this.blockHashes = new Float64Array(maxBlocks);
  }

  get numOutputTokens(): number {
    return this.numTokens - this.promptLen;
  }

  get isFinished(): boolean {
    return this.status === 'finished';
  }

  /** True while the prompt (or a recompute after preemption) is not yet in the KV cache. */
  get isPrefill(): boolean {
    return this.numTokens - this.numComputedTokens > 1;
  }

  get lastTokenId(): number {
    return this.tokenIds[this.numTokens - 1]!;
  }

  appendToken(tokenId: number): void {
    if (this.numTokens >= this.tokenIds.length) throw new Error(`assertion: sequence ${this.seqId} is full`);
    this.tokenIds[this.numTokens++] = tokenId;
  }

  /** Drops tokens past the first `numTokens` (rejected speculative proposals). */
  truncate(numTokens: number): void {
    if (numTokens < this.numComputedTokens || numTokens > this.numTokens) {
      throw new Error(
        `assertion: truncating sequence ${this.seqId} to ${numTokens} (computed ${this.numComputedTokens}, tokens ${this.numTokens})`,
      );
    }
    this.numTokens = numTokens;
  }

  /** Output token ids from `from` (an output index) to the end, as a fresh array. */
  outputTokenIds(from = 0): number[] {
    return Array.from(this.tokenIds.subarray(this.promptLen + from, this.numTokens));
  }
}

/**
 * Token-level finish check after `tokenId` was appended: a stop token (once minTokens are out) or
 * the length limit. Stop strings need text and are checked by the engine.
 */
export function checkTokenStop(seq: Sequence, tokenId: number, maxModelLen: number): FinishReason | null {
  const out = seq.numOutputTokens;
  if (out >= seq.params.minTokens && seq.stopTokenIds.includes(tokenId)) {
    seq.stopReason = tokenId;
    return 'stop';
  }
  if (out >= seq.params.maxTokens || seq.numTokens >= maxModelLen) return 'length';
  return null;
}
