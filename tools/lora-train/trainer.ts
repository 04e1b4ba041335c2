/**
 * The LoRA training loop: each step draws `batch` sequences (seeded), runs forward, cross-entropy
 * (mean over every predicted token of the batch) and backward on each, then one Adam update of the
 * LoRA matrices; the base stays frozen. Learning rate: linear warm-up over the first 5% of the steps,
 * then cosine decay to a tenth.
 */
import { Prng } from '../../packages/engine/src/model-loader/writers/random-tensors.js';
import { Adam } from './adam.js';
import { backward } from './backward.js';
import type { BaseWeights } from './base-weights.js';
import { crossEntropy, forward } from './forward.js';
import type { LoraParams } from './lora-params.js';

export interface TrainOptions {
  steps: number;
  batch: number;
  lr: number;
  seed: number;
  /** Called after every step with the batch's mean loss (before the update). */
  onStep?: (info: { step: number; loss: number; lr: number }) => void;
}

/** Trains `lora` in place; returns the loss of every step. */
export function train(base: BaseWeights, lora: LoraParams, sequences: number[][], o: TrainOptions): number[] {
  const usable = sequences.filter((s) => s.length >= 2);
  if (usable.length === 0) throw new Error('no training sequence of 2 tokens or more');
  const rng = new Prng(o.seed);
  const adam = new Adam(lora.tensors());
  const warm = Math.max(1, Math.round(o.steps * 0.05));
  const losses: number[] = [];
  for (let step = 1; step <= o.steps; step++) {
    const picks = Array.from({ length: o.batch }, () => usable[Math.floor(rng.uniform() * usable.length)]!);
    const count = picks.reduce((n, s) => n + s.length - 1, 0);
    lora.zeroGrad();
    let loss = 0;
    for (const ids of picks) {
      const tape = forward(base, ids, lora);
      const ce = crossEntropy(tape.logits, ids, base.config.vocabSize, count);
      loss += ce.loss;
      backward(base, tape, ce.dlogits, lora);
    }
    const progress = (step - warm) / Math.max(1, o.steps - warm);
    const lr =
      step <= warm ? (o.lr * step) / warm : o.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * Math.min(1, progress))));
    adam.step(lr);
    losses.push(loss);
    o.onStep?.({ step, loss, lr });
  }
  return losses;
}

/** Mean next-token cross-entropy of `lora` (or the base) over the sequences, no gradient. */
export function evaluate(base: BaseWeights, sequences: number[][], lora?: LoraParams): number {
  let loss = 0;
  let count = 0;
  for (const ids of sequences) {
    if (ids.length < 2) continue;
    loss += crossEntropy(forward(base, ids, lora).logits, ids, base.config.vocabSize, 1).loss;
    count += ids.length - 1;
  }
  return loss / count;
}
