/**
 * The flat NativeStepBatch of one step for the KV-quantization bench: each sequence contributes its
 * next `n` tokens, greedy (temperature 0), no penalties. Sequences own fixed block lists.
 */
import type { NativeStepBatch } from '../../packages/engine/src/native/native-types.js';

export interface BenchSeq {
  tokens: number[];
  /** Tokens already in the KV cache. */
  computed: number;
  blocks: number[];
}

export function stepBatch(blockSize: number, work: { seq: BenchSeq; n: number }[]): NativeStepBatch {
  const S = work.length;
  const T = work.reduce((a, w) => a + w.n, 0);
  const maxBlocksPerSeq = Math.max(...work.map((w) => w.seq.blocks.length));
  const f32 = (v: number) => new Float32Array(S).fill(v);
  const b: NativeStepBatch = {
    numSeqs: S,
    numTokens: T,
    maxBlocksPerSeq,
    tokenIds: new Int32Array(T),
    positions: new Int32Array(T),
    slotMapping: new Int32Array(T),
    queryStartLoc: new Int32Array(S + 1),
    contextLens: new Int32Array(S),
    blockTables: new Int32Array(S * maxBlocksPerSeq),
    sampleMask: new Uint8Array(S).fill(1),
    temperature: f32(0),
    topK: new Int32Array(S),
    topP: f32(1),
    minP: f32(0),
    repetitionPenalty: f32(1),
    presencePenalty: f32(0),
    frequencyPenalty: f32(0),
    seeds: new Uint32Array(S),
    penaltyTokens: new Int32Array(0),
    penaltyOffsets: new Int32Array(S + 1),
    penaltyPromptLens: new Int32Array(S),
    numLogprobs: new Int32Array(S),
  };
  let t = 0;
  work.forEach(({ seq, n }, s) => {
    b.queryStartLoc[s] = t;
    for (let i = 0; i < n; i++, t++) {
      const pos = seq.computed + i;
      b.tokenIds[t] = seq.tokens[pos]!;
      b.positions[t] = pos;
      b.slotMapping[t] = seq.blocks[Math.floor(pos / blockSize)]! * blockSize + (pos % blockSize);
    }
    b.queryStartLoc[s + 1] = t;
    b.contextLens[s] = seq.computed + n;
    b.blockTables.set(seq.blocks, s * maxBlocksPerSeq);
  });
  return b;
}
