/**
 * step(batch, out): the native step writes its results straight into the caller's typed arrays
 * (ModelRunner's preallocated output) and resolves to views of them, with the same values as a step
 * that allocates its result; a buffer without room, of the wrong type, or not an object is E_BATCH.
 * ModelRunner.execute() hands the step its preallocated output.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { BlockManager } from '../../packages/engine/src/block-manager.js';
import { BlockPool } from '../../packages/engine/src/block-pool.js';
import { ModelRunner } from '../../packages/engine/src/model-runner.js';
import type { NativeModel, NativeStepOutput } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { resolveSamplingParams } from '../../packages/engine/src/sampling-params.js';
import { Sequence } from '../../packages/engine/src/sequence.js';
import { describeWithModels, models } from '../helpers/models.js';
import { Blocks, buildBatch, llama2cManifest, Seq } from './native-harness.js';

function outputs(S: number, width = 20): NativeStepOutput {
  return {
    tokens: new Int32Array(S).fill(77),
    logprobs: new Float32Array(S).fill(77),
    topIds: new Int32Array(S * width).fill(77),
    topLogprobs: new Float32Array(S * width).fill(77),
  };
}

describeWithModels('native step into caller buffers: stories260K', () => {
  let model: NativeModel;
  beforeAll(async () => {
    model = await loadNative().loadModel({
      ...llama2cManifest(models.stories260K),
      numBlocks: 256,
      maxBatchTokens: 256,
      maxBatchSeqs: 8,
    });
  });
  afterAll(() => model?.dispose());

  const batch = () => {
    const seqs = [
      new Seq([1, 400, 30, 11], { numLogprobs: 3 }),
      new Seq([1, 97, 5], { temperature: 0.9, seed: 4, topK: 20 }),
      new Seq([1, 20, 21, 22, 23, 24], { numLogprobs: 5, repetitionPenalty: 1.2 }),
    ];
    // the third is a prefill chunk that does not sample
    return buildBatch(model, new Blocks(model), [
      { seq: seqs[0]!, n: 4 },
      { seq: seqs[1]!, n: 3 },
      { seq: seqs[2]!, n: 4 },
    ]);
  };

  it('equals the allocating step and returns views of the buffers', async () => {
    const fresh = await model.step(batch());
    const out = outputs(8);
    const into = await model.step(batch(), out);
    expect(into.tokens.buffer).toBe(out.tokens.buffer);
    expect(into.logprobs.buffer).toBe(out.logprobs.buffer);
    expect(into.topIds.buffer).toBe(out.topIds.buffer);
    expect(into.topLogprobs.buffer).toBe(out.topLogprobs.buffer);
    // topK: the widest of the sampling sequences (the chunk's 5 does not count)
    expect(into.topK).toBe(3);
    expect(into.tokens.length).toBe(3);
    expect(into.topIds.length).toBe(9);
    expect(fresh.topK).toBe(3);
    expect(Array.from(into.tokens)).toEqual(Array.from(fresh.tokens));
    expect(Array.from(into.logprobs)).toEqual(Array.from(fresh.logprobs));
    expect(Array.from(into.topIds)).toEqual(Array.from(fresh.topIds));
    expect(Array.from(into.topLogprobs)).toEqual(Array.from(fresh.topLogprobs));
    expect(into.tokens[2]).toBe(-1); // the chunk sampled nothing
    expect(out.tokens[3]).toBe(77); // past the step: untouched
    expect(out.topIds[9]).toBe(77);
  });

  it('returns the arrays themselves when they are exactly the step’s size', async () => {
    const out = outputs(3, 3);
    const into = await model.step(batch(), out);
    expect(into.tokens).toBe(out.tokens);
    expect(into.topLogprobs).toBe(out.topLogprobs);
  });

  it('rejects buffers without room, of the wrong type, or not an object with E_BATCH', async () => {
    const bad: unknown[] = [
      { ...outputs(8), tokens: new Int32Array(2) },
      { ...outputs(8), topLogprobs: new Float32Array(8) },
      { ...outputs(8), logprobs: new Float64Array(8) },
      { ...outputs(8), topIds: undefined },
      7,
    ];
    for (const out of bad) {
      await expect(model.step(batch(), out as NativeStepOutput)).rejects.toMatchObject({ code: 'E_BATCH' });
    }
    // null or undefined: no buffers, an allocating step
    await expect(model.step(batch(), null as unknown as NativeStepOutput)).resolves.toMatchObject({ topK: 3 });
  });

  it('ModelRunner.execute() hands the step its preallocated output and resolves to views of it', async () => {
    const bm = new BlockManager(new BlockPool(model.numBlocks, model.blockSize), false);
    const runner = new ModelRunner(model, {
      blockSize: model.blockSize,
      maxNumBatchedTokens: 64,
      maxNumSeqs: 4,
      maxModelLen: 128,
    });
    const prompts = [
      [1, 400, 30, 11],
      [1, 97, 5],
    ];
    const seqs = prompts.map((prompt, i) => {
      const params = resolveSamplingParams(
        { temperature: 0, maxTokens: 8, logprobs: 2 },
        { maxModelLen: 128, vocabSize: model.config.vocabSize, promptLen: prompt.length },
      );
      const seq = new Sequence({
        seqId: i,
        requestId: `r${i}`,
        index: 0,
        promptTokenIds: prompt,
        params,
        seed: 0,
        stopTokenIds: [],
        blockSize: model.blockSize,
      });
      seq.status = 'running';
      expect(bm.allocate(seq, seq.numTokens)).toBe(true);
      return seq;
    });
    const out = { step: 1, seqs, numNewTokens: [4, 3], numBatchedTokens: 7, preempted: [] };
    const r = await runner.execute(out);
    expect(r.tokens.buffer).toBe(runner.output.tokens.buffer);
    expect(r.logprobs.buffer).toBe(runner.output.logprobs.buffer);
    expect(r.topIds.buffer).toBe(runner.output.topIds.buffer);
    expect(r.topLogprobs.buffer).toBe(runner.output.topLogprobs.buffer);
    const fresh = await model.step(runner.prepare(out));
    expect(r.topK).toBe(2);
    expect(Array.from(r.tokens)).toEqual(Array.from(fresh.tokens));
    expect(Array.from(r.topIds)).toEqual(Array.from(fresh.topIds));
    expect(Array.from(r.topLogprobs)).toEqual(Array.from(fresh.topLogprobs));
    for (const seq of seqs) bm.free(seq);
  });
});
