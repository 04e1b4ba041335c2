/**
 * GPTQ and AWQ checkpoints (Hugging Face layouts, written by the project's RTN writer) through the real
 * reader and addon: for each layout the logits equal those of a Q8_0 reference holding the same
 * integers (bit for bit: the same integer group sums, the same activation quantization), and stay near
 * an f32 reference of the dequantized weights (they differ by the int8 activations of the integer
 * kernels); desc_act, whose activations are gathered and quantized in act order, is held to the f32
 * reference (and so is 8-bit asymmetric GPTQ, whose q - zero does not fit Q8_0). Every layout held as
 * f32 (weightFormat) gives the f32 reference's logits bit for bit: the repack decodes to its values.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import {
  makeRandomQuantizedModel,
  randomQuantizedWeights,
} from '../../packages/engine/src/model-loader/random-quantized-model.js';
import type { QuantScheme } from '../../packages/engine/src/model-loader/writers/gptq-quantize.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeLoadOptions } from '../../packages/engine/src/native/native-types.js';
import { referenceManifest } from './gptq-reference.js';
import { logSoftmax, prefillLogits } from './native-harness.js';

// hiddenDim 352: w2's 352 inputs are 2.75 groups of 128 (a short last group), 11 blocks of 32
const CONFIG = { dim: 128, hiddenDim: 352, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 320, maxSeqLen: 64 };
const TOKENS = Array.from({ length: 20 }, (_, i) => (i * 37 + 1) % CONFIG.vocabSize);
const SEED = 3;
// f32 reference: the integer kernels quantize activations to int8 per 32, as for the engine's own
// int8/int4 weights. Measured on this model (logit rms ~0.93): max |diff| 0.066-0.097 for every layout,
// 8-bit GPTQ (nearly lossless weights) included, so the gap is the activations', not the weights'.
const F32_MAX_DIFF = 0.15;
const F32_MAX_KL = 1e-3;

const SCHEMES: Record<string, QuantScheme> = {
  'gptq 4-bit sym g128': { method: 'gptq', bits: 4, groupSize: 128, sym: true },
  'gptq 4-bit asym g32': { method: 'gptq', bits: 4, groupSize: 32, sym: false },
  'gptq 4-bit asym g64 (gptq_v2)': { method: 'gptq', bits: 4, groupSize: 64, sym: false, checkpointFormat: 'gptq_v2' },
  'gptq 4-bit sym per-channel': { method: 'gptq', bits: 4, groupSize: -1, sym: true },
  'gptq 4-bit asym per-channel': { method: 'gptq', bits: 4, groupSize: -1, sym: false },
  'gptq 8-bit sym g128': { method: 'gptq', bits: 8, groupSize: 128, sym: true },
  // q - zero spans 9 bits: no Q8_0 reference, the f32 one only
  'gptq 8-bit asym g64': { method: 'gptq', bits: 8, groupSize: 64, sym: false },
  'awq 4-bit g128': { method: 'awq', bits: 4, groupSize: 128 },
  'awq 4-bit g64': { method: 'awq', bits: 4, groupSize: 64 },
  'gptq 4-bit asym g64 desc_act': { method: 'gptq', bits: 4, groupSize: 64, sym: false, descAct: true },
  'gptq 4-bit sym g128 desc_act': { method: 'gptq', bits: 4, groupSize: 128, sym: true, descAct: true },
  // q|k|v (and gate|up) in different orders: the matmul quantizes the shared input once per order
  'gptq 4-bit asym g32 desc_act per layer': {
    method: 'gptq',
    bits: 4,
    groupSize: 32,
    sym: false,
    descAct: 'per-layer',
  },
};

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((row, i) => row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i]![j]!)))));
  return m;
}

function meanKl(ref: Float32Array[], got: Float32Array[]): number {
  let kl = 0;
  got.forEach((row, i) => {
    const p = logSoftmax(ref[i]!),
      q = logSoftmax(row);
    p.forEach((lp, j) => (kl += Math.exp(lp) * (lp - q[j]!)));
  });
  return kl / got.length;
}

describe('native GPTQ / AWQ checkpoints', () => {
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-gptq-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [label, scheme] of Object.entries(SCHEMES)) {
    it(`${label}: logits equal the same weights' references`, async () => {
      const dir = path.join(tmp, label.replace(/[^a-z0-9]+/gi, '-'));
      await makeRandomQuantizedModel(CONFIG, { dir, scheme, seed: SEED, std: 0.08 });
      const spec = await readModelSpec(dir);
      expect(spec.tensors.filter((t) => t.dtype === scheme.method)).toHaveLength(7 * CONFIG.nLayers);
      const weights = randomQuantizedWeights(CONFIG, SEED, 0.08);
      const load = (o: NativeLoadOptions) => loadNative().loadModel({ ...o, numBlocks: 8 });
      const model = await load({ config: spec.config, files: spec.files, tensors: spec.tensors });
      const f32 = await load(referenceManifest(spec, weights, scheme, SEED, 'f32', path.join(dir, 'ref-f32.bin')));
      const got = await prefillLogits(model, TOKENS);
      const viaF32 = maxAbsDiff(got, await prefillLogits(f32, TOKENS));
      const kl = meanKl(await prefillLogits(f32, TOKENS), got);
      if (!scheme.descAct && !(scheme.bits === 8 && scheme.sym === false)) {
        const q8 = await load(referenceManifest(spec, weights, scheme, SEED, 'q8_0', path.join(dir, 'ref-q8.bin')));
        const viaQ8 = maxAbsDiff(got, await prefillLogits(q8, TOKENS));
        console.log(
          `${label}: max |logit diff| vs q8_0 reference ${viaQ8}, vs f32 ${viaF32.toFixed(4)} (KL ${kl.toExponential(2)})`,
        );
        expect(viaQ8).toBe(0);
        q8.dispose();
      } else {
        console.log(`${label}: max |logit diff| vs f32 reference ${viaF32.toFixed(4)} (KL ${kl.toExponential(2)})`);
      }
      // held as f32 (weightFormat), the repacked blocks decode to the reference's values, columns back
      // in input order: the f32 reference's logits bit for bit
      const asF32 = await load({ config: spec.config, files: spec.files, tensors: spec.tensors, weightFormat: 'f32' });
      expect(maxAbsDiff(await prefillLogits(asF32, TOKENS), await prefillLogits(f32, TOKENS))).toBe(0);
      asF32.dispose();
      expect(viaF32).toBeLessThan(F32_MAX_DIFF);
      expect(kl).toBeLessThan(F32_MAX_KL);
      // 4-bit layers held at ~4.5-5 bits: far below the f32 reference's 32
      expect(model.weightBytes).toBeLessThan(f32.weightBytes * (scheme.bits === 8 ? 0.6 : 0.45));
      model.dispose();
      f32.dispose();
    });
  }

  it('symmetric 4-bit runs as q4_0 (smaller than q4_z with its zero points)', async () => {
    const sizes: number[] = [];
    for (const sym of [true, false]) {
      const dir = path.join(tmp, `size-${sym}`);
      await makeRandomQuantizedModel(CONFIG, {
        dir,
        scheme: { method: 'gptq', bits: 4, groupSize: 128, sym },
        seed: SEED,
      });
      const spec = await readModelSpec(dir);
      const m = await loadNative().loadModel({
        config: spec.config,
        files: spec.files,
        tensors: spec.tensors,
        numBlocks: 8,
      });
      sizes.push(m.weightBytes);
      m.dispose();
    }
    expect(sizes[0]).toBeLessThan(sizes[1]!);
  });
});
