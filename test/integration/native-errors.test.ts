/**
 * Bad input never crashes the process: malformed step batches reject with E_BATCH, bad manifests
 * with a typed code naming the file and tensor, and a disposed model throws E_DISPOSED.
 */
import { copyFileSync, mkdtempSync, rmSync, truncateSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type {
  NativeBinding,
  NativeLoadOptions,
  NativeModel,
  NativeStepBatch,
} from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { describeWithModels, models } from '../helpers/models.js';
import { Blocks, buildBatch, llama2cManifest, Seq } from './native-harness.js';

async function rejection(p: Promise<unknown>): Promise<{ code?: string; message: string }> {
  try {
    await p;
  } catch (err) {
    return err as { code?: string; message: string };
  }
  throw new Error('expected a rejection');
}

describeWithModels('native errors', () => {
  let binding: NativeBinding;
  let model: NativeModel;
  let tmp: string;
  beforeAll(async () => {
    binding = loadNative();
    model = await binding.loadModel({
      ...llama2cManifest(models.stories260K),
      numBlocks: 8,
      maxBatchTokens: 64,
      maxBatchSeqs: 4,
    });
    tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-native-'));
  });
  afterAll(() => {
    model?.dispose();
    rmSync(tmp, { recursive: true, force: true });
  });

  const good = (): NativeStepBatch => buildBatch(model, new Blocks(model), [{ seq: new Seq([1, 403, 407]), n: 3 }]);
  const badBatches: [string, (b: NativeStepBatch) => NativeStepBatch][] = [
    ['token id out of range', (b) => ({ ...b, tokenIds: Int32Array.from([1, 9999, 2]) })],
    ['negative token id', (b) => ({ ...b, tokenIds: Int32Array.from([1, -1, 2]) })],
    ['slot beyond the pool', (b) => ({ ...b, slotMapping: Int32Array.from([0, 1, 8 * 16]) })],
    ['block id beyond the pool', (b) => ({ ...b, blockTables: Int32Array.from([8]) })],
    ['position outside the context', (b) => ({ ...b, positions: Int32Array.from([0, 1, 5]) })],
    ['queryStartLoc not ending at numTokens', (b) => ({ ...b, queryStartLoc: Int32Array.from([0, 2]) })],
    ['too many tokens', (b) => ({ ...b, numTokens: 65 })],
    ['too many sequences', (b) => ({ ...b, numSeqs: 5 })],
    ['short arrays', (b) => ({ ...b, tokenIds: new Int32Array(1) })],
    ['wrong array type', (b) => ({ ...b, tokenIds: new Float32Array(3) as unknown as Int32Array })],
    ['missing field', (b) => ({ ...b, seeds: undefined as unknown as Uint32Array })],
    ['context longer than the block table', (b) => ({ ...b, contextLens: Int32Array.from([17]) })],
    ['topP of 0', (b) => ({ ...b, topP: Float32Array.from([0]) })],
    ['too many logprobs', (b) => ({ ...b, numLogprobs: Int32Array.from([21]) })],
    ['penalty token out of range', (b) => ({ ...b, penaltyTokens: Int32Array.from([1, 2, 600]) })],
    [
      'bias token out of range',
      (b) => ({
        ...b,
        biasOffsets: Int32Array.from([0, 1]),
        biasTokens: Int32Array.from([600]),
        biasValues: Float32Array.from([1]),
      }),
    ],
    [
      'bias offsets past the bias arrays',
      (b) => ({
        ...b,
        biasOffsets: Int32Array.from([0, 2]),
        biasTokens: Int32Array.from([5]),
        biasValues: Float32Array.from([1]),
      }),
    ],
    ['bias offsets without bias tokens', (b) => ({ ...b, biasOffsets: Int32Array.from([0, 0]) })],
    [
      'a bias token twice',
      (b) => ({
        ...b,
        biasOffsets: Int32Array.from([0, 2]),
        biasTokens: Int32Array.from([5, 5]),
        biasValues: Float32Array.from([1, 2]),
      }),
    ],
    [
      'a NaN bias',
      (b) => ({
        ...b,
        biasOffsets: Int32Array.from([0, 1]),
        biasTokens: Int32Array.from([5]),
        biasValues: Float32Array.from([NaN]),
      }),
    ],
    [
      'short bias offsets',
      (b) => ({
        ...b,
        biasOffsets: Int32Array.from([0]),
        biasTokens: new Int32Array(0),
        biasValues: new Float32Array(0),
      }),
    ],
  ];
  for (const [what, mutate] of badBatches) {
    it(`rejects a batch with ${what} (E_BATCH)`, async () => {
      const err = await rejection(model.step(mutate(good())));
      expect(err.code).toBe('E_BATCH');
      expect(err.message).toMatch(/step batch/);
    });
  }

  it('still steps correctly after bad batches', async () => {
    const r = await model.step(good());
    expect(r.tokens.length).toBe(1);
    expect(r.tokens[0]).toBeGreaterThanOrEqual(0);
  });

  const manifest = (): NativeLoadOptions => ({ ...llama2cManifest(models.stories260K), numBlocks: 4 });
  const badManifests: [string, string, RegExp, (m: NativeLoadOptions) => NativeLoadOptions][] = [
    [
      'a missing tensor',
      'E_SHAPE',
      /layers\.2\.wq.*missing/,
      (m) => ({ ...m, tensors: m.tensors.filter((t) => t.name !== 'layers.2.wq') }),
    ],
    [
      'a wrong shape',
      'E_SHAPE',
      /stories260K\.bin: tensor 'layers\.0\.w1' has shape \[172,63\]/,
      (m) => ({ ...m, tensors: m.tensors.map((t) => (t.name === 'layers.0.w1' ? { ...t, shape: [172, 63] } : t)) }),
    ],
    [
      'an offset past the end',
      'E_RANGE',
      /stories260K\.bin: tensor 'norm'/,
      (m) => ({ ...m, tensors: m.tensors.map((t) => (t.name === 'norm' ? { ...t, offset: 1_056_540 } : t)) }),
    ],
    [
      'an unknown dtype',
      'E_DTYPE',
      /tensor 'layers\.1\.wk' has unsupported dtype 'q6_k'/,
      (m) => ({
        ...m,
        tensors: m.tensors.map((t) => (t.name === 'layers.1.wk' ? { ...t, dtype: 'q6_k' as never } : t)),
      }),
    ],
    [
      'q8_0 rows not whole blocks',
      'E_SHAPE',
      /w2' is q8_0 but its rows \(172\)/,
      (m) => ({ ...m, tensors: m.tensors.map((t) => (t.name === 'layers.0.w2' ? { ...t, dtype: 'q8_0' } : t)) }),
    ],
    ['a missing file', 'E_FILE', /nope\.bin: cannot open/, (m) => ({ ...m, files: ['/nonexistent/nope.bin'] })],
    [
      'a bad file index',
      'E_FILE',
      /file index 3/,
      (m) => ({ ...m, tensors: m.tensors.map((t) => (t.name === 'norm' ? { ...t, file: 3 } : t)) }),
    ],
    ['an inconsistent config', 'E_SHAPE', /nHeads/, (m) => ({ ...m, config: { ...m.config, nHeads: 7 } })],
    ['an unknown weight format', 'E_DTYPE', /weightFormat/, (m) => ({ ...m, weightFormat: 'int3' as never })],
    ['a cuda device on a CPU build', 'E_DEVICE', /CUDA/, (m) => ({ ...m, device: 'cuda' })],
    ['a KV budget below one block', 'E_OOM', /KV block/, (m) => ({ ...m, numBlocks: undefined, kvCacheBytes: 100 })],
  ];
  for (const [what, code, message, mutate] of badManifests) {
    it(`rejects a manifest with ${what} (${code})`, async () => {
      const err = await rejection(binding.loadModel(mutate(manifest())));
      expect(err.code).toBe(code);
      expect(err.message).toMatch(message);
    });
  }

  it('rejects a truncated file with E_RANGE naming it', async () => {
    const cut = path.join(tmp, 'cut.bin');
    copyFileSync(models.stories260K, cut);
    truncateSync(cut, 500_000);
    const err = await rejection(binding.loadModel({ ...llama2cManifest(models.stories260K), files: [cut] }));
    expect(err.code).toBe('E_RANGE');
    expect(err.message).toContain(cut);
  });

  it('a disposed model throws E_DISPOSED; a step in flight either completes or rejects E_DISPOSED', async () => {
    const m = await binding.loadModel({ ...manifest(), numBlocks: 4 });
    const inflight = m.step(buildBatch(m, new Blocks(m), [{ seq: new Seq([1, 2, 3]), n: 3 }]));
    m.dispose();
    await inflight.then(
      (r) => expect(r.tokens.length).toBe(1), // it had started: the weights stay until it ends
      (err) => expect(err.code).toBe('E_DISPOSED'),
    );
    expect(() => m.step(good())).toThrow(expect.objectContaining({ code: 'E_DISPOSED' }));
    m.dispose();
  });
});
