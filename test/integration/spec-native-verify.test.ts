/**
 * The engine's speculative steps verify natively (NativeModel.verify) and give exactly the tokens of
 * the TypeScript verification (the same models with verify() hidden): greedy and seeded sampling,
 * with penalties and top-k / top-p, draft-model and n-gram proposals, batched; a request asking for
 * logprobs sends its steps through the TypeScript path in both engines. Also the SessionVerifier.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { loadModel, type LoadedModel } from '../../packages/engine/src/model-loader/load-model.js';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { resolveSamplingParams, type SamplingParams } from '../../packages/engine/src/sampling-params.js';
import { SessionDrafter, SessionVerifier } from '../../packages/engine/src/spec-decode/session-models.js';
import { run } from '../helpers/engine-suite.js';
import { describeWithModels, models } from '../helpers/models.js';

/** `loaded` with its native model wrapped: verify() hidden, or counted. */
function wrap(loaded: LoadedModel, verify: 'hide' | { calls: number }): LoadedModel {
  const m = loaded.model;
  const model: NativeModel = {
    config: m.config,
    blockSize: m.blockSize,
    numBlocks: m.numBlocks,
    kvDtype: m.kvDtype,
    backend: m.backend,
    kernels: m.kernels,
    weightBytes: m.weightBytes,
    numThreads: m.numThreads,
    step: (b, out) => m.step(b, out),
    logits: (b, r) => m.logits(b, r),
    argmax: (b, r) => m.argmax!(b, r),
    draft: (b, k, n) => m.draft!(b, k, n),
    ...(verify === 'hide'
      ? {}
      : {
          verify: (b, r, d, out) => {
            verify.calls++;
            return m.verify!(b, r, d, out);
          },
        }),
    dispose: () => {},
  };
  return { ...loaded, model, dispose: () => {}, [Symbol.asyncDispose]: async () => {} };
}

const prompts = [
  'Once upon a time, there was a little dog',
  'Lily and Tom went to the park',
  'One day, a big bird',
  'The sun was hot. Ben wanted',
  'Sara had a red ball',
  'Tim saw a cat on the',
];

const requests: SamplingParams[] = [
  { temperature: 0.8, seed: 11, speculative: { method: 'draft', k: 4 } },
  { temperature: 1.0, seed: 12, topK: 20, topP: 0.9, speculative: { method: 'draft', k: 3 } },
  { temperature: 1.2, seed: 13, repetitionPenalty: 1.2, presencePenalty: 0.3, speculative: { method: 'draft', k: 2 } },
  { temperature: 0, repetitionPenalty: 1.3, speculative: { method: 'draft', k: 4 } },
  { temperature: 0.9, seed: 14, minP: 0.05, speculative: { method: 'ngram', k: 4 } },
  { temperature: 0.7, seed: 15, logprobs: 2, speculative: { method: 'draft', k: 3 } },
];

describeWithModels('native verify in the engine (stories260K + llama2xs-260K)', () => {
  let target: LoadedModel;
  let draft: LoadedModel;
  beforeAll(async () => {
    const load = { tokenizerPath: models.tok512, numThreads: 1, device: 'cpu' as const };
    target = await loadModel(models.stories260K, { ...load, maxBatchTokens: 512, maxBatchSeqs: 16 });
    draft = await loadModel(models.llama2xs260K, { ...load, maxBatchTokens: 512, maxBatchSeqs: 16 });
  });
  afterAll(() => {
    target?.dispose();
    draft?.dispose();
  });

  const engine = (t: LoadedModel, d: LoadedModel) =>
    LLMEngine.create({
      model: t,
      maxNumBatchedTokens: 512,
      maxNumSeqs: 16,
      enablePrefixCaching: false,
      speculative: { k: 4, draftModel: d },
    });

  it('gives the tokens of the TypeScript verification, batched and alone', async () => {
    const counted = { calls: 0 };
    const outputs = async (t: LoadedModel, d: LoadedModel, batched: boolean) => {
      await using e = await engine(t, d);
      const go = (p: string, i: number) =>
        run(e, p, { maxTokens: 40, ...requests[i % requests.length]! }).then((c) => c.tokenIds);
      const out = batched ? await Promise.all(prompts.map(go)) : [];
      if (!batched) for (const [i, p] of prompts.entries()) out.push(await go(p, i));
      const s = e.stats().speculative!;
      expect(s.drafts).toBeGreaterThan(0);
      return out;
    };
    const ts = await outputs(wrap(target, 'hide'), draft, true);
    const nativeBatched = await outputs(wrap(target, counted), draft, true);
    expect(counted.calls).toBeGreaterThan(0);
    expect(nativeBatched).toEqual(ts);
    const before = counted.calls;
    const nativeAlone = await outputs(wrap(target, counted), draft, false);
    expect(nativeAlone).toEqual(ts);
    expect(counted.calls).toBeGreaterThan(before);
    expect(ts.every((t) => t.length === 40)).toBe(true);
  });

  it('SessionVerifier: native verify gives the tokens of the TypeScript one', async () => {
    const drafter = new SessionDrafter(draft.model, { maxNumBatchedTokens: 512 });
    const nativeV = new SessionVerifier(target.model, { maxNumBatchedTokens: 512 });
    const tsV = new SessionVerifier(wrap(target, 'hide').model, { maxNumBatchedTokens: 512 });
    for (const [i, sp] of [
      { temperature: 0.9, seed: 5 },
      { temperature: 0, repetitionPenalty: 1.2 },
      { temperature: 1.1, seed: 6, topK: 30 },
    ].entries()) {
      const tokens = [1, 403, 30, 11 + i];
      const params = resolveSamplingParams(
        { ...sp, maxTokens: 64 },
        { maxModelLen: 256, vocabSize: 512, promptLen: 4 },
      );
      let accepted = 0;
      for (let round = 0; round < 8; round++) {
        const call = { requestId: `r${i}`, tokenIds: [...tokens], params, seed: sp.seed ?? 0 };
        const prop = await drafter.propose(call, 4);
        const a = await nativeV.verify(call, prop.tokens, prop.q);
        const b = await tsV.verify(call, prop.tokens, prop.q);
        expect(a).toEqual(b);
        accepted += a.numAccepted;
        tokens.push(...a.tokens);
      }
      expect(accepted).toBeGreaterThan(0);
      drafter.release(`r${i}`);
      nativeV.release(`r${i}`);
      tsV.release(`r${i}`);
    }
  });
});
