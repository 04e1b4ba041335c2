/**
 * Allowed-token masks in the native step (guided decoding's half in C++): a masked sequence never
 * samples a token outside its mask, greedy or seeded, whatever else shares the step; a sequence without
 * a mask samples exactly what it samples with no masks in the step at all; a greedy masked draw is the
 * best allowed token of the row; bad masks are refused with E_BATCH naming the problem.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { allows, maskOf, maskWords } from '../../packages/engine/src/guided/token-mask.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeModel, NativeStepBatch } from '../../packages/engine/src/native/native-types.js';
import { describeWithModels, models } from '../helpers/models.js';
import { Blocks, buildBatch, llama2cManifest, prefillLogits, Seq, type SamplingOptions } from './native-harness.js';

const STEPS = 24;

/** A pseudo-random mask allowing about `share` of the vocabulary (at least one token). */
function randomMask(vocab: number, share: number, seed: number): Uint32Array {
  let x = seed >>> 0;
  const rand = () => (x = (x * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const ids: number[] = [];
  for (let t = 0; t < vocab; t++) if (rand() < share) ids.push(t);
  if (ids.length === 0) ids.push(seed % vocab);
  return maskOf(ids, vocab);
}

/** Steps every sequence STEPS tokens (prefill then decodes), seq i under masks[i] (null = none), all in the same steps. */
async function run(model: NativeModel, seqs: Seq[], masks: (Uint32Array | null)[] | null): Promise<void> {
  const blocks = new Blocks(model);
  const W = maskWords(model.config.vocabSize);
  for (let step = 0; step < STEPS; step++) {
    const work = seqs.map((seq) => ({ seq, n: seq.tokens.length - seq.computed }));
    const b: NativeStepBatch = buildBatch(model, blocks, work);
    if (masks) {
      const offsets = new Int32Array(seqs.length).fill(-1);
      const packed = new Uint32Array(W * seqs.length);
      masks.forEach((m, s) => {
        if (!m) return;
        packed.set(m, s * W);
        offsets[s] = s * W;
      });
      b.tokenMask = packed;
      b.tokenMaskOffsets = offsets;
    }
    const r = await model.step(b);
    work.forEach(({ seq, n }, s) => {
      seq.computed += n;
      seq.tokens.push(r.tokens[s]!);
      seq.logprobs.push(r.logprobs[s]!);
    });
  }
}

describeWithModels('native token masks: stories260K', () => {
  let model: NativeModel;
  let V: number;
  beforeAll(async () => {
    model = await loadNative().loadModel({
      ...llama2cManifest(models.stories260K),
      numBlocks: 256,
      maxBatchTokens: 256,
      maxBatchSeqs: 16,
    });
    V = model.config.vocabSize;
  });
  afterAll(() => model?.dispose());

  const prompts = [
    [1, 403, 407, 261],
    [1, 9, 30, 301, 40],
    [1, 500],
    [1, 283, 285, 287, 289, 300],
  ];
  const samplings: Record<string, (i: number) => SamplingOptions> = {
    greedy: () => ({}),
    seeded: (i) => ({ temperature: 1, topK: 50, topP: 0.95, minP: 0.01, seed: 77 + i, repetitionPenalty: 1.2 }),
  };

  for (const [name, sampling] of Object.entries(samplings)) {
    it(`${name}: masked sequences sample only allowed tokens; the unmasked one is unchanged`, async () => {
      const masks = [randomMask(V, 0.05, 11), null, randomMask(V, 0.3, 12), maskOf([300], V)];
      const guided = prompts.map((p, i) => new Seq([...p], sampling(i)));
      await run(model, guided, masks);
      guided.forEach((seq, i) => {
        const m = masks[i];
        expect(seq.generated).toHaveLength(STEPS);
        if (m) for (const t of seq.generated) expect(allows(m, t), `seq ${i} sampled masked token ${t}`).toBe(true);
      });
      expect(guided[3]!.generated).toEqual(Array(STEPS).fill(300)); // the only allowed token, every step
      // without a mask the model leaves the random 5% mask almost at once (the mask did something)
      const free = prompts.map((p, i) => new Seq([...p], sampling(i)));
      await run(model, free, null);
      expect(free[0]!.generated.some((t) => !allows(masks[0]!, t))).toBe(true);
      // the unmasked sequence is token for token what it is with no mask in the step at all
      expect(guided[1]!.generated).toEqual(free[1]!.generated);
    });
  }

  it('a greedy masked draw is the best allowed token of the row', async () => {
    const prompt = prompts[0]!;
    const row = (await prefillLogits(model, prompt)).at(-1)!;
    const order = Array.from(row.keys()).sort((a, b) => row[b]! - row[a]! || a - b);
    const allowed = [order[7]!, order[3]!, order[200]!]; // the 4th best is the best of these
    const seq = new Seq([...prompt]);
    const blocks = new Blocks(model);
    const b = buildBatch(model, blocks, [{ seq, n: prompt.length }]);
    b.tokenMask = maskOf(allowed, V);
    b.tokenMaskOffsets = Int32Array.of(0);
    const r = await model.step(b);
    expect(r.tokens[0]).toBe(order[3]);
  });

  it('refuses a mask that allows nothing and an offset past the end', async () => {
    const seq = new Seq([...prompts[2]!]);
    const blocks = new Blocks(model);
    const b = buildBatch(model, blocks, [{ seq, n: seq.tokens.length }]);
    b.tokenMask = new Uint32Array(maskWords(V));
    b.tokenMaskOffsets = Int32Array.of(0);
    await expect(model.step(b)).rejects.toMatchObject({
      code: 'E_BATCH',
      message: expect.stringContaining('allows no token'),
    });
    b.tokenMask = maskOf([5], V);
    b.tokenMaskOffsets = Int32Array.of(1);
    await expect(model.step(b)).rejects.toMatchObject({
      code: 'E_BATCH',
      message: expect.stringContaining('tokenMaskOffsets'),
    });
  });
});
