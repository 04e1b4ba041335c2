/**
 * The fused calls speculative decoding leans on: draft(batch, k) gives, per sequence, the tokens of
 * k greedy step() calls (catch-up chunk first, then one decode per token), and argmax() the first
 * maximum of each row logits() returns.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { argmax } from '../../packages/engine/src/sample/sampler.js';
import { describeWithModels, models } from '../helpers/models.js';
import { Blocks, buildBatch, generate, goldens, llama2cManifest, Seq } from './native-harness.js';

const K = 5;

function prompts(): number[][] {
  const story = goldens('stories260K').greedy_from_bos_48;
  return [story.slice(0, 9), [1, 300, 41, 77], story.slice(0, 23), [1]];
}

describeWithModels('native fused draft and argmax: stories260K', () => {
  let model: NativeModel;
  beforeAll(async () => {
    model = await loadNative().loadModel({
      ...llama2cManifest(models.stories260K),
      numBlocks: 256,
      maxBatchTokens: 256,
      maxBatchSeqs: 16,
    });
  });
  afterAll(() => model?.dispose());

  it('draft(batch, k, numDraft) == numDraft[s] greedy single steps, over two rounds with a catch-up chunk', async () => {
    const numDraft = Int32Array.of(5, 1, 3, 0);
    const reference = prompts().map((p) => new Seq(p));
    for (const s of reference) await generate(model, [s], K + 3);

    const seqs = prompts().map((p) => new Seq(p));
    const blocks = new Blocks(model);
    const round = async (nd: Int32Array) => {
      seqs.forEach((s, i) => blocks.ensure(s, s.tokens.length + Math.max(0, nd[i]! - 1)));
      const batch = buildBatch(
        model,
        blocks,
        seqs.map((seq) => ({ seq, n: seq.tokens.length - seq.computed })),
      );
      const ids = await model.draft!(batch, K, nd);
      expect(ids.length).toBe(seqs.length * K);
      seqs.forEach((s, i) => {
        const row = Array.from(ids.subarray(i * K, (i + 1) * K));
        const n = nd[i]!;
        expect(row.slice(n)).toEqual(new Array(K - n).fill(-1));
        expect(row.slice(0, n)).toEqual(reference[i]!.tokens.slice(s.tokens.length, s.tokens.length + n));
        s.computed = s.tokens.length + Math.max(0, n - 1);
        s.tokens.push(...row.slice(0, n));
      });
    };
    await round(numDraft);
    // Second round: keep 2 of each draft (as if the target rejected the rest) plus the target's next
    // token, so each sequence catches up a chunk of up to 3 tokens before drafting again.
    seqs.forEach((s, i) => {
      const keep = s.promptLen + Math.min(2, numDraft[i]!);
      s.tokens = reference[i]!.tokens.slice(0, keep + 1);
      s.computed = Math.min(s.computed, keep);
    });
    await round(Int32Array.of(3, 3, 2, 1));
  });

  it('draft without numDraft proposes k for every sequence and ignores sampling parameters', async () => {
    const reference = new Seq(prompts()[0]!);
    await generate(model, [reference], K);
    const seq = new Seq(prompts()[0]!, { temperature: 1.5, topK: 3, seed: 9, repetitionPenalty: 1.3 });
    const blocks = new Blocks(model);
    blocks.ensure(seq, seq.tokens.length + K - 1);
    const ids = await model.draft!(buildBatch(model, blocks, [{ seq, n: seq.tokens.length }]), K);
    expect(Array.from(ids)).toEqual(reference.generated);
  });

  it('argmax(batch, logitRows) == the first maximum of each logits() row', async () => {
    const seqs = prompts().map((p) => new Seq(p));
    const blocks = new Blocks(model);
    const work = seqs.map((seq) => ({ seq, n: seq.tokens.length }));
    const rows = Int32Array.from(seqs, (s) => Math.min(3, s.tokens.length));
    const ids = await model.argmax!(buildBatch(model, blocks, work), rows);
    const fresh = prompts().map((p) => new Seq(p));
    const logits = await model.logits(
      buildBatch(
        model,
        new Blocks(model),
        fresh.map((seq) => ({ seq, n: seq.tokens.length })),
      ),
      rows,
    );
    const V = model.config.vocabSize;
    expect(ids.length).toBe(logits.length / V);
    expect(Array.from(ids)).toEqual(
      Array.from({ length: ids.length }, (_, r) => argmax(logits.subarray(r * V, (r + 1) * V))),
    );
  });

  it('rejects a bad k or numDraft', async () => {
    const seq = new Seq([1, 5]);
    const batch = buildBatch(model, new Blocks(model), [{ seq, n: 2 }]);
    expect(() => model.draft!(batch, 0)).toThrow(/k must be/);
    await expect(model.draft!(batch, 2, Int32Array.of(3))).rejects.toMatchObject({ code: 'E_BATCH' });
  });
});
