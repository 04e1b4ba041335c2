/**
 * GGUF Q8_0 / Q4_0 tensors are used as they lie in the file (weightFormat 'auto'); the same file
 * dequantized to f32 at load must give nearly the same logits (they differ only by the int8
 * activations of the integer kernels), and both kernels paths must agree.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, it, describe } from 'vitest';
import { makeRandomModel } from '../../packages/engine/src/model-loader/random-model.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeLoadOptions, NativeWeightFormat } from '../../packages/engine/src/native/native-types.js';
import { logSoftmax, prefillLogits } from './native-harness.js';

const CONFIG = { dim: 64, hiddenDim: 160, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 320, maxSeqLen: 64 };
const TOKENS = Array.from({ length: 24 }, (_, i) => (i * 37 + 1) % CONFIG.vocabSize);

describe('native GGUF quantized tensors', () => {
  let dir: string;
  const manifests = new Map<string, NativeLoadOptions>();
  beforeAll(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'flotilla-gguf-'));
    for (const dtype of ['q8_0', 'q4_0'] as const) {
      const file = await makeRandomModel(CONFIG, { format: 'gguf', dtype, dir, name: dtype, seed: 5, std: 0.08 });
      const spec = await readModelSpec(file);
      manifests.set(dtype, { config: spec.config, files: spec.files, tensors: spec.tensors, numBlocks: 8 });
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  for (const dtype of ['q8_0', 'q4_0'] as const) {
    it(`${dtype}: in place (auto) matches the same weights dequantized to f32`, async () => {
      const m = manifests.get(dtype)!;
      expect(m.tensors.some((t) => t.dtype === dtype)).toBe(true);
      const load = (weightFormat: NativeWeightFormat) => loadNative().loadModel({ ...m, weightFormat });
      const [direct, f32] = await Promise.all([load('auto'), load('f32')]);
      expect(direct.weightBytes).toBeLessThan(f32.weightBytes / 3);
      const [a, b] = await Promise.all([prefillLogits(direct, TOKENS), prefillLogits(f32, TOKENS)]);
      let kl = 0;
      a.forEach((row, i) => {
        const p = logSoftmax(b[i]),
          q = logSoftmax(row);
        p.forEach((lp, j) => (kl += Math.exp(lp) * (lp - q[j])));
      });
      expect(kl / a.length).toBeLessThan(1e-3);
      direct.dispose();
      f32.dispose();
    });
  }
});
