/**
 * The native forward pass on the real stories260K checkpoint: greedy text from BOS and top-5 logits
 * equal the goldens measured with llama2.c's run.c, on the kernels this machine picks and on the
 * scalar fallback (FLOTILLA_FORCE_SCALAR is read when a model loads).
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NativeBinding, NativeModel } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { describeWithModels, models } from '../helpers/models.js';
import { generate, goldens, llama2cManifest, prefillLogits, Seq, topK } from './native-harness.js';

async function loadWith(binding: NativeBinding, file: string, scalar: boolean): Promise<NativeModel> {
  const before = process.env.FLOTILLA_FORCE_SCALAR;
  if (scalar) process.env.FLOTILLA_FORCE_SCALAR = '1';
  else delete process.env.FLOTILLA_FORCE_SCALAR;
  try {
    return await binding.loadModel({ ...llama2cManifest(file), numBlocks: 64 });
  } finally {
    if (before === undefined) delete process.env.FLOTILLA_FORCE_SCALAR;
    else process.env.FLOTILLA_FORCE_SCALAR = before;
  }
}

for (const [name, file] of [
  ['stories260K', models.stories260K],
  ['llama2xs-260K', models.llama2xs260K],
] as const) {
  describeWithModels(`native forward: ${name}`, () => {
    let binding: NativeBinding;
    let simd: NativeModel;
    let scalar: NativeModel;
    beforeAll(async () => {
      binding = loadNative();
      simd = await loadWith(binding, file, false);
      scalar = await loadWith(binding, file, true);
    });
    afterAll(() => {
      simd?.dispose();
      scalar?.dispose();
    });

    it('reports its backend and kernels', () => {
      expect(simd.backend).toBe('cpu');
      expect(scalar.kernels).toBe('scalar');
      const f = binding.cpuFeatures();
      expect(simd.kernels).toBe(f.kernels);
      // With no override the best set the CPU runs is chosen (a build without AVX-512 falls back to avx2).
      if (!process.env.FLOTILLA_CPU_ISA && !process.env.FLOTILLA_FORCE_SCALAR) {
        expect(f.avx512 ? ['avx512', 'avx2'] : f.avx2 ? ['avx2'] : ['scalar']).toContain(simd.kernels);
      }
      expect(simd.weightBytes).toBeGreaterThan(0);
    });

    for (const which of ['simd', 'scalar'] as const) {
      it(`greedy from BOS equals run.c's 48 tokens (${which})`, async () => {
        const seq = new Seq([1]);
        await generate(which === 'simd' ? simd : scalar, [seq], 48);
        expect(seq.tokens).toEqual(goldens(name).greedy_from_bos_48);
      });

      it(`top-5 logits at positions 0, 4, 8 within 1e-3 (${which})`, async () => {
        const g = goldens(name);
        const rows = await prefillLogits(which === 'simd' ? simd : scalar, g.greedy_from_bos_48.slice(0, 9));
        for (const check of g.logits_check_on_first_9_tokens) {
          const row = rows[check.position];
          expect(topK(row, 5)).toEqual(check.top5_ids);
          check.top5_ids.forEach((id, i) => expect(Math.abs(row[id] - check.top5_logits[i])).toBeLessThan(1e-3));
        }
      });
    }

    it('an f16 KV cache keeps the greedy text; logits move by f16 rounding only', async () => {
      const m = await binding.loadModel({ ...llama2cManifest(file), numBlocks: 64, kvDtype: 'f16' });
      const seq = new Seq([1]);
      await generate(m, [seq], 48);
      expect(seq.tokens).toEqual(goldens(name).greedy_from_bos_48);
      const [a, b] = await Promise.all([prefillLogits(m, seq.tokens), prefillLogits(simd, seq.tokens)]);
      let worst = 0,
        sum = 0,
        n = 0;
      a.forEach((row, i) =>
        row.forEach((v, j) => {
          const d = Math.abs(v - b[i][j]);
          worst = Math.max(worst, d);
          sum += d;
          n++;
        }),
      );
      expect(worst).toBeLessThan(0.25); // measured 0.105 on llama2xs-260K (one logit of 25k)
      expect(sum / n).toBeLessThan(5e-3);
      m.dispose();
    });

    it('scalar and AVX2 logits agree to 1e-4 over 48 positions', async () => {
      const tokens = goldens(name).greedy_from_bos_48;
      const [a, b] = await Promise.all([prefillLogits(simd, tokens), prefillLogits(scalar, tokens)]);
      let worst = 0;
      a.forEach((row, i) => row.forEach((v, j) => (worst = Math.max(worst, Math.abs(v - b[i][j])))));
      expect(worst).toBeLessThan(1e-4);
    });
  });
}
