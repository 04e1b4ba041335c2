/**
 * Batching must not change results: 8 different prompts stepped together — prefills cut into chunks
 * of different sizes, so prefill chunks and decodes of other sequences share steps — give token for
 * token (and logprob for logprob) what each prompt gives alone. On the f32 weights, and on int8/int4
 * weights with activations 'f32' (the quantized weights widened in registers against the f32
 * activations; the model's dim 64 and hidden 172 leave a short last group of 32).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NativeLoadOptions, NativeModel } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { describeWithModels, models } from '../helpers/models.js';
import { generate, goldens, llama2cManifest, Seq } from './native-harness.js';

const LENGTHS = [1, 3, 7, 12, 17, 25, 33, 40];
const NEW_TOKENS = 24;

function prompts(): number[][] {
  const story = goldens('stories260K').greedy_from_bos_48;
  let x = 12345;
  const rand = () => ((x = (x * 1103515245 + 12345) >>> 0) % 509) + 3;
  // half are prefixes of the model's own story (likely continuations), half random ids after BOS
  return LENGTHS.map((n, i) => (i % 2 === 0 ? story.slice(0, n) : [1, ...Array.from({ length: n - 1 }, rand)]));
}

const VARIANTS: [string, Partial<NativeLoadOptions>][] = [
  ['f32 weights', {}],
  ['int4 weights, f32 activations', { weightFormat: 'int4', activations: 'f32' }],
  ['int8 weights, f32 activations', { weightFormat: 'int8', activations: 'f32' }],
];

for (const [variant, options] of VARIANTS)
  describeWithModels(`native batching: stories260K, ${variant}`, () => {
    let model: NativeModel;
    beforeAll(async () => {
      model = await loadNative().loadModel({
        ...llama2cManifest(models.stories260K),
        ...options,
        numBlocks: 256,
        maxBatchTokens: 256,
        maxBatchSeqs: 16,
      });
    });
    afterAll(() => model?.dispose());

    it('8 prompts together (chunked prefill, mixed lengths) == each alone, greedy', async () => {
      const alone = prompts().map((p) => new Seq(p));
      for (const s of alone) await generate(model, [s], NEW_TOKENS);
      const together = prompts().map((p) => new Seq(p));
      await generate(model, together, NEW_TOKENS, (s) => [4, 5, 16][s.promptLen % 3]);
      together.forEach((s, i) => {
        expect(s.tokens).toEqual(alone[i].tokens);
        expect(s.logprobs).toEqual(alone[i].logprobs); // bit for bit: per-row arithmetic ignores the batch
      });
    });

    it('sampled runs with seeds are reproducible and batch-independent', async () => {
      const sampling = (i: number) => ({
        temperature: 0.9,
        topK: 40,
        topP: 0.9,
        minP: 0.02,
        seed: 1000 + i,
        repetitionPenalty: 1.1,
        presencePenalty: 0.2,
        frequencyPenalty: 0.1,
      });
      const alone = prompts().map((p, i) => new Seq(p, sampling(i)));
      for (const s of alone) await generate(model, [s], NEW_TOKENS);
      const together = prompts().map((p, i) => new Seq(p, sampling(i)));
      await generate(model, together, NEW_TOKENS, 6);
      together.forEach((s, i) => expect(s.tokens).toEqual(alone[i].tokens));
      // a different seed changes at least one of the runs
      const other = prompts().map((p, i) => new Seq(p, { ...sampling(i), seed: 7 + i }));
      await generate(model, other, NEW_TOKENS);
      expect(other.some((s, i) => s.tokens.join() !== alone[i].tokens.join())).toBe(true);
    });
  });
