import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { makeRandomModel, readModelSpec } from '../../packages/engine/src/model-loader/index.js';
import { makeRandomDraftPair } from '../../packages/engine/src/model-loader/random-draft-pair.js';
import { maxAbsDiff, readTensor } from '../fixtures/tensors.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'flotilla-spec-pair-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const cfg = { dim: 64, hiddenDim: 96, nLayers: 4, nHeads: 4, nKvHeads: 2, vocabSize: 300, maxSeqLen: 64 };

describe('makeRandomDraftPair', () => {
  it('shares embeddings, norms and the first layers; scales wo/w2 of the later target layers only', async () => {
    const pair = await makeRandomDraftPair(cfg, {
      dir: path.join(tmp, 'pair'),
      draftLayers: 2,
      residualScale: 0.25,
      seed: 3,
    });
    const plain = await makeRandomModel(cfg, { format: 'safetensors', dir: path.join(tmp, 'plain'), seed: 3 });
    const [target, draft, ref] = await Promise.all([
      readModelSpec(pair.target),
      readModelSpec(pair.draft),
      readModelSpec(plain),
    ]);
    expect(target.config).toEqual(ref.config);
    expect(draft.config).toEqual({ ...ref.config, nLayers: 2 });
    expect(draft.tokenizer.vocabSize).toBe(target.tokenizer.vocabSize);
    for (const t of draft.tensors)
      expect(maxAbsDiff(readTensor(draft, t.name), readTensor(target, t.name)), t.name).toBe(0);
    for (const t of target.tensors) {
      const scaled = /^layers\.[23]\.(wo|w2)$/.test(t.name);
      const want = readTensor(ref, t.name).map((x) => (scaled ? Math.fround(x * 0.25) : x));
      expect(maxAbsDiff(readTensor(target, t.name), want), t.name).toBe(0);
    }
  });

  it('rejects a draft as deep as the target', async () => {
    await expect(makeRandomDraftPair(cfg, { dir: path.join(tmp, 'bad'), draftLayers: 4 })).rejects.toThrow(RangeError);
  });
});
