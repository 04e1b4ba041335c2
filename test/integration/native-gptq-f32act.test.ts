/**
 * GPTQ and AWQ checkpoints (the project's RTN writer, real Hugging Face layouts) loaded with activations
 * 'f32': the repacked 4/8-bit weights (Q4_0, Q8_0, Q4_Z, Q8_Z panels or rows, act order included) are
 * widened in registers against the unquantized activations, so the logits equal those of an f32 manifest
 * of the dequantized weights within 1e-3 (issue #26), on every kernel set this CPU runs
 * (FLOTILLA_CPU_ISA is read when a model loads). The weights stay as small as with int8 activations, and
 * the int8 path keeps its own, larger, gap (native-gptq.test.ts), so the option is what makes the difference.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel } from '../../packages/engine/src/model-loader/load-model.js';
import { readModelSpec } from '../../packages/engine/src/model-loader/read-model-spec.js';
import {
  makeRandomQuantizedModel,
  randomQuantizedWeights,
} from '../../packages/engine/src/model-loader/random-quantized-model.js';
import type { QuantScheme } from '../../packages/engine/src/model-loader/writers/gptq-quantize.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import type { NativeLoadOptions, NativeModel } from '../../packages/engine/src/native/native-types.js';
import { referenceManifest } from './gptq-reference.js';
import { prefillLogits } from './native-harness.js';

// as native-gptq.test.ts: w2's 352 inputs are 2.75 groups of 128
const CONFIG = { dim: 128, hiddenDim: 352, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 320, maxSeqLen: 64 };
const TOKENS = Array.from({ length: 20 }, (_, i) => (i * 37 + 1) % CONFIG.vocabSize);
const SEED = 3;
const MAX_DIFF = 1e-3; // the bound; logit rms ~0.93
const INT8_MIN_DIFF = 0.01; // int8 activations: measured 0.066-0.097 here

const SCHEMES: Record<string, QuantScheme> = {
  'gptq 4-bit sym g128 (q4_0)': { method: 'gptq', bits: 4, groupSize: 128, sym: true },
  'gptq 4-bit asym g32 (q4_z)': { method: 'gptq', bits: 4, groupSize: 32, sym: false },
  'gptq 4-bit asym per-channel (q4_z)': { method: 'gptq', bits: 4, groupSize: -1, sym: false },
  'gptq 8-bit sym g128 (q8_0)': { method: 'gptq', bits: 8, groupSize: 128, sym: true },
  'gptq 8-bit asym g64 (q8_z)': { method: 'gptq', bits: 8, groupSize: 64, sym: false },
  'gptq 4-bit sym g128 desc_act (q4_0)': { method: 'gptq', bits: 4, groupSize: 128, sym: true, descAct: true },
  'gptq 4-bit asym g64 desc_act (q4_z)': { method: 'gptq', bits: 4, groupSize: 64, sym: false, descAct: true },
  'gptq 4-bit asym g32 desc_act per layer (q4_z)': {
    method: 'gptq',
    bits: 4,
    groupSize: 32,
    sym: false,
    descAct: 'per-layer',
  },
  'awq 4-bit g128 (q4_z)': { method: 'awq', bits: 4, groupSize: 128 },
};

function maxAbsDiff(a: Float32Array[], b: Float32Array[]): number {
  let m = 0;
  a.forEach((row, i) => row.forEach((v, j) => (m = Math.max(m, Math.abs(v - b[i]![j]!)))));
  return m;
}

async function loadWithIsa(isa: string, o: NativeLoadOptions): Promise<NativeModel> {
  const before = process.env.FLOTILLA_CPU_ISA;
  process.env.FLOTILLA_CPU_ISA = isa;
  try {
    return await loadNative().loadModel({ ...o, numBlocks: 8 });
  } finally {
    if (before === undefined) delete process.env.FLOTILLA_CPU_ISA;
    else process.env.FLOTILLA_CPU_ISA = before;
  }
}

describe('native GPTQ / AWQ checkpoints with activations f32', () => {
  const f = loadNative().cpuFeatures();
  const isas = ['scalar', ...(f.avx2 ? ['avx2'] : []), ...(f.avx512 ? ['avx512'] : [])];
  let tmp: string;
  beforeAll(() => {
    tmp = mkdtempSync(path.join(os.tmpdir(), 'flotilla-gptq-f32act-'));
  });
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  for (const [label, scheme] of Object.entries(SCHEMES)) {
    it(`${label}: logits within ${MAX_DIFF} of the dequantized f32 reference on ${isas.join(', ')}`, async () => {
      const dir = path.join(tmp, label.replace(/[^a-z0-9]+/gi, '-'));
      await makeRandomQuantizedModel(CONFIG, { dir, scheme, seed: SEED, std: 0.08 });
      const spec = await readModelSpec(dir);
      const weights = randomQuantizedWeights(CONFIG, SEED, 0.08);
      const ckpt = { config: spec.config, files: spec.files, tensors: spec.tensors };
      const f32 = await loadNative().loadModel({
        ...referenceManifest(spec, weights, scheme, SEED, 'f32', path.join(dir, 'ref-f32.bin')),
        numBlocks: 8,
      });
      const ref = await prefillLogits(f32, TOKENS);
      const figures: string[] = [];
      for (const isa of isas) {
        const exact = await loadWithIsa(isa, { ...ckpt, activations: 'f32' });
        const int8 = await loadWithIsa(isa, ckpt);
        expect(exact.kernels).toBe(isa);
        const d = maxAbsDiff(await prefillLogits(exact, TOKENS), ref);
        const d8 = maxAbsDiff(await prefillLogits(int8, TOKENS), ref);
        figures.push(`${isa} ${d.toExponential(2)} (int8 activations ${d8.toFixed(3)})`);
        expect(d).toBeLessThan(MAX_DIFF);
        expect(d8).toBeGreaterThan(INT8_MIN_DIFF);
        // the weights stay 4/8-bit: the same bytes as the int8-activation model's
        expect(exact.weightBytes).toBe(int8.weightBytes);
        expect(exact.weightBytes).toBeLessThan(f32.weightBytes * (scheme.bits === 8 ? 0.6 : 0.45));
        exact.dispose();
        int8.dispose();
      }
      console.log(`${label}: max |logit diff| vs f32 reference, activations f32: ${figures.join('; ')}`);
      f32.dispose();
    });
  }

  it('loadModel (what LLMEngine.create and LLMServer call) passes activations through', async () => {
    const scheme = SCHEMES['gptq 4-bit asym g64 desc_act (q4_z)']!;
    const dir = path.join(tmp, 'load-model');
    await makeRandomQuantizedModel(CONFIG, { dir, scheme, seed: SEED, std: 0.08 });
    const spec = await readModelSpec(dir);
    const weights = randomQuantizedWeights(CONFIG, SEED, 0.08);
    const f32 = await loadNative().loadModel({
      ...referenceManifest(spec, weights, scheme, SEED, 'f32', path.join(dir, 'ref-f32.bin')),
      numBlocks: 8,
    });
    const ref = await prefillLogits(f32, TOKENS);
    const exact = await loadModel(dir, { activations: 'f32', numBlocks: 8 });
    const int8 = await loadModel(dir, { numBlocks: 8 });
    expect(maxAbsDiff(await prefillLogits(exact.model, TOKENS), ref)).toBeLessThan(MAX_DIFF);
    expect(maxAbsDiff(await prefillLogits(int8.model, TOKENS), ref)).toBeGreaterThan(INT8_MIN_DIFF);
    exact.dispose();
    int8.dispose();
    f32.dispose();
  });

  it('an unknown activations value is refused with E_DTYPE', async () => {
    const dir = path.join(tmp, 'bad-activations');
    await makeRandomQuantizedModel(CONFIG, { dir, scheme: SCHEMES['awq 4-bit g128 (q4_z)']!, seed: SEED });
    const spec = await readModelSpec(dir);
    await expect(
      loadNative().loadModel({
        config: spec.config,
        files: spec.files,
        tensors: spec.tensors,
        numBlocks: 8,
        activations: 'f16' as 'f32',
      }),
    ).rejects.toMatchObject({ code: 'E_DTYPE', message: expect.stringContaining('activations') });
  });
});
