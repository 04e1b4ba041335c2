import { describe, expect, it } from 'vitest';
import { ModelRunner } from '../../packages/engine/src/model-runner.js';
import type { NativeStepBatch } from '../../packages/engine/src/native/native-types.js';
import { fakeStep, makeScheduler, makeSeq } from '../helpers/engine-fakes.js';

const noModel = {
  step: async () => {
    throw new Error('not run');
  },
};

describe('ModelRunner', () => {
  it('lays out a mixed prefill + decode step as the native contract asks', () => {
    const s = makeScheduler({ numBlocks: 20, blockSize: 4 });
    const runner = new ModelRunner(noModel, { blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 64 });
    const a = makeSeq([11, 12, 13], { maxTokens: 10, temperature: 0.5, topK: 7 }, { blockSize: 4, seed: 99 });
    s.add(a);
    let out = s.schedule();
    s.update(out, fakeStep(out));
    const b = makeSeq(
      [21, 22, 23, 24, 25, 26],
      { maxTokens: 4, repetitionPenalty: 1.2, logprobs: 3 },
      { blockSize: 4 },
    );
    s.add(b);
    out = s.schedule();
    const batch: NativeStepBatch = runner.prepare(out);
    expect([batch.numSeqs, batch.numTokens]).toEqual([2, 7]);
    expect(Array.from(batch.queryStartLoc.subarray(0, 3))).toEqual([0, 1, 7]);
    expect(Array.from(batch.tokenIds.subarray(0, 7))).toEqual([a.lastTokenId, 21, 22, 23, 24, 25, 26]);
    expect(Array.from(batch.positions.subarray(0, 7))).toEqual([3, 0, 1, 2, 3, 4, 5]);
    const slot = (seq: typeof a, p: number) => seq.blockTable[p >> 2]! * 4 + (p % 4);
    expect(batch.slotMapping[0]).toBe(slot(a, 3));
    expect(batch.slotMapping[6]).toBe(slot(b, 5));
    expect(Array.from(batch.contextLens.subarray(0, 2))).toEqual([4, 6]);
    expect(Array.from(batch.sampleMask.subarray(0, 2))).toEqual([1, 1]);
    expect(batch.blockTables[batch.maxBlocksPerSeq + 1]).toBe(b.blockTable[1]);
    expect([batch.temperature[0], batch.topK[0], batch.seeds[0], batch.numLogprobs[1]]).toEqual([0.5, 7, 99, 3]);
    // penalties: only b's tokens, prompt first
    expect(Array.from(batch.penaltyOffsets.subarray(0, 3))).toEqual([0, 0, 6]);
    expect(Array.from(batch.penaltyTokens.subarray(0, 6))).toEqual([21, 22, 23, 24, 25, 26]);
    expect(batch.penaltyPromptLens[1]).toBe(6);
  });

  it('rewrites a row only where it changed: appended blocks, or a new occupant', () => {
    const s = makeScheduler({ numBlocks: 20, blockSize: 4 });
    const runner = new ModelRunner(noModel, { blockSize: 4, maxNumBatchedTokens: 64, maxNumSeqs: 4, maxModelLen: 64 });
    const a = makeSeq([1, 2, 3], { maxTokens: 12 }, { blockSize: 4 });
    s.add(a);
    let out = s.schedule();
    runner.prepare(out);
    s.update(out, fakeStep(out));
    runner.batch.blockTables[0] = -7; // a stale entry the runner believes current stays untouched...
    runner.batch.temperature[0] = 42;
    out = s.schedule(); // position 3: still block 0
    runner.prepare(out);
    expect(runner.batch.blockTables[0]).toBe(-7);
    expect(runner.batch.temperature[0]).toBe(42);
    s.update(out, fakeStep(out));
    out = s.schedule(); // position 4: block 1 appended
    runner.prepare(out);
    expect(runner.batch.blockTables[1]).toBe(a.blockTable[1]);
    const b = makeSeq([5, 6], { maxTokens: 2 }, { blockSize: 4 });
    s.blockManager.allocate(b, 2);
    runner.prepare({ step: 99, seqs: [b], numNewTokens: [2], numBatchedTokens: 2, preempted: [] });
    expect(runner.batch.blockTables[0]).toBe(b.blockTable[0]); // new occupant: whole row rewritten
    expect(runner.batch.temperature[0]).toBe(1);
  });
});
