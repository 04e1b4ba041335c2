/**
 * Speculative decoding in LLMEngine on the shared real pair: stories260K (target) with llama2xs-260K
 * (draft, same tok512 vocabulary) and n-gram lookup. Greedy output must equal the target alone, token
 * for token, alone and batched, with speculating and plain requests mixed in one batch; every block
 * comes back; and the acceptance figures are reported.
 */
import { describe, expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import type { SamplingParams } from '../../packages/engine/src/sampling-params.js';
import { prefillLogits, tryLoadNative } from '../fixtures/native-addon.js';
import { loadModel } from '../../packages/engine/src/model-loader/load-model.js';
import { run } from '../helpers/engine-suite.js';
import { describeWithModels, models } from '../helpers/models.js';

const native = await tryLoadNative();

const prompts = [
  'Once upon a time, there was a little dog',
  'Lily and Tom went to the park',
  'One day, a big bird',
  'The sun was hot. Ben wanted',
  'Sara had a red ball',
];
const base = { model: models.stories260K, numThreads: 1, device: 'cpu' as const };
const greedy: SamplingParams = { temperature: 0, maxTokens: 60 };

async function outputs(engine: LLMEngine, params: SamplingParams[], batched: boolean): Promise<number[][]> {
  if (batched)
    return Promise.all(prompts.map((p, i) => run(engine, p, params[i % params.length]).then((c) => c.tokenIds)));
  const out: number[][] = [];
  for (let i = 0; i < prompts.length; i++)
    out.push((await run(engine, prompts[i]!, params[i % params.length])).tokenIds);
  return out;
}

function expectClean(engine: LLMEngine): void {
  const st = engine.stats();
  expect(st.freeBlocks).toBe(st.numBlocks);
  expect([st.running, st.waiting, st.requests]).toEqual([0, 0, 0]);
}

describeWithModels('speculative decoding in LLMEngine (stories260K + llama2xs-260K)', () => {
  describe.skipIf(!native.binding)('exactness', () => {
    let reference: number[][];

    it('target alone (reference)', async () => {
      await using engine = await LLMEngine.create(base);
      reference = await outputs(engine, [greedy], false);
      expect(reference.every((t) => t.length > 10)).toBe(true);
    });

    for (const k of [1, 2, 4]) {
      it(`draft model, k=${k}: greedy output identical, alone and batched`, async () => {
        await using engine = await LLMEngine.create({
          ...base,
          speculative: { draftModel: models.llama2xs260K, draftTokenizerPath: models.tok512, k },
        });
        expect(await outputs(engine, [greedy], false)).toEqual(reference);
        expect(await outputs(engine, [greedy], true)).toEqual(reference);
        const s = engine.stats().speculative!;
        expect(s.drafts).toBeGreaterThan(0);
        expect(s.acceptanceByPosition.length).toBe(k);
        console.log(
          `[spec-engine] draft k=${k}: agreement ${s.agreementRate.toFixed(3)}, acceptance ${s.acceptanceRate.toFixed(3)}, tokens/pass ${s.meanTokensPerPass.toFixed(2)}, by position ${s.acceptanceByPosition.map((a) => a.toFixed(2)).join(' ')}`,
        );
        // README: the pair agree on the next greedy token about 76% of the time.
        expect(s.agreementRate).toBeGreaterThan(0.6);
        expect(s.agreementRate).toBeLessThan(0.92);
        expectClean(engine);
      });
    }

    it('n-gram lookup: greedy output identical, alone and batched', async () => {
      await using engine = await LLMEngine.create({ ...base, speculative: { method: 'ngram', k: 3 } });
      expect(await outputs(engine, [greedy], false)).toEqual(reference);
      expect(await outputs(engine, [greedy], true)).toEqual(reference);
      expect(engine.stats().speculative!.drafts).toBeGreaterThan(0);
      expectClean(engine);
    });

    it('mixes speculating and plain requests (k per request, both methods) in one batch', async () => {
      await using engine = await LLMEngine.create({
        ...base,
        speculative: { draftModel: models.llama2xs260K, draftTokenizerPath: models.tok512, k: 0 },
      });
      const mixed: SamplingParams[] = [
        { ...greedy, speculative: { k: 3 } },
        { ...greedy },
        { ...greedy, speculative: { k: 2, method: 'ngram' } },
        { ...greedy, speculative: false },
        { ...greedy, speculative: { k: 5 } },
      ];
      expect(await outputs(engine, mixed, true)).toEqual(reference);
      expectClean(engine);
    });

    it('disableByBatchSize: batched steps run plain, a lone request still speculates, output identical', async () => {
      await using engine = await LLMEngine.create({
        ...base,
        speculative: {
          draftModel: models.llama2xs260K,
          draftTokenizerPath: models.tok512,
          k: 2,
          disableByBatchSize: 2,
        },
      });
      expect(await outputs(engine, [greedy], true)).toEqual(reference);
      const batched = engine.stats().speculative!.drafts;
      expect(await outputs(engine, [greedy], false)).toEqual(reference);
      // Batched, the only decode steps with one sequence left are the tails after the others finished.
      expect(engine.stats().speculative!.drafts - batched).toBeGreaterThan(batched);
      await expect(
        LLMEngine.create({ ...base, speculative: { method: 'ngram', disableByBatchSize: 0 } }),
      ).rejects.toMatchObject({ name: 'SpeculativeConfigError' });
      expectClean(engine);
    });

    it('small KV pools (preemption, prefix cache on) keep greedy output identical', async () => {
      await using engine = await LLMEngine.create({
        ...base,
        numBlocks: 24,
        speculative: { draftModel: models.llama2xs260K, draftTokenizerPath: models.tok512, k: 4 },
      });
      expect(await outputs(engine, [greedy], true)).toEqual(reference);
      expectClean(engine);
    });
  });

  describe.skipIf(!native.binding)('sampling', () => {
    const sampled: SamplingParams[] = [
      { temperature: 1, seed: 7, maxTokens: 40 },
      { temperature: 0.8, topK: 20, seed: 11, maxTokens: 40 },
      { temperature: 0.9, topP: 0.9, seed: 3, maxTokens: 40, repetitionPenalty: 1.3, logprobs: 2 },
      { temperature: 1.2, minP: 0.05, seed: 5, maxTokens: 40, presencePenalty: 0.5, frequencyPenalty: 0.3 },
    ];

    it('a plain seeded request sampled in TypeScript inside a speculative step equals the native sampler', async () => {
      let plain: Array<{ tokenIds: number[]; logprobs: unknown }>;
      {
        await using engine = await LLMEngine.create(base);
        plain = await Promise.all(
          sampled.map((p, i) =>
            run(engine, prompts[i]!, p).then((c) => ({
              tokenIds: c.tokenIds,
              logprobs: c.outputs.flatMap((o) => o.logprobs ?? []).map((l) => l.tokenId),
            })),
          ),
        );
      }
      await using engine = await LLMEngine.create({
        ...base,
        speculative: { draftModel: models.llama2xs260K, draftTokenizerPath: models.tok512, k: 0 },
      });
      // A greedy speculating request beside them puts every step through model.logits() and the TS sampler.
      const spec = run(engine, 'Once upon a time', {
        temperature: 0,
        maxTokens: 60,
        ignoreEos: true,
        speculative: { k: 2 },
      });
      const got = await Promise.all(
        sampled.map((p, i) =>
          run(engine, prompts[i]!, { ...p, speculative: false }).then((c) => ({
            tokenIds: c.tokenIds,
            logprobs: c.outputs.flatMap((o) => o.logprobs ?? []).map((l) => l.tokenId),
          })),
        ),
      );
      await spec;
      expect(got).toEqual(plain);
      expectClean(engine);
    });

    it('speculating seeded sampled requests are reproducible and end cleanly', async () => {
      await using engine = await LLMEngine.create({
        ...base,
        speculative: { draftModel: models.llama2xs260K, draftTokenizerPath: models.tok512, k: 3 },
      });
      const a = await Promise.all(sampled.map((p, i) => run(engine, prompts[i]!, p).then((c) => c.tokenIds)));
      const b = await Promise.all(sampled.map((p, i) => run(engine, prompts[i]!, p).then((c) => c.tokenIds)));
      expect(a).toEqual(b);
      expect(engine.stats().speculative!.drafts).toBeGreaterThan(0);
      expectClean(engine);
    });

    it("at temperature 1 the verified token is distributed as the target's (chi-square over 800 seeds)", async () => {
      const prompt = 'Once upon a';
      await using engine = await LLMEngine.create({
        ...base,
        speculative: { draftModel: models.llama2xs260K, draftTokenizerPath: models.tok512, k: 2 },
      });
      const pairs: number[][] = [];
      for (let s0 = 0; s0 < 800; s0 += 100) {
        pairs.push(
          ...(await Promise.all(
            Array.from({ length: 100 }, (_, i) =>
              run(engine, prompt, { temperature: 1, seed: s0 + i, maxTokens: 4, ignoreEos: true }).then(
                (c) => c.tokenIds,
              ),
            ),
          )),
        );
      }
      expect(engine.stats().speculative!.drafts).toBeGreaterThan(0);
      // Condition on the most common first token (sampled by the plain path); the second went through verification.
      const firsts = new Map<number, number>();
      for (const p of pairs) firsts.set(p[0]!, (firsts.get(p[0]!) ?? 0) + 1);
      const t1 = [...firsts.entries()].sort((a, b) => b[1] - a[1])[0]![0];
      const seconds = pairs.filter((p) => p[0] === t1).map((p) => p[1]!);
      expect(seconds.length).toBeGreaterThan(300);
      await using target = await loadModel(models.stories260K, {
        numThreads: 1,
        device: 'cpu',
        maxBatchTokens: 64,
        maxBatchSeqs: 4,
      });
      const ctx = [...target.tokenizer.encode(prompt), t1];
      const row = (await prefillLogits(target.model, ctx)).at(-1)!;
      const max = Math.max(...row);
      const w = Array.from(row, (l) => Math.exp(l - max));
      const z = w.reduce((a, b) => a + b, 0);
      const probs = w.map((x) => x / z);
      // Categories with an expected count of at least 5; the rest pooled.
      const n = seconds.length;
      const big = probs.map((p, id) => ({ p, id })).filter((c) => c.p * n >= 5);
      const bigIds = new Set(big.map((c) => c.id));
      const cats = [
        ...big.map((c) => ({ p: c.p, count: seconds.filter((t) => t === c.id).length })),
        { p: 1 - big.reduce((a, c) => a + c.p, 0), count: seconds.filter((t) => !bigIds.has(t)).length },
      ].filter((c) => c.p * n >= 1);
      const chi2 = cats.reduce((a, c) => a + (c.count - n * c.p) ** 2 / (n * c.p), 0);
      const df = cats.length - 1;
      // Wilson–Hilferty approximation of the 99.9% quantile of chi-square with df degrees of freedom.
      const q = df * (1 - 2 / (9 * df) + 3.09 * Math.sqrt(2 / (9 * df))) ** 3;
      console.log(`[spec-engine] chi-square ${chi2.toFixed(2)} on ${df} df (99.9% quantile ${q.toFixed(2)}), n=${n}`);
      expect(chi2).toBeLessThan(q);
    }, 120_000);
  });
});
