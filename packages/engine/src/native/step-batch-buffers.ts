/**
 * The preallocated arrays of one NativeStepBatch, sized once for an engine's limits and refilled each
 * step (the model runner's generation steps and the embedding queue's steps share this shape).
 */
import type { NativeStepBatch } from './native-types.js';

export interface StepBatchLimits {
  maxNumBatchedTokens: number;
  maxNumSeqs: number;
  maxModelLen: number;
  blockSize: number;
}

export function allocateStepBatch(limits: StepBatchLimits): NativeStepBatch {
  const T = limits.maxNumBatchedTokens;
  const S = limits.maxNumSeqs;
  const maxBlocksPerSeq = Math.ceil(limits.maxModelLen / limits.blockSize);
  return {
    numSeqs: 0,
    numTokens: 0,
    maxBlocksPerSeq,
    tokenIds: new Int32Array(T),
    positions: new Int32Array(T),
    slotMapping: new Int32Array(T),
    queryStartLoc: new Int32Array(S + 1),
    contextLens: new Int32Array(S),
    blockTables: new Int32Array(S * maxBlocksPerSeq),
    sampleMask: new Uint8Array(S),
    temperature: new Float32Array(S),
    topK: new Int32Array(S),
    topP: new Float32Array(S),
    minP: new Float32Array(S),
    repetitionPenalty: new Float32Array(S),
    presencePenalty: new Float32Array(S),
    frequencyPenalty: new Float32Array(S),
    seeds: new Uint32Array(S),
    numLogprobs: new Int32Array(S),
    penaltyTokens: new Int32Array(0),
    penaltyOffsets: new Int32Array(S + 1),
    penaltyPromptLens: new Int32Array(S),
  };
}
