/**
 * The LoRA trainer's hand-written backward pass (tools/lora-train) against central finite differences
 * of its own forward loss, in float64 on a tiny random Llama: GQA (4 query heads on 2 kv heads), two
 * layers, LoRA on all seven sites with non-zero B (so A's gradient is not trivially 0), tied and untied
 * classifiers. Every LoRA tensor of every layer is probed; the gradients of layer 0 pass through the
 * whole backward chain (classifier, final norm, MLP, attention, RoPE, both RMSNorms of both layers).
 */
import { describe, expect, it } from 'vitest';
import { type BaseWeights, randomBaseWeights } from '../../tools/lora-train/base-weights.js';
import { backward } from '../../tools/lora-train/backward.js';
import { crossEntropy, forward } from '../../tools/lora-train/forward.js';
import { LoraParams } from '../../tools/lora-train/lora-params.js';
import { ALL_LORA_MODULES } from '../../packages/engine/src/model-loader/writers/peft-writer.js';

const config = {
  dim: 16,
  hiddenDim: 24,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 20,
  maxSeqLen: 32,
  ropeTheta: 10000,
  ropeLayout: 'half' as const,
  normEps: 1e-5,
  tiedEmbeddings: true,
};
const ids = [1, 5, 9, 3, 17, 5, 0, 12, 19, 7];

function lossOf(base: BaseWeights, lora: LoraParams): number {
  const tape = forward(base, ids, lora);
  return crossEntropy(tape.logits, ids, config.vocabSize, ids.length - 1).loss;
}

describe('LoRA trainer gradients (finite differences, float64)', () => {
  for (const tied of [true, false]) {
    it(`match the analytic backward on every LoRA tensor (${tied ? 'tied' : 'untied'} classifier)`, () => {
      const base = randomBaseWeights({ ...config, tiedEmbeddings: tied }, 11, Float64Array);
      const lora = new LoraParams(base, { rank: 3, alpha: 6, targetModules: ALL_LORA_MODULES, seed: 5, bStd: 0.3 });
      const tape = forward(base, ids, lora);
      const { dlogits } = crossEntropy(tape.logits, ids, config.vocabSize, ids.length - 1);
      lora.zeroGrad();
      backward(base, tape, dlogits, lora);
      const eps = 1e-5;
      let probed = 0;
      let worst = 0;
      for (const { value, grad } of lora.tensors()) {
        // Five entries per tensor, spread over it.
        for (let j = 0; j < 5; j++) {
          const i = Math.floor(((j + 0.5) / 5) * value.length);
          const keep = value[i]!;
          value[i] = keep + eps;
          const up = lossOf(base, lora);
          value[i] = keep - eps;
          const down = lossOf(base, lora);
          value[i] = keep;
          const numeric = (up - down) / (2 * eps);
          const err = Math.abs(numeric - grad[i]!) / Math.max(1e-6, Math.abs(numeric) + Math.abs(grad[i]!));
          worst = Math.max(worst, err);
          expect(err, `tensor entry ${i}: numeric ${numeric} vs analytic ${grad[i]}`).toBeLessThan(1e-5);
          probed++;
        }
      }
      expect(probed).toBe(2 * 7 * 2 * 5);
      // The check is not vacuous: the gradients are far from zero.
      expect(Math.max(...lora.tensors().map((t) => Math.max(...t.grad.map(Math.abs))))).toBeGreaterThan(1e-3);
      expect(worst).toBeLessThan(1e-5);
    });
  }
});
