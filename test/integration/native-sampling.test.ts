/**
 * Sampling in the native step against the same rules applied in JS to the raw logits: logprobs and
 * top logprobs, top-k / top-p / min-p limits, vLLM-style penalties, and seeded draws that follow the
 * softmax distribution.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { describeWithModels, models } from '../helpers/models.js';
import {
  Blocks,
  buildBatch,
  goldens,
  llama2cManifest,
  logSoftmax,
  Seq,
  type SamplingOptions,
} from './native-harness.js';

describeWithModels('native sampling: stories260K', () => {
  let model: NativeModel;
  const prompt = () => goldens('stories260K').greedy_from_bos_48.slice(0, 20);
  beforeAll(async () => {
    model = await loadNative().loadModel({
      ...llama2cManifest(models.stories260K),
      numBlocks: 1024,
      maxBatchSeqs: 256,
      maxBatchTokens: 8192,
    });
  });
  afterAll(() => model?.dispose());

  /** One step over `n` copies of the prompt with the given options; returns the result and raw logits. */
  async function once(opts: (i: number) => SamplingOptions, n = 1) {
    const seqs = Array.from({ length: n }, (_, i) => new Seq(prompt(), opts(i)));
    const batch = () =>
      buildBatch(
        model,
        new Blocks(model),
        seqs.map((seq) => ({ seq, n: seq.tokens.length })),
      );
    const [result, logits] = await Promise.all([model.step(batch()), model.logits(batch())]);
    return { result, logits: logits.subarray(0, model.config.vocabSize) };
  }

  it('returns the sampled logprob and top logprobs of the untempered distribution', async () => {
    const { result, logits } = await once(() => ({ temperature: 0.7, seed: 3, numLogprobs: 5 }));
    const lp = logSoftmax(logits);
    const order = Array.from(lp.keys()).sort((a, b) => lp[b] - lp[a]);
    expect(result.topK).toBe(5);
    expect(Array.from(result.topIds)).toEqual(order.slice(0, 5));
    result.topLogprobs.forEach((v, i) => expect(v).toBeCloseTo(lp[order[i]], 4));
    expect(result.logprobs[0]).toBeCloseTo(lp[result.tokens[0]], 4);
  });

  it('top-k 1, top-p near 0 and min-p 1 all reduce to the argmax', async () => {
    const { logits } = await once(() => ({}));
    const argmax = logits.indexOf(Math.max(...logits));
    for (const o of [{ topK: 1 }, { topP: 0.01 }, { minP: 1 }]) {
      const { result } = await once((i) => ({ temperature: 1.5, seed: i, ...o }), 16);
      expect(new Set(result.tokens)).toEqual(new Set([argmax]));
    }
  });

  it('top-k limits draws to the k most likely tokens', async () => {
    const { result, logits } = await once((i) => ({ temperature: 2, topK: 3, seed: i }), 64);
    const top3 = Array.from(logits.keys())
      .sort((a, b) => logits[b] - logits[a])
      .slice(0, 3);
    for (const t of result.tokens) expect(top3).toContain(t);
    expect(new Set(result.tokens).size).toBeGreaterThan(1);
  });

  it('applies repetition, presence and frequency penalties like vLLM', async () => {
    const opts = { repetitionPenalty: 1.8, presencePenalty: 0.5, frequencyPenalty: 0.7, numLogprobs: 3 };
    // generated tokens: pretend the last 8 prompt tokens were generated, so output penalties apply to them
    const seq = new Seq(prompt(), opts);
    (seq as { promptLen: number }).promptLen = 12;
    const batch = () => buildBatch(model, new Blocks(model), [{ seq, n: seq.tokens.length }]);
    const [r, raw] = await Promise.all([model.step(batch()), model.logits(batch())]);
    const l = Float32Array.from(raw);
    const toks = seq.tokens,
      counts = new Map<number, number>();
    for (const t of toks.slice(12)) counts.set(t, (counts.get(t) ?? 0) + 1);
    for (const t of new Set(toks)) l[t] = l[t] > 0 ? l[t] / opts.repetitionPenalty : l[t] * opts.repetitionPenalty;
    for (const [t, c] of counts) l[t] -= opts.frequencyPenalty * c + opts.presencePenalty;
    const lp = logSoftmax(l);
    const argmax = l.indexOf(Math.max(...l));
    expect(r.tokens[0]).toBe(argmax);
    expect(r.logprobs[0]).toBeCloseTo(lp[argmax], 4);
  });

  it('seeded draws follow the softmax and depend only on (seed, position)', async () => {
    const N = 256;
    const { result, logits } = await once((i) => ({ temperature: 1, seed: i }), N);
    const again = await once((i) => ({ temperature: 1, seed: i }), N);
    expect(Array.from(again.result.tokens)).toEqual(Array.from(result.tokens));
    const p = logSoftmax(logits).map(Math.exp);
    const top = p.indexOf(Math.max(...p));
    const hits = result.tokens.filter((t) => t === top).length;
    const sd = Math.sqrt(N * p[top] * (1 - p[top]));
    expect(Math.abs(hits - N * p[top])).toBeLessThan(4 * sd + 1);
  });
});
