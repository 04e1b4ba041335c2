/**
 * Weight formats against f32 on stories260K: greedy agreement, mean KL of next-token distributions,
 * and perplexity on the model's own text (its greedy story and a seeded sample at temperature 1).
 * int8 must stay within 2% of f32's perplexity and int4 within 10%; the figures are printed.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { NativeModel, NativeWeightFormat } from '../../packages/engine/src/native/native-types.js';
import { loadNative } from '../../packages/engine/src/native/load-native.js';
import { describeWithModels, models } from '../helpers/models.js';
import { generate, llama2cManifest, logSoftmax, prefillLogits, Seq } from './native-harness.js';

const FORMATS: NativeWeightFormat[] = ['f32', 'f16', 'bf16', 'int8', 'int4'];
const PPL_BOUND: Partial<Record<NativeWeightFormat, number>> = { f16: 0.005, bf16: 0.02, int8: 0.02, int4: 0.1 };
const LENGTH = 200;

interface Stats {
  ppl: number[];
  agreement: number;
  kl: number;
  greedyPrefix: number;
}

describeWithModels('native weight formats: stories260K', () => {
  const loaded = new Map<NativeWeightFormat, NativeModel>();
  const texts: number[][] = [];
  const stats = new Map<NativeWeightFormat, Stats>();

  beforeAll(async () => {
    const binding = loadNative();
    for (const weightFormat of FORMATS) {
      loaded.set(
        weightFormat,
        await binding.loadModel({ ...llama2cManifest(models.stories260K), weightFormat, numBlocks: 64 }),
      );
    }
    const f32 = loaded.get('f32')!;
    const greedy = new Seq([1]);
    const sampled = new Seq([1], { temperature: 1, seed: 42 });
    await generate(f32, [greedy, sampled], LENGTH - 1);
    texts.push(greedy.tokens, sampled.tokens);

    const ref = await Promise.all(texts.map((t) => prefillLogits(f32, t)));
    for (const fmt of FORMATS) {
      const m = loaded.get(fmt)!;
      const rows = await Promise.all(texts.map((t) => prefillLogits(m, t)));
      let agree = 0,
        kl = 0,
        n = 0;
      const ppl = texts.map((t, k) => {
        let nll = 0;
        for (let i = 0; i + 1 < t.length; i++) {
          const p = logSoftmax(ref[k][i]),
            q = logSoftmax(rows[k][i]);
          nll -= q[t[i + 1]];
          let argP = 0,
            argQ = 0,
            d = 0;
          for (let j = 0; j < p.length; j++) {
            d += Math.exp(p[j]) * (p[j] - q[j]);
            if (p[j] > p[argP]) argP = j;
            if (q[j] > q[argQ]) argQ = j;
          }
          agree += argP === argQ ? 1 : 0;
          kl += d;
          n++;
        }
        return Math.exp(nll / (t.length - 1));
      });
      const free = new Seq([1]);
      await generate(m, [free], 48);
      let prefix = 0;
      while (prefix < free.tokens.length && free.tokens[prefix] === greedy.tokens[prefix]) prefix++;
      stats.set(fmt, { ppl, agreement: agree / n, kl: kl / n, greedyPrefix: prefix - 1 });
    }
    console.log(
      'format  ppl(greedy text)  ppl(sampled text)  top-1 agreement  mean KL   greedy tokens equal to f32 (of 48)',
    );
    for (const [fmt, s] of stats) {
      console.log(
        `${fmt.padEnd(6)}  ${s.ppl[0].toFixed(4).padStart(16)}  ${s.ppl[1].toFixed(4).padStart(17)}  ${(100 * s.agreement).toFixed(1).padStart(14)}%  ${s.kl.toExponential(2)}  ${s.greedyPrefix}`,
      );
    }
  });
  afterAll(() => loaded.forEach((m) => m.dispose()));

  it('reports smaller weights for smaller formats', () => {
    const bytes = (f: NativeWeightFormat) => loaded.get(f)!.weightBytes;
    expect(bytes('f16')).toBeLessThan(bytes('f32') * 0.55);
    expect(bytes('int8')).toBeLessThan(bytes('f32') * 0.35);
    expect(bytes('int4')).toBeLessThan(bytes('int8'));
  });

  for (const fmt of FORMATS.filter((f) => f !== 'f32')) {
    it(`${fmt}: perplexity within ${100 * PPL_BOUND[fmt]!}% of f32, high greedy agreement`, () => {
      const s = stats.get(fmt)!,
        ref = stats.get('f32')!;
      s.ppl.forEach((p, i) => expect(Math.abs(p / ref.ppl[i] - 1)).toBeLessThan(PPL_BOUND[fmt]!));
      expect(s.agreement).toBeGreaterThan(fmt === 'int4' ? 0.85 : 0.95);
      expect(s.kl).toBeLessThan(fmt === 'int4' ? 0.1 : 0.01);
    });
  }
});
