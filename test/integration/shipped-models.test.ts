/**
 * The model pair the project ships (models/flotilla-stories, made by tools/train/): it loads, writes the
 * recorded greedy text at temperature 0, and the draft still agrees with the target about as often as
 * tools/train/eval.py measured in PyTorch. goldens.json is written by eval.py from the same f16 files.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { LoadedModel } from '../../packages/engine/src/model-loader/index.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/index.js';
import type { NativeModel, NativeStepBatch } from '../../packages/engine/src/native/native-types.js';
import { repoRoot } from '../helpers/models.js';

const dir = path.join(repoRoot, 'models', 'flotilla-stories');
const targetDir = path.join(dir, 'target');
const draftDir = path.join(dir, 'draft');
const shipped =
  existsSync(path.join(targetDir, 'model.safetensors')) && existsSync(path.join(draftDir, 'model.safetensors'));

interface Goldens {
  target_greedy_from_bos: { ids: number[]; first_sentence: string };
  draft_greedy_from_bos: { first_sentence: string };
  agreement_from_bos: { rate: number; positions: number };
  prompts: { prompt: string; target_t0_first_sentence: string }[];
}
const goldens: Goldens | null = shipped ? JSON.parse(readFileSync(path.join(dir, 'goldens.json'), 'utf8')) : null;

/** The addon, where it is built: tests that run the model skip without it. */
async function tryLoadNative(): Promise<boolean> {
  const loader = path.join(repoRoot, 'packages/engine/src/native/load-native.ts');
  if (!existsSync(loader)) return false;
  try {
    const { loadNative } = await import(pathToFileURL(loader).href);
    loadNative();
    return true;
  } catch {
    return false;
  }
}
const haveNative = shipped && (await tryLoadNative());

/** MARGIN below the measured agreement: f16 arithmetic in the engine may flip a few near-ties. */
const AGREEMENT_MARGIN = 0.1;
const MAX_NEW = 200;

/** A one-sequence batch over `ids` at positions start.. (identity block table: slot = position). */
function batchFor(model: NativeModel, ids: number[], start: number): NativeStepBatch {
  const n = ids.length;
  const maxBlocksPerSeq = Math.ceil(model.config.maxSeqLen / model.blockSize);
  return {
    numSeqs: 1,
    numTokens: n,
    tokenIds: Int32Array.from(ids),
    positions: Int32Array.from(ids, (_, i) => start + i),
    slotMapping: Int32Array.from(ids, (_, i) => start + i),
    queryStartLoc: Int32Array.of(0, n),
    contextLens: Int32Array.of(start + n),
    blockTables: Int32Array.from({ length: maxBlocksPerSeq }, (_, i) => i),
    maxBlocksPerSeq,
    sampleMask: Uint8Array.of(1),
    temperature: Float32Array.of(0),
    topK: Int32Array.of(0),
    topP: Float32Array.of(1),
    minP: Float32Array.of(0),
    repetitionPenalty: Float32Array.of(1),
    presencePenalty: Float32Array.of(0),
    frequencyPenalty: Float32Array.of(0),
    seeds: Uint32Array.of(1234),
    penaltyTokens: new Int32Array(0),
    penaltyOffsets: Int32Array.of(0, 0),
    penaltyPromptLens: Int32Array.of(0),
    numLogprobs: Int32Array.of(0),
  };
}

/** Greedy decoding through the native step: prefill the prompt, then one token per step until EOS. */
async function greedy(m: LoadedModel, prompt: number[], maxNew = MAX_NEW): Promise<number[]> {
  const ids = [...prompt];
  let next = (await m.model.step(batchFor(m.model, ids, 0))).tokens[0]!;
  for (let i = 0; i < maxNew; i++) {
    ids.push(next);
    if (m.spec.stopTokenIds.includes(next) || ids.length >= m.model.config.maxSeqLen) break;
    next = (await m.model.step(batchFor(m.model, [next], ids.length - 1))).tokens[0]!;
  }
  return ids;
}

function firstSentence(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const quotesBefore = text.slice(0, i).split('"').length - 1;
    if ('.!?'.includes(text[i]!) && (i + 1 === text.length || text[i + 1] === ' ') && quotesBefore % 2 === 0) {
      return text.slice(0, i + 1);
    }
  }
  return text;
}

async function load(modelDir: string): Promise<LoadedModel> {
  const { loadModel } = await import('../../packages/engine/src/model-loader/index.js');
  return loadModel(modelDir, { numThreads: 1, kvCacheBytes: 8 << 20 });
}

describe.skipIf(!shipped)('shipped models: models/flotilla-stories', () => {
  it('reads both as Llama safetensors sharing one tokenizer', async () => {
    const target = await readModelSpec(targetDir);
    const draft = await readModelSpec(draftDir);
    expect(target.format).toBe('safetensors');
    expect(draft.format).toBe('safetensors');
    expect(target.config.vocabSize).toBe(draft.config.vocabSize);
    expect(target.config.ropeLayout).toBe('half');
    expect(target.tensors.every((t) => t.dtype === 'f16')).toBe(true);
    expect(target.stopTokenIds).toContain(2);
    // The target is the larger model: at least 5x the draft's weights touched per token.
    const weights = (s: typeof target) =>
      s.tensors.filter((t) => t.name !== 'tok_embeddings').reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0) +
      (s.config.tiedEmbeddings ? s.config.vocabSize * s.config.dim : 0);
    expect(weights(target) / weights(draft)).toBeGreaterThan(5);
    const text = goldens!.target_greedy_from_bos.first_sentence;
    const ids = target.tokenizer.encode(text);
    expect(ids[0]).toBe(target.bosId);
    expect(target.tokenizer.decode(ids)).toBe(text);
    expect(draft.tokenizer.encode(text)).toEqual(ids);
  });

  it.skipIf(!haveNative)('target writes the recorded story at temperature 0', async () => {
    const target = await load(targetDir);
    try {
      const ids = await greedy(target, [target.spec.bosId]);
      const text = target.tokenizer.decode(ids);
      expect(firstSentence(text)).toBe(goldens!.target_greedy_from_bos.first_sentence);
      expect(ids.slice(0, 17)).toEqual(goldens!.target_greedy_from_bos.ids.slice(0, 17));
      for (const p of goldens!.prompts.slice(0, 2)) {
        const out = target.tokenizer.decode(await greedy(target, target.tokenizer.encode(p.prompt), 60));
        expect(firstSentence(out)).toBe(p.target_t0_first_sentence);
      }
    } finally {
      target.dispose();
    }
  });

  it.skipIf(!haveNative)('draft writes its recorded first sentence and agrees with the target', async () => {
    const target = await load(targetDir);
    const draft = await load(draftDir);
    try {
      await checkDraft(target, draft);
    } finally {
      draft.dispose();
      target.dispose();
    }
  });
});

async function checkDraft(target: LoadedModel, draft: LoadedModel): Promise<void> {
  const draftText = draft.tokenizer.decode(await greedy(draft, [draft.spec.bosId], 60));
  expect(firstSentence(draftText)).toBe(goldens!.draft_greedy_from_bos.first_sentence);

  // Along the target's greedy output, how often is the draft's argmax the target's next token?
  const seq = await greedy(target, [target.spec.bosId]);
  const rows = seq.length - 1;
  const logits = await draft.model.logits(batchFor(draft.model, seq.slice(0, rows), 0), Int32Array.of(rows));
  const vocab = draft.model.config.vocabSize;
  let hits = 0;
  for (let r = 0; r < rows; r++) {
    let best = 0;
    for (let v = 1; v < vocab; v++) if (logits[r * vocab + v]! > logits[r * vocab + best]!) best = v;
    if (best === seq[r + 1]) hits++;
  }
  expect(hits / rows).toBeGreaterThan(goldens!.agreement_from_bos.rate - AGREEMENT_MARGIN);
}
