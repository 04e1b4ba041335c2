/**
 * The LoRA training loop (tools/lora-train/trainer.ts) on a tiny random Llama in float32: Adam on the
 * LoRA matrices lowers the cross-entropy of the sequences it sees while the base weights stay untouched,
 * the adapter starts as the identity (B = 0: the base's loss exactly), and the run is reproducible
 * from its seed.
 */
import { describe, expect, it } from 'vitest';
import { randomBaseWeights } from '../../tools/lora-train/base-weights.js';
import { LoraParams } from '../../tools/lora-train/lora-params.js';
import { evaluate, train } from '../../tools/lora-train/trainer.js';

const config = {
  dim: 16,
  hiddenDim: 32,
  nLayers: 2,
  nHeads: 4,
  nKvHeads: 2,
  vocabSize: 24,
  maxSeqLen: 64,
  ropeTheta: 10000,
  ropeLayout: 'half' as const,
  normEps: 1e-5,
  tiedEmbeddings: true,
};
const data = [
  [1, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 2],
  [1, 9, 10, 11, 9, 10, 11, 9, 10, 11, 2],
];

function run(seed: number) {
  const base = randomBaseWeights(config, 3, Float32Array);
  const frozen = Float32Array.from(base.layers[0]!.wq);
  const lora = new LoraParams(base, {
    rank: 4,
    alpha: 8,
    targetModules: ['q_proj', 'v_proj', 'o_proj', 'down_proj'],
    seed,
  });
  const before = evaluate(base, data, lora);
  const losses = train(base, lora, data, { steps: 60, batch: 2, lr: 1e-2, seed });
  return { base, frozen, before, baseLoss: evaluate(base, data), after: evaluate(base, data, lora), losses };
}

describe('LoRA training loop', () => {
  it('lowers the loss of what it trains on, from the base model, with the base frozen', () => {
    const r = run(1);
    expect(r.before).toBe(r.baseLoss);
    expect(r.after).toBeLessThan(0.5 * r.before);
    expect(r.losses).toHaveLength(60);
    expect(r.losses.at(-1)!).toBeLessThan(r.losses[0]!);
    expect(r.base.layers[0]!.wq).toEqual(r.frozen);
  });

  it('is reproducible from its seed', () => {
    expect(run(2).losses).toEqual(run(2).losses);
  });
});
