/**
 * LLMEngine.embed() on the real stories260K model through the native addon: unit vectors, equal for equal
 * texts and different for different ones, token ids the same as text, mean and last pooling (equal on a
 * one-token input, different on longer ones), batch invariance to the bit (alone vs among 63 others, and
 * between running generations' steps), KV blocks returned, aborts, dispose, and the limits.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { tryLoadNative } from '../fixtures/native-addon.js';
import { describeWithModels, models } from '../helpers/models.js';

const native = await tryLoadNative();
if (!native.binding) console.warn(`[engine-embeddings] skipped: ${native.reason}`);

const base = { model: models.stories260K, numThreads: 1, device: 'cpu' as const };

const texts = Array.from({ length: 63 }, (_, i) =>
  ['Once upon a time', 'Lily and Tom went to the park', 'The sun was hot', 'A big bird sang'][i % 4]!.concat(
    ' and then'.repeat(i % 7),
    ` number ${i}`,
  ),
);

function norm(v: Float32Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  return Math.sqrt(s);
}

function bits(v: Float32Array): string {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex');
}

describeWithModels('LLMEngine.embed on stories260K', () => {
  describe.skipIf(!native.binding)('embed', () => {
    it('gives unit vectors of the model dim, equal for equal texts, different for different', async () => {
      await using engine = await LLMEngine.create(base);
      const [a, b, c] = await engine.embed(['Once upon a time', 'Once upon a time', 'A big red ball']);
      expect(a!.embedding.length).toBe(engine.spec.config.dim);
      expect(engine.embedding.dim).toBe(engine.spec.config.dim);
      expect(norm(a!.embedding)).toBeCloseTo(1, 5);
      expect(bits(a!.embedding)).toBe(bits(b!.embedding));
      expect(bits(a!.embedding)).not.toBe(bits(c!.embedding));
      expect(a!.promptTokens).toBe(engine.tokenizer.encode('Once upon a time').length);
      const [ids] = await engine.embed([{ tokenIds: engine.tokenizer.encode('Once upon a time') }]);
      expect(bits(ids!.embedding)).toBe(bits(a!.embedding));
    });

    it('is the final normed hidden state: the classifier applied to it gives the logits, scaled by its norm', async () => {
      await using engine = await LLMEngine.create(base);
      const prompt = 'Lily and Tom went to the park';
      const [e] = await engine.embed([prompt]);
      let lp: { tokenId: number; logprob: number }[] = [];
      for await (const out of engine.generate(prompt, { maxTokens: 1, temperature: 0, logprobs: 20 }))
        lp = out.logprobs?.[0]?.top ?? lp;
      expect(lp).toHaveLength(20);
      // stories260K ties the classifier to tok_embeddings: (vocab, dim) f32 in the checkpoint
      const t = engine.spec.tensors.find((x) => x.name === 'tok_embeddings')!;
      const dim = engine.spec.config.dim;
      const file = readFileSync(engine.spec.files[t.file]!);
      const w = new Float32Array(
        file.buffer.slice(file.byteOffset + t.offset, file.byteOffset + t.offset + t.shape[0]! * dim * 4),
      );
      const we = (id: number) => {
        let s = 0;
        for (let d = 0; d < dim; d++) s += w[id * dim + d]! * e!.embedding[d]!;
        return s;
      };
      // logprob differences are logit differences = |h| × (W·e) differences, the same |h| for every pair
      const scales = lp.slice(1).map((x) => (lp[0]!.logprob - x.logprob) / (we(lp[0]!.tokenId) - we(x.tokenId)));
      for (const k of scales) expect(k / scales[0]!).toBeCloseTo(1, 3);
      expect(scales[0]!).toBeGreaterThan(0);
    });

    it('is batch-invariant: a text alone and among 63 others gives the same bits', async () => {
      await using engine = await LLMEngine.create(base);
      const [alone] = await engine.embed([texts[5]!]);
      const all = await engine.embed(texts);
      expect(all).toHaveLength(63);
      expect(bits(all[5]!.embedding)).toBe(bits(alone!.embedding));
      // separate calls queued together run in one step too
      const parts = await Promise.all(texts.slice(0, 10).map((t) => engine.embed([t])));
      for (let i = 0; i < 10; i++) expect(bits(parts[i]![0]!.embedding)).toBe(bits(all[i]!.embedding));
    });

    it('runs between generation steps with the same bits, and returns every KV block', async () => {
      await using engine = await LLMEngine.create({ ...base, enablePrefixCaching: false });
      const [alone] = await engine.embed([texts[3]!]);
      const gen = (async () => {
        let n = 0;
        for await (const out of engine.generate('Once upon a time', { maxTokens: 40, temperature: 0 }))
          n += out.tokenIds.length;
        return n;
      })();
      const during = await engine.embed([texts[3]!, texts[7]!]);
      expect(await gen).toBe(40);
      expect(bits(during[0]!.embedding)).toBe(bits(alone!.embedding));
      expect(engine.scheduler.blockManager.pool.numFreeBlocks).toBe(engine.scheduler.blockManager.pool.numBlocks);
    });

    it('pools by the mean when asked: one-token inputs agree with last pooling, longer ones differ', async () => {
      await using last = await LLMEngine.create(base);
      await using mean = await LLMEngine.create({ ...base, pooling: 'mean' });
      expect(last.embedding.pooling).toBe('last');
      expect(mean.embedding.pooling).toBe('mean');
      const one = [{ tokenIds: [1] }];
      expect(bits((await mean.embed(one))[0]!.embedding)).toBe(bits((await last.embed(one))[0]!.embedding));
      const [m] = await mean.embed(['Lily and Tom went to the park']);
      const [l] = await last.embed(['Lily and Tom went to the park']);
      expect(norm(m!.embedding)).toBeCloseTo(1, 5);
      expect(bits(m!.embedding)).not.toBe(bits(l!.embedding));
    });

    it('refuses inputs longer than one step or the context, ids outside the vocabulary, and empty prompts', async () => {
      await using engine = await LLMEngine.create({ ...base, maxNumBatchedTokens: 64, maxNumSeqs: 16 });
      expect(engine.embedding.maxTokens).toBe(64);
      expect(() => engine.embed([{ tokenIds: new Array(65).fill(5) }])).toThrow(/at most 64/);
      expect(() => engine.embed([{ tokenIds: [1, 99999] }])).toThrow(/outside the vocabulary/);
      expect(() => engine.embed([{ tokenIds: [] }])).toThrow(/empty/);
      // 64 tokens fit
      const [ok] = await engine.embed([{ tokenIds: new Array(64).fill(5) }]);
      expect(norm(ok!.embedding)).toBeCloseTo(1, 5);
    });

    it('an aborted request rejects with AbortError; dispose rejects what waits', async () => {
      const engine = await LLMEngine.create(base);
      const ac = new AbortController();
      ac.abort();
      await expect(engine.embed(['Once upon a time'], { signal: ac.signal })).rejects.toMatchObject({
        name: 'AbortError',
      });
      const waiting = expect(engine.embed(texts)).rejects.toMatchObject({ code: 'E_ENGINE_DISPOSED' });
      await engine.dispose();
      await waiting;
      expect(() => engine.embed(['Once'])).toThrow(/disposed/);
    });
  });
});
