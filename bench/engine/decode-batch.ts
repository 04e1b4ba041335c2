/**
 * Flat NativeStepBatch arrays for the benchmark's synthetic workloads: B sequences, each with its own
 * contiguous run of KV blocks, either prefilling `n` tokens or decoding one. Greedy, no penalties.
 */
import type { NativeStepBatch } from '../../packages/engine/src/native/native-types.js';

export interface BenchSeq {
  /** Tokens already in the KV cache. */
  computed: number;
  /** First KV block of this sequence; it owns blocksPerSeq blocks from there. */
  firstBlock: number;
}

/** `count` sequences owning blocksPerSeq blocks each, from block `firstBlock` on. */
export function makeSeqs(count: number, blocksPerSeq: number, firstBlock = 0): BenchSeq[] {
  return Array.from({ length: count }, (_, i) => ({ computed: 0, firstBlock: firstBlock + i * blocksPerSeq }));
}

/** One step in which every sequence in `seqs` adds `n` tokens (n = 1: a decode step). */
export function stepBatch(
  seqs: BenchSeq[],
  n: number,
  blockSize: number,
  blocksPerSeq: number,
  vocab: number,
): NativeStepBatch {
  const S = seqs.length,
    T = S * n;
  const perSeq = <A>(C: new (k: number) => A) => new C(S);
  const b: NativeStepBatch = {
    numSeqs: S,
    numTokens: T,
    maxBlocksPerSeq: blocksPerSeq,
    tokenIds: new Int32Array(T),
    positions: new Int32Array(T),
    slotMapping: new Int32Array(T),
    queryStartLoc: new Int32Array(S + 1),
    contextLens: perSeq(Int32Array),
    blockTables: new Int32Array(S * blocksPerSeq),
    sampleMask: new Uint8Array(S).fill(1),
    temperature: perSeq(Float32Array),
    topK: perSeq(Int32Array),
    topP: new Float32Array(S).fill(1),
    minP: perSeq(Float32Array),
    repetitionPenalty: new Float32Array(S).fill(1),
    presencePenalty: perSeq(Float32Array),
    frequencyPenalty: perSeq(Float32Array),
    seeds: perSeq(Uint32Array),
    penaltyTokens: new Int32Array(0),
    penaltyOffsets: new Int32Array(S + 1),
    penaltyPromptLens: perSeq(Int32Array),
    numLogprobs: perSeq(Int32Array),
  };
  seqs.forEach((seq, s) => {
    b.queryStartLoc[s] = s * n;
    for (let i = 0; i < n; i++) {
      const t = s * n + i,
        pos = seq.computed + i;
      b.tokenIds[t] = ((pos * 7919 + s * 104729) % (vocab - 3)) + 3;
      b.positions[t] = pos;
      b.slotMapping[t] = (seq.firstBlock + Math.floor(pos / blockSize)) * blockSize + (pos % blockSize);
    }
    b.contextLens[s] = seq.computed + n;
    for (let k = 0; k < blocksPerSeq; k++) b.blockTables[s * blocksPerSeq + k] = seq.firstBlock + k;
  });
  b.queryStartLoc[S] = T;
  return b;
}
