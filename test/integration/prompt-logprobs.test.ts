/**
 * promptLogprobs on stories260K through the real engine: each prompt token's logprob (and top
 * alternatives) equals the log-softmax of a plain native prefill's logits; the request's own tokens are
 * those of the same request without it (sampled in TypeScript with the native semantics, bias included);
 * a cached prefix is not used for it; neighbours in the batch are unaffected; bad requests are refused.
 */
import { expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { collect, run } from '../helpers/engine-suite.js';
import { describeWithModels, models } from '../helpers/models.js';
import { llama2cManifest, logSoftmax, prefillLogits } from './native-harness.js';

const base = { model: models.stories260K, numThreads: 1, device: 'cpu' as const };
const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside.';

describeWithModels('promptLogprobs (stories260K)', () => {
  it('equal the log-softmax of a native prefill, with top alternatives best first; output unchanged', async () => {
    await using engine = await LLMEngine.create(base);
    const ids = engine.tokenizer.encode(prompt);
    const [first] = await collect(engine.generate(prompt, { temperature: 0, maxTokens: 6, promptLogprobs: 3 }));
    const lps = first!.outputs[0]!.promptLogprobs!;
    expect(lps).toHaveLength(ids.length);
    expect(lps[0]).toBeNull();
    const model = await loadNative().loadModel({ ...llama2cManifest(models.stories260K), numBlocks: 64 });
    try {
      const rows = await prefillLogits(model, ids);
      for (let i = 1; i < ids.length; i++) {
        const ref = logSoftmax(rows[i - 1]!);
        const lp = lps[i]!;
        expect(lp.tokenId).toBe(ids[i]);
        expect(Math.abs(lp.logprob - ref[ids[i]!]!)).toBeLessThan(1e-4);
        expect(lp.top).toHaveLength(3);
        const best = Array.from(ref.keys())
          .sort((a, b) => ref[b]! - ref[a]! || a - b)
          .slice(0, 3);
        expect(lp.top.map((t) => t.tokenId)).toEqual(best);
      }
    } finally {
      model.dispose();
    }
    const plain = await run(engine, prompt, { temperature: 0, maxTokens: 6 });
    const withLp = await run(engine, prompt, { temperature: 0, maxTokens: 6, promptLogprobs: 0 });
    expect(withLp.tokenIds).toEqual(plain.tokenIds);
    const seeded = { temperature: 0.9, seed: 5, maxTokens: 6, logitBias: { 400: 3 }, repetitionPenalty: 1.2 };
    expect((await run(engine, prompt, { ...seeded, promptLogprobs: 1 })).tokenIds).toEqual(
      (await run(engine, prompt, seeded)).tokenIds,
    );
  });

  it('does not take prefix-cache hits, leaves batch neighbours alone, and refuses what it cannot do', async () => {
    await using engine = await LLMEngine.create({ ...base, maxNumBatchedTokens: 64, maxNumSeqs: 16 });
    const warm = await run(engine, prompt, { temperature: 0, maxTokens: 4 }); // caches the prompt's full blocks
    const [again, neighbour] = await Promise.all([
      collect(engine.generate(prompt, { temperature: 0, maxTokens: 4, promptLogprobs: 0 })),
      run(engine, 'One day, a cat', { temperature: 0, maxTokens: 8 }),
    ]);
    const againLps = again[0]!.outputs[0]!.promptLogprobs!;
    expect(againLps).toHaveLength(engine.tokenizer.encode(prompt).length); // every position computed, none taken from the cache
    expect(againLps.slice(1).every((lp) => lp !== null && lp.logprob <= 0)).toBe(true);
    expect(again[0]!.tokenIds).toEqual(warm.tokenIds);
    expect(neighbour.tokenIds).toEqual(
      (await run(engine, 'One day, a cat', { temperature: 0, maxTokens: 8 })).tokenIds,
    );
    expect(() => engine.generate(prompt, { promptLogprobs: 1, n: 2 })).toThrow(/promptLogprobs/);
    expect(() => engine.generate(prompt.repeat(4), { promptLogprobs: 1, maxTokens: 1 })).toThrow(/maxNumBatchedTokens/);
    expect(engine.stats().running + engine.stats().waiting).toBe(0);
  });
});
