/**
 * DraftProposer's fused round (one native draft() call) proposes exactly what k single draft steps
 * propose, round after round with rejections rolled back, for greedy requests of several k in one
 * batch; and greedy speculative output through it still equals the target alone.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LLMEngine } from '../../packages/engine/src/llm-engine.js';
import { loadModel, type LoadedModel } from '../../packages/engine/src/model-loader/load-model.js';
import type { NativeModel } from '../../packages/engine/src/native/native-types.js';
import { resolveSamplingParams } from '../../packages/engine/src/sampling-params.js';
import { Sequence } from '../../packages/engine/src/sequence.js';
import { DraftProposer } from '../../packages/engine/src/spec-decode/draft-proposer.js';
import { run } from '../helpers/engine-suite.js';
import { describeWithModels, models } from '../helpers/models.js';

/** The same model without draft()/argmax(): the proposer falls back to one step() per token. */
function unfused(m: NativeModel): NativeModel {
  return {
    config: m.config,
    blockSize: m.blockSize,
    numBlocks: m.numBlocks,
    kvDtype: m.kvDtype,
    backend: m.backend,
    kernels: m.kernels,
    weightBytes: m.weightBytes,
    numThreads: m.numThreads,
    step: (b) => m.step(b),
    logits: (b, r) => m.logits(b, r),
    dispose: () => m.dispose(),
  };
}

function target(id: number, prompt: number[], vocabSize: number): Sequence {
  const params = resolveSamplingParams(
    { temperature: 0, maxTokens: 64 },
    { maxModelLen: 256, vocabSize, promptLen: prompt.length },
  );
  const seq = new Sequence({
    seqId: id,
    requestId: `r${id}`,
    index: 0,
    promptTokenIds: prompt,
    params,
    seed: id,
    stopTokenIds: [],
    blockSize: 16,
  });
  seq.status = 'running';
  return seq;
}

describeWithModels('fused draft rounds (llama2xs-260K)', () => {
  let draft: LoadedModel;
  beforeAll(async () => {
    draft = await loadModel(models.llama2xs260K, {
      tokenizerPath: models.tok512,
      numThreads: 1,
      device: 'cpu',
      maxBatchTokens: 256,
      maxBatchSeqs: 8,
    });
  });
  afterAll(() => draft?.dispose());

  it('propose() == k single steps, over rounds with partial acceptance', async () => {
    expect(draft.model.draft).toBeTypeOf('function');
    const opts = { maxNumBatchedTokens: 256, maxNumSeqs: 8, maxModelLen: 256 };
    const fused = new DraftProposer(draft.model, opts);
    const single = new DraftProposer(unfused(draft.model), opts);
    const V = draft.model.config.vocabSize;
    const prompts = [
      [1, 403, 30, 11],
      [1, 97],
      [1, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36],
    ];
    const ks = [4, 2, 3];
    const a = prompts.map((p, i) => target(i, p, V));
    const b = prompts.map((p, i) => target(i, p, V));
    for (let round = 0; round < 6; round++) {
      const pa = await fused.propose(a.map((seq, i) => ({ seq, k: ks[i]! })));
      const pb = await single.propose(b.map((seq, i) => ({ seq, k: ks[i]! })));
      expect(pa.map((p) => p.tokens)).toEqual(pb.map((p) => p.tokens));
      // The "target" keeps round % (k + 1) proposals then a token of its own, so shadows roll back.
      for (const [seqs, props] of [
        [a, pa],
        [b, pb],
      ] as const) {
        seqs.forEach((seq, i) => {
          const keep = props[i]!.tokens.slice(0, round % (ks[i]! + 1));
          for (const t of [...keep, 3 + ((round * 7 + i) % 50)]) seq.appendToken(t);
        });
      }
    }
    fused.reset();
    single.reset();
  });
});

describeWithModels('greedy speculative output through fused rounds (stories260K + llama2xs-260K)', () => {
  it('equals the target alone, batched', async () => {
    const engine = await LLMEngine.create({
      model: models.stories260K,
      numThreads: 1,
      device: 'cpu',
      speculative: { k: 4, draftModel: models.llama2xs260K, draftTokenizerPath: models.tok512 },
    });
    try {
      const prompts = ['Once upon a time', 'Lily and Tom went to the park', 'One day, a big bird'];
      const plain = await Promise.all(
        prompts.map((p) => run(engine, p, { temperature: 0, maxTokens: 40, speculative: false })),
      );
      const spec = await Promise.all(
        prompts.map((p, i) =>
          run(engine, p, { temperature: 0, maxTokens: 40, speculative: { method: 'draft', k: 2 + i } }),
        ),
      );
      expect(spec.map((c) => c.tokenIds)).toEqual(plain.map((c) => c.tokenIds));
      expect(engine.stats().speculative!.drafts).toBeGreaterThan(0);
    } finally {
      await engine.dispose();
    }
  });
});
