/**
 * NativeModel.verify() against the TypeScript reference it must match bit for bit
 * (sample/verify-rows.ts over logits() rows): random batches on stories260K mixing prefill chunks,
 * plain decodes (k = 0) and speculating sequences (k 1..5) whose proposals are the model's greedy
 * continuation with some tokens replaced, under random sampling parameters (greedy and seeded
 * sampling, top-k / top-p / min-p, penalties) and random draft distributions or none (n-gram-like).
 * Also: results written into caller buffers (views of them), and E_BATCH for bad arguments.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NativeDraftProbs, NativeModel, NativeStepBatch } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { verifyRows } from '../../packages/engine/src/sample/verify-rows.js';
import { resolveSamplingParams, type ResolvedSamplingParams } from '../../packages/engine/src/sampling-params.js';
import type { Sequence } from '../../packages/engine/src/sequence.js';
import { describeWithModels, models } from '../helpers/models.js';
import { Blocks, buildBatch, llama2cManifest, Seq } from './native-harness.js';

/** mulberry32: a small seeded PRNG, so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Plan {
  kind: 'chunk' | 'plain' | 'spec';
  seq: Seq;
  params: ResolvedSamplingParams;
  seed: number;
  k: number;
  /** (k) dense draft distributions, or null. */
  q: Float64Array[] | null;
}

interface Tally {
  greedyAccepted: number;
  greedyRejected: number;
  sampledAccepted: number;
  sampledRejected: number;
  bonus: number;
  withQ: number;
}

describeWithModels('native verify(): stories260K', () => {
  let model: NativeModel;
  let V: number;
  beforeAll(async () => {
    model = await loadNative().loadModel({
      ...llama2cManifest(models.stories260K),
      numBlocks: 4096,
      maxBatchTokens: 512,
      maxBatchSeqs: 16,
      numThreads: 2,
    });
    V = model.config.vocabSize;
  });
  afterAll(() => model?.dispose());

  /** A random step: its sequences' plans, proposals from draft() with some replaced. */
  async function randomStep(rand: () => number, blocks: Blocks): Promise<Plan[]> {
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const S = 1 + Math.floor(rand() * 6);
    const plans: Plan[] = [];
    for (let s = 0; s < S; s++) {
      const len = 2 + Math.floor(rand() * 24);
      const tokens = [1, ...Array.from({ length: len - 1 }, () => 1 + Math.floor(rand() * (V - 1)))];
      const promptLen = 1 + Math.floor(rand() * len);
      const kind = pick(['chunk', 'plain', 'spec', 'spec', 'spec'] as const);
      const sampling = {
        temperature: pick([0, 0, 0.5, 1, 1.7]),
        topK: pick([0, 0, 5, 40]),
        topP: pick([1, 1, 0.9, 0.5]),
        minP: pick([0, 0, 0.05]),
        repetitionPenalty: pick([1, 1, 1.3]),
        presencePenalty: pick([0, 0, 0.5]),
        frequencyPenalty: pick([0, 0, 0.3]),
      };
      const seed = Math.floor(rand() * 2 ** 32);
      const params = resolveSamplingParams(sampling, { maxModelLen: 512, vocabSize: V, promptLen });
      const seq = new Seq(tokens.slice(0, promptLen), { ...sampling, seed });
      seq.tokens.push(...tokens.slice(promptLen));
      plans.push({ kind, seq, params, seed, k: kind === 'spec' ? 1 + Math.floor(rand() * 5) : 0, q: null });
    }
    // Proposals: the greedy continuation (one fused draft() over copies), some tokens replaced.
    const spec = plans.filter((p) => p.kind === 'spec');
    if (spec.length > 0) {
      const copies = spec.map((p) => new Seq([...p.seq.tokens]));
      const k = Math.max(...spec.map((p) => p.k));
      copies.forEach((c) => blocks.ensure(c, c.tokens.length + k));
      const ids = await model.draft!(
        buildBatch(
          model,
          blocks,
          copies.map((seq) => ({ seq, n: seq.tokens.length })),
        ),
        k,
        Int32Array.from(spec, (p) => p.k),
      );
      spec.forEach((p, i) => {
        for (let j = 0; j < p.k; j++) {
          const greedy = ids[i * k + j]!;
          p.seq.tokens.push(rand() < 0.25 ? 1 + Math.floor(rand() * (V - 1)) : greedy);
        }
        if (p.params.temperature > 0 && rand() < 0.6) {
          // A draft distribution that gives each proposal some mass: part one-hot at it, part random.
          p.q = Array.from({ length: p.k }, (_, j) => {
            const x = p.seq.tokens[p.seq.tokens.length - p.k + j]!;
            const w = Float64Array.from({ length: V }, () => rand() ** 4);
            w[x] = w[x]! + rand() * 50;
            const sum = w.reduce((a, b) => a + b, 0);
            return w.map((v) => v / sum);
          });
        }
      });
    }
    return plans;
  }

  function batchOf(plans: Plan[], blocks: Blocks): { batch: NativeStepBatch; logitRows: Int32Array } {
    const work = plans.map((p) => {
      const n = p.kind === 'chunk' ? Math.max(1, p.seq.tokens.length - 1 - Math.floor(p.seq.tokens.length / 3)) : 0;
      return { seq: p.seq, n: n || p.seq.tokens.length };
    });
    const batch = buildBatch(model, blocks, work);
    return { batch, logitRows: Int32Array.from(plans, (p) => p.k + 1) };
  }

  function packQ(plans: Plan[]): NativeDraftProbs | null {
    const withQ = plans.filter((p) => p.q);
    if (withQ.length === 0) return null;
    const probs = new Float64Array(withQ.reduce((a, p) => a + p.k, 0) * V);
    const rows = new Int32Array(plans.length).fill(-1);
    let row = 0;
    plans.forEach((p, s) => {
      if (!p.q) return;
      rows[s] = row;
      for (const d of p.q) probs.set(d, row++ * V);
    });
    return { probs, rows };
  }

  it('equals the TypeScript verification on random steps (greedy and seeded sampling, drafts with and without q)', async () => {
    const rand = rng(20240917);
    const tally: Tally = {
      greedyAccepted: 0,
      greedyRejected: 0,
      sampledAccepted: 0,
      sampledRejected: 0,
      bonus: 0,
      withQ: 0,
    };
    for (let trial = 0; trial < 150; trial++) {
      const blocks = new Blocks(model);
      const plans = await randomStep(rand, blocks);
      const { batch, logitRows } = batchOf(plans, blocks);
      const draft = packQ(plans);
      const res = await model.verify!(batch, logitRows, draft);
      const logits = await model.logits(batch, logitRows);
      let r = 0;
      plans.forEach((p, s) => {
        const where = `trial ${trial}, sequence ${s} (${p.kind}, k ${p.k}, T ${p.params.temperature})`;
        if (!batch.sampleMask[s]) {
          expect(res.numAccepted[s], where).toBe(-1);
          return;
        }
        const rows = Array.from({ length: p.k + 1 }, (_, j) => logits.subarray((r + j) * V, (r + j + 1) * V));
        const ref = {
          params: p.params,
          tokenIds: Int32Array.from(p.seq.tokens),
          numTokens: p.seq.tokens.length,
          promptLen: p.seq.promptLen,
          seed: p.seed,
        } as unknown as Sequence;
        const prop = p.k > 0 ? { tokens: p.seq.tokens.slice(-p.k), q: p.q } : null;
        const want = verifyRows(ref, rows, prop);
        const a = res.numAccepted[s]!;
        expect({ a, tokens: Array.from(res.tokens.subarray(r, r + a + 1)) }, where).toEqual({
          a: want.numAccepted,
          tokens: want.tokens,
        });
        expect(Array.from(res.tokens.subarray(r + a + 1, r + p.k + 1)), where).toEqual(new Array(p.k - a).fill(-1));
        r += p.k + 1;
        if (p.k === 0) return;
        const greedy = p.params.temperature === 0;
        if (a > 0) tally[greedy ? 'greedyAccepted' : 'sampledAccepted']++;
        if (a < p.k) tally[greedy ? 'greedyRejected' : 'sampledRejected']++;
        if (a === p.k) tally.bonus++;
        if (p.q) tally.withQ++;
      });
      expect(res.tokens.length).toBe(r);
    }
    // Every branch of the verification ran (the fixed PRNG seed keeps this stable).
    for (const [what, n] of Object.entries(tally)) expect(n, what).toBeGreaterThan(2);
  });

  it('writes into caller buffers and returns views of them, equal to the allocating call', async () => {
    const rand = rng(7);
    const blocks = new Blocks(model);
    const plans = await randomStep(rand, blocks);
    const { batch, logitRows } = batchOf(plans, blocks);
    const out = { tokens: new Int32Array(512).fill(99), numAccepted: new Int32Array(16).fill(99) };
    const fresh = await model.verify!(batch, logitRows, packQ(plans));
    const into = await model.verify!(batch, logitRows, packQ(plans), out);
    expect(into.tokens.buffer).toBe(out.tokens.buffer);
    expect(into.numAccepted.buffer).toBe(out.numAccepted.buffer);
    expect(Array.from(into.tokens)).toEqual(Array.from(fresh.tokens));
    expect(Array.from(into.numAccepted)).toEqual(Array.from(fresh.numAccepted));
    expect(into.numAccepted.length).toBe(plans.length);
    expect(out.numAccepted[plans.length]).toBe(99); // past the step: untouched
  });

  describe('rejects bad arguments with E_BATCH', () => {
    const good = () => {
      const seq = new Seq([1, 5, 9, 20]);
      return buildBatch(model, new Blocks(model), [{ seq, n: 4 }]);
    };
    const cases: [string, () => Promise<unknown>][] = [
      ['logitRows beyond the rows', () => model.verify!(good(), Int32Array.of(5))],
      ['logitRows too short', () => model.verify!({ ...good(), numSeqs: 1 }, new Int32Array(0))],
      [
        'draft rows beyond probs',
        () => model.verify!(good(), Int32Array.of(3), { probs: new Float64Array(V), rows: Int32Array.of(0) }),
      ],
      [
        'draft probs of the wrong type',
        () =>
          model.verify!(good(), Int32Array.of(2), {
            probs: new Float32Array(V) as unknown as Float64Array,
            rows: Int32Array.of(0),
          }),
      ],
      [
        'out too small',
        () =>
          model.verify!(good(), Int32Array.of(3), null, { tokens: new Int32Array(2), numAccepted: new Int32Array(1) }),
      ],
      ['draft not an object', () => model.verify!(good(), Int32Array.of(1), 5 as unknown as NativeDraftProbs)],
    ];
    for (const [name, call] of cases) {
      it(name, async () => {
        await expect(call()).rejects.toMatchObject({ code: 'E_BATCH' });
      });
    }
  });
});
